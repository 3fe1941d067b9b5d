//! template.yaml and the code agree: the same routes, a binary for each
//! function, the table the adapters expect, the variables the config reads.

use serde_yaml::Value;
use std::collections::BTreeSet;
use ticketing::adapters::aws::{self, items};
use ticketing::http::Endpoint;

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r))
        .collect()
}

#[test]
fn template_routes_equal_the_router_routes_and_name_existing_binaries() {
    let t = template();
    let mut routes = BTreeSet::new();
    let mut binaries = BTreeSet::new();
    for (name, f) in functions(&t) {
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no Binary"));
        assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
        let source = format!("{}/src/bin/{binary}.rs", env!("CARGO_MANIFEST_DIR"));
        assert!(
            std::path::Path::new(&source).exists(),
            "{name} names binary {binary}, but {source} is missing"
        );
        binaries.insert(binary.to_owned());
        if let Some(events) = f["Properties"]["Events"].as_mapping() {
            for (_, e) in events {
                assert_eq!(e["Type"], "HttpApi", "{name}");
                let method = e["Properties"]["Method"].as_str().unwrap().to_uppercase();
                let path = e["Properties"]["Path"].as_str().unwrap().to_owned();
                // Each route's function is the binary serving that endpoint.
                let endpoint = Endpoint::ALL
                    .into_iter()
                    .find(|ep| ep.method().as_str() == method && ep.path() == path)
                    .unwrap_or_else(|| panic!("{name}: {method} {path} is not a router route"));
                assert_eq!(endpoint.function_name(), binary, "{method} {path}");
                routes.insert((method, path));
            }
        }
    }
    let router: BTreeSet<(String, String)> = Endpoint::ALL
        .iter()
        .map(|e| (e.method().to_string(), e.path().to_owned()))
        .collect();
    assert_eq!(routes, router);
    let mut expected: BTreeSet<String> = Endpoint::ALL.iter().map(|e| e.function_name().to_owned()).collect();
    expected.insert("close-ticket".into());
    assert_eq!(binaries, expected);
}

#[test]
fn template_table_has_the_keys_and_indexes_the_store_queries() {
    let t = template();
    let table = &t["Resources"]["TicketsTable"]["Properties"];
    let indexes: BTreeSet<(String, String)> = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| {
            let keys = i["KeySchema"].as_sequence().unwrap();
            assert_eq!(keys[1]["AttributeName"], items::GSK);
            (
                i["IndexName"].as_str().unwrap().to_owned(),
                keys[0]["AttributeName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let wanted: BTreeSet<(String, String)> = items::LIST_INDEXES
        .iter()
        .map(|i| (i.name.to_owned(), i.pk_attr.to_owned()))
        .collect();
    assert_eq!(indexes, wanted);
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(t["Resources"]["TicketsTable"]["DeletionPolicy"], "Retain");
}

#[test]
fn every_variable_the_config_reads_is_set_for_every_function() {
    let t = template();
    let vars = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap();
    for name in [
        aws::ENV_TABLE,
        aws::ENV_MAIL_FROM,
        aws::ENV_SCHEDULE_GROUP,
        aws::ENV_CLOSE_FUNCTION_ARN,
        aws::ENV_SCHEDULER_ROLE_ARN,
        aws::ENV_DEAD_LETTER_ARN,
        aws::ENV_JWT_SECRET,
        aws::ENV_AUTO_CLOSE_AFTER,
    ] {
        assert!(vars.contains_key(name), "Globals set no {name}");
    }
    assert_eq!(t["Parameters"]["JwtSecret"]["NoEcho"], true);
    assert_eq!(t["Parameters"]["Architecture"]["Default"], "arm64");
}

/// Only the functions that move tickets in or out of RESPONDED may touch the
/// scheduler or pass its role; only respond may send mail; reads only read.
#[test]
fn each_function_gets_only_the_permissions_it_uses() {
    let t = template();
    let actions = |f: &Value| -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for policy in f["Properties"]["Policies"].as_sequence().unwrap() {
            for st in policy["Statement"].as_sequence().unwrap() {
                match &st["Action"] {
                    Value::String(a) => {
                        all.insert(a.clone());
                    }
                    Value::Sequence(list) => all.extend(list.iter().map(|a| a.as_str().unwrap().to_owned())),
                    other => panic!("odd Action {other:?}"),
                }
            }
        }
        all
    };
    for (name, f) in functions(&t) {
        let a = actions(f);
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let schedules = ["change-status", "respond", "update-ticket"].contains(&binary);
        assert_eq!(a.contains("scheduler:CreateSchedule"), schedules, "{name}: {a:?}");
        assert_eq!(a.contains("iam:PassRole"), schedules, "{name}: {a:?}");
        assert_eq!(a.contains("ses:SendEmail"), binary == "respond", "{name}: {a:?}");
        if ["get-ticket", "list-tickets"].contains(&binary) {
            assert!(
                a.iter().all(|x| x == "dynamodb:GetItem" || x == "dynamodb:Query"),
                "{name} must only read: {a:?}"
            );
        }
        assert!(
            !a.iter().any(|x| x.ends_with('*') || x == "dynamodb:Scan"),
            "{name}: {a:?}"
        );
        if ["admin-signup", "admin-signin"].contains(&binary) {
            assert!(
                f["Properties"]["MemorySize"].as_u64().unwrap() >= 1024,
                "{name} runs Argon2"
            );
        }
    }
    let role = &t["Resources"]["SchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"];
    let role_actions: Vec<&str> = role
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s["Action"].as_str().unwrap())
        .collect();
    assert_eq!(role_actions, vec!["lambda:InvokeFunction", "sqs:SendMessage"]);
}
