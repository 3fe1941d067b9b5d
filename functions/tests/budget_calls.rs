//! Every AWS call a handler makes is in its function's time budget
//! (shared/src/adapters/aws/budgets.rs): each endpoint's sample event runs on
//! a cold instance (built as the Lambda wiring builds it, keys read at init
//! as there), every call of every client is counted (`DynamoCalls::take_operations`), and each
//! operation must be named by a step of the function's budget, their number
//! within the budget's count. A call added to a handler (a Secrets Manager
//! read included) without its place in the budget fails here, by name.

mod common;

use common::{event, invoke};
use std::collections::BTreeMap;
use std::time::Duration;
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings, budgets};
use ticketing::http::Endpoint;
use ticketing::service::{self, InlineSend, Service};

fn id() -> String {
    ticketing::domain::TicketId::new().0.simple().to_string()
}

/// Fresh resources with inbound email on (so respond renders reply addresses).
async fn deployment() -> (AwsSettings, String) {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let id = id();
    let domain = format!("in-{id}.example");
    let settings = AwsSettings {
        inbound_domain: Some(domain.clone()),
        reply_key_secret_arn: Some(format!("budget-reply-key-{id}")),
        jwt_secret_arn: Some(format!("budget-jwt-{id}")),
        ..AwsSettings::local(
            format!("budget-{id}"),
            format!("budget-{id}"),
            "support@ticketing.example.com",
        )
    };
    let adapters = AwsAdapters::new(&aws::sdk_config().await, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    (settings, domain)
}

/// A cold function instance: new clients, the service as `wiring_from_env`
/// builds it (inline mail cut at its budget), init's key reads done, and
/// its call counter at zero.
async fn cold(settings: &AwsSettings, domain: &str) -> (Service, AwsAdapters) {
    let adapters = AwsAdapters::new(&aws::sdk_config().await, settings);
    let service_settings = service::Settings {
        jwt_keys: adapters.jwt_keys(settings),
        auto_close_after: Duration::from_secs(30 * 86_400),
        reopen_window: service::DEFAULT_REOPEN_WINDOW,
        mail_from: settings.mail_from.clone(),
        signin: Default::default(),
        inbound: service::InboundSettings {
            domain: Some(domain.to_owned()),
            reply_key: adapters.reply_keys(settings),
            allow_unauthenticated: false,
            trusted_authserv_id: None,
        },
        limits: Default::default(),
    };
    let service = Service::new(adapters.ports(), &service_settings)
        .expect("valid settings")
        .with_inline_send(InlineSend::Cut);
    aws::read_keys_at_init(&service).await.expect("init reads its keys");
    adapters.dynamo_calls.take_operations();
    (service, adapters)
}

/// `binary`'s budget names each operation in `calls`, and counts at least as many calls.
fn within_budget(binary: &str, calls: &BTreeMap<String, u64>) -> Result<(), String> {
    let budget = budgets::budget(binary).ok_or_else(|| format!("{binary} has no budget"))?;
    if calls.is_empty() {
        return Err(format!("{binary}: no call counted (is the counter on every client?)"));
    }
    for call in calls.keys() {
        let operation = call.rsplit(':').next().unwrap_or(call);
        if !budget.names(operation) {
            return Err(format!(
                "{binary} made {call}, which no step of its budget (budgets.rs) names: add it to a step \
                 (and the time to the function's Timeout), or move the call to init; calls: {calls:?}"
            ));
        }
    }
    let total: u64 = calls.values().sum();
    if let Some(max) = budget.max_calls()
        && total > u64::from(max)
    {
        return Err(format!(
            "{binary} made {total} calls, its budget counts {max}: {calls:?}"
        ));
    }
    Ok(())
}

#[test]
fn a_call_the_budget_does_not_name_fails_the_check() {
    let calls = BTreeMap::from([
        ("DynamoDB:GetItem".to_owned(), 2),
        ("Secrets Manager:GetSecretValue".to_owned(), 1),
    ]);
    assert!(within_budget("get-ticket", &calls).is_ok());
    // org-signup verifies no token: a key read there is outside its budget.
    let err = within_budget("org-signup", &calls).unwrap_err();
    assert!(err.contains("GetSecretValue"), "{err}");
    let many = BTreeMap::from([("DynamoDB:TransactWriteItems".to_owned(), 9)]);
    assert!(within_budget("org-signup", &many).unwrap_err().contains("9 calls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_handler_makes_only_the_calls_its_budget_counts() {
    let (settings, domain) = deployment().await;
    let mut checked = Vec::new();
    let mut run = async |endpoint: Endpoint, name: &str, fill: &[(&str, &str)], expected: u16| {
        let (service, adapters) = cold(&settings, &domain).await;
        let (status, body) = invoke(&service, endpoint, &event(name, fill)).await;
        assert_eq!(status, expected, "{name}: {body}");
        let calls = adapters.dynamo_calls.take_operations();
        println!("{}: {calls:?}", endpoint.function_name());
        if let Err(e) = within_budget(endpoint.function_name(), &calls) {
            panic!("{e}");
        }
        checked.push(endpoint.function_name());
        body
    };
    let org = run(Endpoint::OrgSignup, "org-signup", &[], 201).await;
    let secret = org["secret"].as_str().unwrap().to_owned();
    let with_secret = [("<ORG_SECRET>", secret.as_str())];
    run(Endpoint::AdminSignup, "admin-signup", &with_secret, 201).await;
    // The sign-in sample is Ana's; the sign-up sample made Bob.
    let bob = [("ana@growfin.ai", "bob@growfin.ai")];
    let jwt = run(Endpoint::AdminSignin, "admin-signin", &bob, 200).await["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let ticket = run(Endpoint::CreateTicket, "create-ticket", &with_secret, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fill = [("<JWT>", jwt.as_str()), ("<TICKET_ID>", ticket.as_str())];
    for (endpoint, name, expected) in [
        (Endpoint::GetTicket, "get-ticket", 200),
        (Endpoint::ListTickets, "list-tickets", 200),
        (Endpoint::UpdateTicket, "update-ticket", 200),
        (Endpoint::Respond, "respond", 201),
        (Endpoint::ChangeStatus, "change-status", 200),
        (Endpoint::TicketEvents, "ticket-events", 200),
        (Endpoint::ListAdmins, "list-admins", 200),
    ] {
        run(endpoint, name, &fill, expected).await;
    }
    assert_eq!(checked.len(), 11, "{checked:?}");
}
