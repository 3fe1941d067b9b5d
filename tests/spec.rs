//! openapi.yaml and the router describe the same routes.

use std::collections::BTreeSet;
use ticketing::http::Endpoint;

fn spec_routes() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml"))
        .expect("openapi.yaml at the repo root");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("openapi.yaml is YAML");
    let paths = doc["paths"].as_mapping().expect("paths");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        for (method, _) in item.as_mapping().expect("path item") {
            let method = method.as_str().unwrap().to_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].contains(&method.as_str()) {
                routes.insert((method, path.as_str().unwrap().to_owned()));
            }
        }
    }
    routes
}

#[test]
fn openapi_describes_exactly_the_routes_ticketd_serves() {
    let mut served: BTreeSet<(String, String)> = Endpoint::ALL
        .iter()
        .map(|e| (e.method().to_string(), e.path().to_owned()))
        .collect();
    served.extend(
        ticketd::LocalRoute::ALL
            .iter()
            .map(|r| (r.method().to_string(), r.path().to_owned())),
    );
    assert_eq!(spec_routes(), served);
}
