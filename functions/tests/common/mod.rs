//! What the handler tests share: the sample events of `events/`, and one
//! endpoint function's router invoked with one of them.

use lambda_http::Request;
use ticketing::http::Endpoint;
use ticketing::service::Service;
use tower::ServiceExt;

/// The sample event for `name` from `events/`, placeholders filled.
pub fn event(name: &str, fill: &[(&str, &str)]) -> String {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path} missing"));
    for (placeholder, value) in fill {
        text = text.replace(placeholder, value);
    }
    text
}

/// `endpoint`'s function given `event_json` through `lambda_http`'s own event
/// parsing: the status and the JSON body (null when not JSON).
pub async fn invoke(service: &Service, endpoint: Endpoint, event_json: &str) -> (u16, serde_json::Value) {
    let request: Request = lambda_http::request::from_str(event_json).expect("lambda_http parses the event");
    let response = ticketing_functions::app(service.clone(), endpoint)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}
