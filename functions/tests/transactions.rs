//! A DynamoDB transaction whose reply is lost after it committed is retried
//! by the SDK with the same ClientRequestToken, so DynamoDB answers the retry
//! with the first outcome instead of failing its `attribute_not_exists`
//! conditions on the items that attempt wrote (a false 409 on org signup).
//! moto (5.2.5) ignores the token, so this checks what reaches the wire: one
//! token per transaction, the same on every attempt of it.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::http::StatusCode;
use lambda_http::Request;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ticketing::adapters::aws::{self, AwsAdapters, AwsSettings, DynamoStore};
use ticketing::http::Endpoint;
use ticketing::service::{self, Service};
use tower::ServiceExt;

/// Records each TransactWriteItems attempt's token, and turns the reply to
/// the first one into a 500 after moto committed it: a reply lost in transit.
#[derive(Debug, Clone, Default)]
struct LoseFirstTransactionReply {
    tokens: Arc<Mutex<Vec<Option<String>>>>,
    lost_one: Arc<AtomicBool>,
}

fn is_transaction(cfg: &ConfigBag) -> bool {
    cfg.load::<Metadata>().is_some_and(|m| m.name() == "TransactWriteItems")
}

impl Intercept for LoseFirstTransactionReply {
    fn name(&self) -> &'static str {
        "LoseFirstTransactionReply"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if is_transaction(cfg) {
            let body: serde_json::Value =
                serde_json::from_slice(context.request().body().bytes().unwrap_or_default()).unwrap_or_default();
            let token = body["ClientRequestToken"].as_str().map(str::to_owned);
            self.tokens.lock().unwrap().push(token);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if is_transaction(cfg) && !self.lost_one.swap(true, Ordering::SeqCst) {
            *context.response_mut().status_mut() = StatusCode::try_from(500).expect("a status");
        }
        Ok(())
    }
}

async fn org_signup(service: &Service, domain: &str) -> u16 {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/org-signup.json");
    let event = std::fs::read_to_string(path).unwrap().replace("growfin.ai", domain);
    let request: Request = lambda_http::request::from_str(&event).expect("an API Gateway event");
    let response = ticketing_functions::app(service.clone(), Endpoint::OrgSignup)
        .oneshot(request)
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_transaction_carries_its_first_attempts_idempotency_token() {
    std::env::var("AWS_ENDPOINT_URL").expect("needs moto: run ./scripts/test");
    let id = ticketing::domain::TicketId::new().0.simple().to_string();
    let settings = AwsSettings::local(
        format!("txn-{id}"),
        format!("txn-{id}"),
        "support@ticketing.example.com",
    );
    let sdk = aws::sdk_config().await;
    let adapters = AwsAdapters::new(&sdk, &settings);
    aws::create_missing_resources(&adapters, &settings)
        .await
        .expect("resources on moto");
    let faults = LoseFirstTransactionReply::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(faults.clone())
            .build(),
    );
    let mut ports = adapters.ports();
    ports.store = Arc::new(DynamoStore::new(client, &settings.table));
    let service_settings = service::Settings {
        limits: Default::default(),
        jwt_keys: adapters.jwt_keys(&settings),
        auto_close_after: Duration::from_secs(86_400),
        reopen_window: ticketing::service::DEFAULT_REOPEN_WINDOW,
        mail_from: settings.mail_from.clone(),
        signin: Default::default(),
        inbound: Default::default(),
    };
    let service = Service::new(ports, &service_settings).expect("a valid secret");

    // DynamoDB answers the retry 201; moto, without idempotency, fails it.
    org_signup(&service, &format!("{id}.example.com")).await;
    let first: Vec<Option<String>> = faults.tokens.lock().unwrap().clone();
    assert_eq!(first.len(), 2, "the lost reply was retried once: {first:?}");
    let token = first[0].clone().expect("the transaction carries a ClientRequestToken");
    assert_eq!(token.len(), 36, "{token}");
    assert_eq!(first[1].as_deref(), Some(token.as_str()), "the retry reuses the token");

    assert_eq!(org_signup(&service, &format!("other-{id}.example.com")).await, 201);
    let all = faults.tokens.lock().unwrap().clone();
    assert_eq!(all.len(), 3);
    assert_ne!(
        all[2].as_deref(),
        Some(token.as_str()),
        "a new transaction, a new token"
    );
}
