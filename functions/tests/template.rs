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

/// The argument of a short-form intrinsic (`!Ref X`, `!Sub "..."`).
fn tag_arg(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) => t.value.as_str(),
        _ => None,
    }
}

/// `!Ref name`, as the YAML parser reads it.
fn reference(name: &str) -> Value {
    serde_yaml::from_str(&format!("!Ref {name}")).unwrap()
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
            for (_, e) in events.iter().filter(|(_, e)| e["Type"] == "HttpApi") {
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
    expected.extend(
        [
            "close-ticket",
            "reconcile",
            "sweeper",
            "mail-events",
            "inbound-email",
            "webhook-sender",
        ]
        .map(String::from),
    );
    assert_eq!(binaries, expected);
}

#[test]
fn template_table_has_the_keys_and_indexes_the_store_queries() {
    let t = template();
    let table = &t["Resources"]["TicketsTable"]["Properties"];
    let indexes: BTreeSet<(String, String, String)> = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|i| i["IndexName"] != items::DUE_INDEX)
        .map(|i| {
            let keys = i["KeySchema"].as_sequence().unwrap();
            (
                i["IndexName"].as_str().unwrap().to_owned(),
                keys[0]["AttributeName"].as_str().unwrap().to_owned(),
                keys[1]["AttributeName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut wanted: BTreeSet<(String, String, String)> = items::LIST_INDEXES
        .iter()
        .map(|i| (i.name.to_owned(), i.pk_attr.to_owned(), items::GSK.to_owned()))
        .collect();
    wanted.insert((
        items::MAIL_DUE_INDEX.to_owned(),
        items::MAIL_DUE_PK.to_owned(),
        items::MAIL_DUE_SK.to_owned(),
    ));
    wanted.insert((
        items::UNASSIGNED_INDEX.to_owned(),
        items::UNASSIGNED_PK.to_owned(),
        items::GSK.to_owned(),
    ));
    assert_eq!(indexes, wanted);
    // The sweeper's sparse index, and the stream the reconciler reads.
    let due = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|i| i["IndexName"] == items::DUE_INDEX)
        .expect("the due index");
    assert_eq!(due["KeySchema"][0]["AttributeName"], items::DUE_PK);
    assert_eq!(due["KeySchema"][1]["AttributeName"], items::DUE_SK);
    assert_eq!(table["StreamSpecification"]["StreamViewType"], "NEW_AND_OLD_IMAGES");
    let numbers: Vec<&str> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|a| a["AttributeType"] == "N")
        .map(|a| a["AttributeName"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, [items::MAIL_DUE_SK], "the due index sorts by time as a number");
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
    for name in CONFIG_VARIABLES {
        assert!(vars.contains_key(name), "Globals set no {name}");
    }
    assert!(t["Parameters"]["JwtSecret"].is_null(), "the JWT keys live in a secret");
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
        // The reconciler and the sweeper (replaying failed stream batches)
        // do what the request path does eagerly: schedule, and send mail.
        let background = ["reconcile", "sweeper"].contains(&binary);
        let schedules = background || ["change-status", "respond", "update-ticket"].contains(&binary);
        assert_eq!(a.contains("scheduler:CreateSchedule"), schedules, "{name}: {a:?}");
        assert_eq!(a.contains("iam:PassRole"), schedules, "{name}: {a:?}");
        // The senders of response mail: respond inline, the table-driven senders after it.
        // Replies (API or inbound email) tell the assignee.
        let sends = ["respond", "reconcile", "sweeper", "add-reply", "inbound-email"].contains(&binary);
        assert_eq!(a.contains("ses:SendEmail"), sends, "{name}: {a:?}");
        if binary == "mail-events" {
            let wanted = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"].map(String::from);
            assert_eq!(a, BTreeSet::from(wanted), "{name}");
        }
        if ["get-ticket", "list-tickets", "ticket-events", "list-admins"].contains(&binary) {
            // Reads only read; their one write records an API key's use, in
            // a statement of its own limited to org partitions.
            for st in f["Properties"]["Policies"]
                .as_sequence()
                .unwrap()
                .iter()
                .flat_map(|p| p["Statement"].as_sequence().unwrap())
            {
                let actions = format!("{:?}", st["Action"]);
                if actions.contains("dynamodb:UpdateItem") {
                    assert_eq!(
                        st["Action"],
                        serde_yaml::from_str::<Value>("[dynamodb:UpdateItem]").unwrap(),
                        "{name}"
                    );
                    assert_eq!(
                        st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                        serde_yaml::from_str::<Value>(r#"["ORG#*"]"#).unwrap(),
                        "{name}: the key-use write is limited to org partitions"
                    );
                }
            }
            assert!(
                a.iter().all(|x| [
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                    "secretsmanager:GetSecretValue"
                ]
                .contains(&x.as_str())),
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

/// Only the functions whose endpoint signs or verifies JWTs get the verify
/// keys' ARN and may read them; only admin-signin gets the signing secret
/// (and may publish its verify keys); the others get empty variables (no
/// keys) and no permission. The signing secret starts as a ring with one
/// generated seed, the verify keys empty; both are retained and are outputs.
#[test]
fn only_the_jwt_functions_can_read_the_jwt_keys_and_only_admin_signin_the_signing_key() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(globals[aws::ENV_JWT_SECRET_ARN], "");
    assert_eq!(globals[aws::ENV_JWT_SIGNING_SECRET_ARN], "");
    let verify = &t["Resources"]["JwtKeysSecret"];
    let signing = &t["Resources"]["JwtSigningKeysSecret"];
    for (name, secret) in [("JwtKeysSecret", verify), ("JwtSigningKeysSecret", signing)] {
        assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
        assert_eq!(secret["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(secret["UpdateReplacePolicy"], "Retain", "{name}");
        assert!(
            t["Outputs"]
                .as_mapping()
                .unwrap()
                .values()
                .any(|o| o["Value"] == reference(name)),
            "{name} is an output"
        );
    }
    let empty = ticketing::auth::VerifyKeys::from_json(verify["Properties"]["SecretString"].as_str().unwrap());
    assert!(empty.unwrap().is_empty());
    let generate = &signing["Properties"]["GenerateSecretString"];
    let start: serde_json::Value = serde_json::from_str(generate["SecretStringTemplate"].as_str().unwrap()).unwrap();
    assert_eq!(
        start,
        serde_json::json!({"alg": "ES256", "currentKid": ticketing::auth::keyring::INITIAL_KID})
    );
    assert_eq!(generate["GenerateStringKey"], "current");
    assert!(generate["PasswordLength"].as_u64().unwrap() >= ticketing::auth::MIN_JWT_SECRET as u64);
    let mut readers = BTreeSet::new();
    for (name, f) in functions(&t) {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let uses_jwt = Endpoint::ALL
            .iter()
            .any(|e| e.function_name() == binary && e.uses_jwt());
        let vars = &f["Properties"]["Environment"]["Variables"];
        let statements: Vec<&Value> = f["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().unwrap())
            .collect();
        // The reply key is another secret (see the test below).
        let mut grants: Vec<(String, Value)> = statements
            .iter()
            .filter(|st| format!("{:?}", st["Action"]).contains("secretsmanager:"))
            .filter(|st| st["Resource"] != reference("ReplyKeySecret"))
            .flat_map(|st| {
                let actions = st["Action"].as_sequence().unwrap().iter();
                actions.map(|a| (a.as_str().unwrap().to_owned(), st["Resource"].clone()))
            })
            .collect();
        grants.sort_by_key(|(a, r)| format!("{a} {r:?}"));
        let get = |secret: &str| ("secretsmanager:GetSecretValue".to_owned(), reference(secret));
        if binary == "admin-signin" {
            assert_eq!(vars[aws::ENV_JWT_SIGNING_SECRET_ARN], reference("JwtSigningKeysSecret"));
            let publish = ("secretsmanager:PutSecretValue".to_owned(), reference("JwtKeysSecret"));
            assert_eq!(
                grants,
                [get("JwtKeysSecret"), get("JwtSigningKeysSecret"), publish],
                "{name}"
            );
        } else {
            assert!(vars[aws::ENV_JWT_SIGNING_SECRET_ARN].is_null(), "{name} must not sign");
        }
        if uses_jwt {
            readers.insert(binary.to_owned());
            assert_eq!(vars[aws::ENV_JWT_SECRET_ARN], reference("JwtKeysSecret"), "{name}");
            if binary != "admin-signin" {
                assert_eq!(grants, [get("JwtKeysSecret")], "{name}");
            }
        } else {
            assert!(
                vars[aws::ENV_JWT_SECRET_ARN].is_null(),
                "{name} must not get the JWT key secret"
            );
            assert!(grants.is_empty(), "{name} must not read secrets");
        }
    }
    assert_eq!(
        readers,
        BTreeSet::from(
            [
                "add-note",
                "admin-signin",
                "change-status",
                "create-api-key",
                "get-ticket",
                "list-tickets",
                "list-api-keys",
                "respond",
                "revoke-api-key",
                "rotate-org-secret",
                "update-ticket",
                "ticket-events",
                "list-admins",
                "set-availability",
                "set-admin-role",
                "create-webhook",
                "list-webhooks",
                "delete-webhook",
                "rotate-webhook-secret",
                "webhook-deliveries",
                "redeliver-webhook"
            ]
            .map(String::from)
        )
    );
}

/// Only respond (renders reply addresses), inbound-email (checks them) and
/// the sweeper (re-applies inbound mail inbound-email failed on) get the
/// reply key secret's ARN and may read it; it is its own secret,
/// generated long, and the inbound resources exist only with InboundDomain.
#[test]
fn only_respond_and_inbound_email_can_read_the_reply_key() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(globals[aws::ENV_REPLY_KEY_ARN], "");
    assert_eq!(globals[aws::ENV_INBOUND_DOMAIN], reference("InboundDomain"));
    let generate = &t["Resources"]["ReplyKeySecret"]["Properties"]["GenerateSecretString"];
    assert!(generate["PasswordLength"].as_u64().unwrap() >= ticketing::auth::reply::MIN_REPLY_KEY as u64);
    let mut readers = BTreeSet::new();
    for (name, f) in functions(&t) {
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let var = &f["Properties"]["Environment"]["Variables"][aws::ENV_REPLY_KEY_ARN];
        let reads = f["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|p| p["Statement"].as_sequence().unwrap())
            .filter(|st| st["Resource"] == reference("ReplyKeySecret"))
            .count();
        if *var == reference("ReplyKeySecret") {
            assert_eq!(reads, 1, "{name}");
            readers.insert(binary.to_owned());
        } else {
            assert!(var.is_null(), "{name}");
            assert_eq!(reads, 0, "{name} must not read the reply key");
        }
    }
    assert_eq!(
        readers,
        BTreeSet::from(["respond", "inbound-email", "sweeper"].map(String::from))
    );
    for resource in ["InboundBucket", "InboundRuleSet", "InboundRule", "InboundEmailFunction"] {
        assert_eq!(t["Resources"][resource]["Condition"], "HasInboundDomain", "{resource}");
    }
}

/// The config variables every function reads; a local run must give each one.
const CONFIG_VARIABLES: [&str; 12] = [
    aws::ENV_TABLE,
    aws::ENV_MAIL_FROM,
    aws::ENV_SCHEDULE_GROUP,
    aws::ENV_CLOSE_FUNCTION_ARN,
    aws::ENV_SCHEDULER_ROLE_ARN,
    aws::ENV_DEAD_LETTER_ARN,
    aws::ENV_FAILURE_QUEUE_ARN,
    aws::ENV_SES_CONFIGURATION_SET,
    aws::ENV_JWT_SECRET_ARN,
    aws::ENV_AUTO_CLOSE_AFTER,
    aws::ENV_REOPEN_WINDOW,
    aws::ENV_AWS_ENDPOINT_URL,
];

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"))).expect(name)
}

/// `sam build` runs cargo-lambda in each function's CodeUri. From the
/// workspace root, cargo unified features with ticketd and linked SQLite into
/// every bootstrap; from this crate's directory it cannot.
#[test]
fn every_function_builds_from_the_functions_crate() {
    let t = template();
    assert_eq!(t["Globals"]["Function"]["CodeUri"], "functions");
    for (name, f) in functions(&t) {
        let own = &f["Properties"]["CodeUri"];
        assert!(own.is_null() || *own == "functions", "{name} builds from {own:?}");
    }
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"ticketing-functions\""));
    assert!(
        !manifest.contains("embedded"),
        "the functions crate must not enable `embedded`"
    );
}

/// In AWS the endpoint override is empty (the SDK's own endpoints); a local
/// run sets it, so it must be declared or `sam local --env-vars` ignores it.
#[test]
fn the_endpoint_override_is_declared_and_empty() {
    let t = template();
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"][aws::ENV_AWS_ENDPOINT_URL],
        ""
    );
}

/// local.env.json gives every variable a local run needs (the template's
/// values name resources that only exist in a stack), only variables the
/// template declares (sam local silently drops others), points at moto, and
/// agrees with samconfig.toml's local parameter overrides.
#[test]
fn the_local_env_file_sets_every_variable_the_template_declares_for_it() {
    let t = template();
    let declared = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .unwrap();
    let env: serde_json::Value = serde_json::from_str(&repo_file("local.env.json")).expect("local.env.json is JSON");
    let vars = env["Parameters"]
        .as_object()
        .expect("Parameters: variables for every function");
    for name in vars.keys() {
        assert!(
            declared.contains_key(name.as_str()),
            "local.env.json sets {name}, which template.yaml does not declare"
        );
    }
    for name in CONFIG_VARIABLES {
        let value = vars.get(name).and_then(|v| v.as_str()).unwrap_or_default();
        assert!(!value.is_empty(), "local.env.json sets no {name}");
    }
    assert!(
        vars[aws::ENV_AWS_ENDPOINT_URL]
            .as_str()
            .unwrap()
            .starts_with("http://host.docker.internal:")
    );
    let config = aws::AwsConfig::from_lookup(|k| vars.get(k).and_then(|v| v.as_str()).map(str::to_owned));
    assert!(
        config.is_ok(),
        "local.env.json is not a valid config: {:?}",
        config.err()
    );

    let samconfig = repo_file("samconfig.toml");
    let sender = vars[aws::ENV_MAIL_FROM].as_str().unwrap();
    for section in [
        "[default.local_start_api.parameters]",
        "[default.local_invoke.parameters]",
    ] {
        let body = samconfig
            .split(section)
            .nth(1)
            .unwrap_or_else(|| panic!("samconfig.toml has no {section}"));
        let body = body.split("\n[").next().unwrap();
        for want in [
            "Architecture=x86_64".to_owned(),
            format!("SenderEmail={sender}"),
            "env_vars = \"local.env.json\"".to_owned(),
            "host.docker.internal:host-gateway".to_owned(),
        ] {
            assert!(body.contains(&want), "{section} lacks {want}");
        }
    }
}

/// One Architecture for build and deploy (samconfig's global overrides, arm64
/// by default); no stale beta flag; no SAM build cache (it hashes only
/// functions/, so an edit in shared/ would ship a stale bootstrap).
#[test]
fn samconfig_builds_and_deploys_one_architecture_without_stale_flags() {
    let samconfig = repo_file("samconfig.toml");
    let settings: Vec<&str> = samconfig
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let global = settings
        .iter()
        .skip_while(|l| **l != "[default.global.parameters]")
        .take_while(|l| !l.starts_with("[default.validate"))
        .find(|l| l.starts_with("parameter_overrides"))
        .expect("global parameter_overrides");
    assert!(global.contains("Architecture=arm64"), "{global}");
    let deploy: Vec<&&str> = settings
        .iter()
        .skip_while(|l| **l != "[default.deploy.parameters]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .collect();
    assert!(
        !deploy.iter().any(|l| l.contains("Architecture")),
        "deploy must take the global Architecture: {deploy:?}"
    );
    for stale in ["beta_features", "cached"] {
        assert!(
            !settings.iter().any(|l| l.starts_with(stale)),
            "samconfig.toml sets {stale}"
        );
    }
}

/// SES reports reach mail-events: the configuration set every mail is sent
/// with publishes delivery, bounce and complaint to a topic, the topic to the
/// queue (raw), the queue to the function with batch item failures, and what
/// keeps failing to a dead-letter queue.
#[test]
fn ses_reports_flow_from_the_configuration_set_to_mail_events_with_a_dead_letter_queue() {
    let t = template();
    let r = &t["Resources"];
    // CloudFormation's short forms (!Ref X, !GetAtt X.Arn), as serde_yaml reads them.
    let cfn = |s: &str| serde_yaml::from_str::<Value>(s).unwrap();
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"][aws::ENV_SES_CONFIGURATION_SET],
        cfn("!Ref MailConfigurationSet")
    );
    assert_eq!(r["MailConfigurationSet"]["Type"], "AWS::SES::ConfigurationSet");
    let dest = &r["MailEventsDestination"]["Properties"];
    assert_eq!(dest["ConfigurationSetName"], cfn("!Ref MailConfigurationSet"));
    let types: BTreeSet<&str> = dest["EventDestination"]["MatchingEventTypes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(types, BTreeSet::from(["delivery", "bounce", "complaint"]));
    assert_eq!(
        dest["EventDestination"]["SnsDestination"]["TopicARN"],
        cfn("!Ref MailEventsTopic")
    );
    let sub = &r["MailEventsSubscription"]["Properties"];
    assert_eq!(sub["TopicArn"], cfn("!Ref MailEventsTopic"));
    assert_eq!(sub["Endpoint"], cfn("!GetAtt MailEventsQueue.Arn"));
    assert_eq!(sub["Protocol"], "sqs");
    let queue = &r["MailEventsQueue"]["Properties"];
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        cfn("!GetAtt MailEventsDeadLetterQueue.Arn")
    );
    let (_, f) = functions(&t)
        .into_iter()
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"] == "mail-events")
        .expect("a mail-events function");
    let events = f["Properties"]["Events"].as_mapping().unwrap();
    let sqs = events
        .values()
        .find(|e| e["Type"] == "SQS")
        .expect("an SQS event source");
    assert_eq!(sqs["Properties"]["Queue"], cfn("!GetAtt MailEventsQueue.Arn"));
    assert_eq!(sqs["Properties"]["FunctionResponseTypes"][0], "ReportBatchItemFailures");
    let timeout = f["Properties"]["Timeout"]
        .as_u64()
        .or(t["Globals"]["Function"]["Timeout"].as_u64())
        .unwrap();
    assert!(
        queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout,
        "visibility timeout below six function timeouts"
    );
}

/// A Python script run with the project's .venv (aws-sam-cli and its
/// translator), offline: its standard output.
fn venv_python(script: &str, args: &[&str]) -> String {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect(".venv/bin/python (./scripts/test creates .venv)");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// template.yaml as CloudFormation receives it: SAM's own translator, run
/// offline (the functions' code pointed at a placeholder S3 object).
fn transformed() -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class NoManagedPolicies:
    def load(self): return {}
t = yaml_parse(open(sys.argv[1]).read())
t["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
for r in t["Resources"].values():
    if r.get("Type") == "AWS::Serverless::Function":
        r.get("Properties", {}).pop("CodeUri", None)
json.dump(transform(t, {}, NoManagedPolicies()), sys.stdout)
"#;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_json::from_str(&venv_python(SCRIPT, &[path])).expect("the translator's JSON")
}

/// A physical name as one stack renders it: the stack's name substituted;
/// a resource's generated name carries the stack's name (CloudFormation
/// prefixes it); a parameter is what the user gives, the same for both.
fn render(v: &serde_json::Value, stack: &str, t: &serde_json::Value) -> String {
    let name_of = |logical: &str| {
        if logical == "AWS::StackName" {
            stack.to_owned()
        } else if logical.starts_with("AWS::") {
            format!("<{logical}>")
        } else if t["Resources"].get(logical).is_some() {
            format!("{stack}-{logical}-GENERATED")
        } else {
            format!("<parameter {logical}>")
        }
    };
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) if o.contains_key("Ref") => name_of(o["Ref"].as_str().unwrap()),
        serde_json::Value::Object(o) if o.contains_key("Fn::GetAtt") => name_of(o["Fn::GetAtt"][0].as_str().unwrap()),
        serde_json::Value::Object(o) if o.contains_key("Fn::Sub") => {
            let mut s = o["Fn::Sub"].as_str().expect("a plain !Sub").to_owned();
            while let Some(i) = s.find("${") {
                let end = s[i..].find('}').unwrap() + i;
                let logical = s[i + 2..end].split('.').next().unwrap().to_owned();
                s.replace_range(i..=end, &name_of(&logical));
            }
            s
        }
        other => panic!("a name the test cannot render: {other}"),
    }
}

/// Where a resource type carries a name that must be unique in an account
/// and region (or in its schedule group / rule set, which are per stack).
const NAMED: [(&str, &str); 16] = [
    ("AWS::Lambda::Function", "FunctionName"),
    ("AWS::Scheduler::Schedule", "Name"),
    ("AWS::Scheduler::ScheduleGroup", "Name"),
    ("AWS::Events::Rule", "Name"),
    ("AWS::SES::ConfigurationSet", "Name"),
    ("AWS::SES::ReceiptRuleSet", "RuleSetName"),
    ("AWS::Logs::LogGroup", "LogGroupName"),
    ("AWS::SQS::Queue", "QueueName"),
    ("AWS::SNS::Topic", "TopicName"),
    ("AWS::S3::Bucket", "BucketName"),
    ("AWS::DynamoDB::Table", "TableName"),
    ("AWS::IAM::Role", "RoleName"),
    ("AWS::CloudWatch::Alarm", "AlarmName"),
    ("AWS::SecretsManager::Secret", "Name"),
    ("AWS::KMS::Alias", "AliasName"),
    ("AWS::ApiGatewayV2::Api", "Name"),
];

/// Two stacks of the template (dev and prod) in one account and region
/// share no physical name: every named resource of the transformed template
/// (SAM's generated ones included, such as the sweeper's schedule) derives
/// its name from the stack name, or is left for CloudFormation to name.
#[test]
fn two_stacks_side_by_side_share_no_physical_name() {
    let t = transformed();
    let mut named = 0;
    let mut shared = Vec::new();
    for (logical, r) in t["Resources"].as_object().unwrap() {
        let kind = r["Type"].as_str().unwrap();
        for (_, property) in NAMED.iter().filter(|(k, _)| *k == kind) {
            let Some(v) = r["Properties"].get(*property) else {
                continue; // CloudFormation names it after the stack
            };
            named += 1;
            let (dev, prod) = (render(v, "ticketing-dev", &t), render(v, "ticketing-prod", &t));
            if dev == prod {
                shared.push(format!("{logical} ({kind}) {property} = {dev}"));
            }
        }
    }
    assert!(
        named >= 30,
        "the schedule group, the close function, the log groups...: {named}"
    );
    assert!(
        shared.is_empty(),
        "names the same in every stack:\n{}",
        shared.join("\n")
    );
    let samconfig = repo_file("samconfig.toml");
    for env in ["dev", "prod"] {
        let global = samconfig
            .split(&format!("[{env}.global.parameters]"))
            .nth(1)
            .unwrap_or_else(|| panic!("samconfig.toml has no {env} environment"));
        let global = global.split("\n[").next().unwrap();
        assert!(
            global.contains(&format!("stack_name = \"ticketing-{env}\"")),
            "{global}"
        );
        assert!(global.contains("Architecture=arm64"), "{global}");
        let deploy = samconfig
            .split(&format!("[{env}.deploy.parameters]"))
            .nth(1)
            .unwrap_or_else(|| panic!("samconfig.toml has no {env} deploy section"));
        let deploy = deploy.split("\n[").next().unwrap();
        for want in ["capabilities = \"CAPABILITY_IAM\"", "resolve_s3 = true"] {
            assert!(deploy.contains(want), "{env}: {deploy}");
        }
    }
}

/// `sam deploy --guided` asks "X has no authentication. Is this okay?
/// [y/N]" for every API function whose auth SAM cannot see, and Enter
/// aborts: SAM CLI's own check (auth_per_resource) finds none.
#[test]
fn sam_deploy_asks_no_question_whose_default_aborts() {
    const SCRIPT: &str = r#"
import json, sys
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.commands.deploy.auth_utils import auth_per_resource
stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1], parameter_overrides={"SenderEmail": "a@example.com"})
json.dump([r for r, ok in auth_per_resource(stacks)], sys.stdout)
print()
json.dump([r for r, ok in auth_per_resource(stacks) if not ok], sys.stdout)
"#;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let out = venv_python(SCRIPT, &[path]);
    let mut lines = out.lines();
    let checked: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    let unauthenticated: Vec<String> = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(checked.len(), Endpoint::ALL.len(), "every API function is checked");
    assert!(
        unauthenticated.is_empty(),
        "guided deploy would ask: {unauthenticated:?}"
    );
}

/// No SNS topic that a service publishes to (SES's event destinations,
/// CloudWatch's alarm actions) is encrypted with an AWS-managed key, whose
/// policy no service can be granted: its key is this stack's, granting that
/// service GenerateDataKey*/Decrypt, and a topic policy lets it publish;
/// both limited to this account and the publishing resource.
#[test]
fn no_topic_a_service_publishes_to_uses_an_aws_managed_key() {
    let t = template();
    let r = &t["Resources"];
    let cfn = |s: &str| serde_yaml::from_str::<Value>(s).unwrap();
    let mut publishers: Vec<(String, &str)> = Vec::new();
    for res in r.as_mapping().unwrap().values() {
        match res["Type"].as_str().unwrap() {
            "AWS::SES::ConfigurationSetEventDestination" => {
                if let Some(topic) = tag_arg(&res["Properties"]["EventDestination"]["SnsDestination"]["TopicARN"]) {
                    publishers.push((topic.to_owned(), "ses.amazonaws.com"));
                }
            }
            "AWS::CloudWatch::Alarm" => {
                for key in ["AlarmActions", "OKActions", "InsufficientDataActions"] {
                    for action in res["Properties"][key].as_sequence().into_iter().flatten() {
                        if let Some(topic) = tag_arg(action) {
                            let topic = topic.to_owned();
                            if r[topic.as_str()]["Type"] == "AWS::SNS::Topic" {
                                publishers.push((topic, "cloudwatch.amazonaws.com"));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    publishers.sort();
    publishers.dedup();
    assert!(publishers.contains(&("MailEventsTopic".to_owned(), "ses.amazonaws.com")));
    assert!(publishers.contains(&("AlarmTopic".to_owned(), "cloudwatch.amazonaws.com")));
    let limited = |st: &Value| {
        st["Condition"]["StringEquals"]["aws:SourceAccount"] == cfn("!Ref AWS::AccountId")
            && tag_arg(&st["Condition"]["ArnLike"]["aws:SourceArn"]).is_some()
    };
    for (topic, service) in &publishers {
        let key = &r[topic.as_str()]["Properties"]["KmsMasterKeyId"];
        if key.is_null() {
            continue; // unencrypted: any publisher may use it
        }
        let key_name =
            tag_arg(key).unwrap_or_else(|| panic!("{topic}: an AWS-managed key ({key:?}) cannot grant {service}"));
        let key = &r[key_name];
        assert_eq!(key["Type"], "AWS::KMS::Key", "{topic}");
        let grants = key["Properties"]["KeyPolicy"]["Statement"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|st| {
                st["Principal"]["Service"] == *service
                    && st["Action"] == cfn("[kms:GenerateDataKey*, kms:Decrypt]")
                    && limited(st)
            });
        assert!(grants, "{key_name} does not let {service} publish to {topic}");
        let allowed = r
            .as_mapping()
            .unwrap()
            .values()
            .filter(|p| p["Type"] == "AWS::SNS::TopicPolicy")
            .filter(|p| p["Properties"]["Topics"] == cfn(&format!("[!Ref {topic}]")))
            .flat_map(|p| p["Properties"]["PolicyDocument"]["Statement"].as_sequence().unwrap())
            .any(|st| st["Principal"]["Service"] == *service && st["Action"] == "sns:Publish" && limited(st));
        assert!(allowed, "no topic policy lets {service} publish to {topic}");
    }
}

/// Queue consumers run at most a parameter's number of copies (so a
/// backlog cannot take the account's concurrency from the API), and the
/// every-minute sweeper never overlaps itself nor retries a tick.
#[test]
fn queue_consumers_and_the_sweeper_have_bounded_concurrency() {
    let t = template();
    let mut bounded = BTreeSet::new();
    for (name, f) in functions(&t) {
        for (_, e) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if e["Type"] != "SQS" {
                continue;
            }
            let max = &e["Properties"]["ScalingConfig"]["MaximumConcurrency"];
            let param = tag_arg(max).unwrap_or_else(|| panic!("{name}: no MaximumConcurrency parameter"));
            let default = t["Parameters"][param]["Default"].as_u64().unwrap();
            assert!((2..=10).contains(&default), "{name}: {param} defaults to {default}");
            assert_eq!(t["Parameters"][param]["MinValue"], 2, "SQS allows no fewer");
            bounded.insert(name.clone());
        }
    }
    assert_eq!(
        bounded,
        BTreeSet::from(["MailEventsFunction".to_owned(), "WebhookSenderFunction".to_owned()])
    );
    let sweeper = &t["Resources"]["SweeperFunction"]["Properties"];
    assert_eq!(sweeper["ReservedConcurrentExecutions"], 1);
    assert_eq!(sweeper["EventInvokeConfig"]["MaximumRetryAttempts"], 0);
}

/// The secrets that must outlive a replacement or the stack (tokens and
/// mailed reply addresses keep verifying) are retained; the JWT secret's
/// ARN is an output (for rotation and for removing it after teardown).
#[test]
fn secrets_are_retained_and_the_jwt_secret_is_an_output() {
    let t = template();
    for secret in ["JwtKeysSecret", "ReplyKeySecret"] {
        let s = &t["Resources"][secret];
        assert_eq!(s["DeletionPolicy"], "Retain", "{secret}");
        assert_eq!(s["UpdateReplacePolicy"], "Retain", "{secret}");
    }
    assert_eq!(t["Outputs"]["JwtKeysSecretArn"]["Value"], reference("JwtKeysSecret"));
}
