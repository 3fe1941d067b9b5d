//! Response emails as every adapter set shows them: sent once, and the
//! delivery the reply reports is the one the ticket keeps.

use ticketing_tests::client::customer;
use ticketing_tests::{AdapterSet, TestApp, TestConfig};

/// The reply to respond and the ticket agree on the delivery (`sent`, the
/// same message id; `respond_and_send` checks), the customer gets exactly one
/// copy, and a second response is a second email, not a resend of the first.
pub async fn each_response_email_is_sent_once_and_its_delivery_kept(set: &dyn AdapterSet) {
    let app = TestApp::start(set, TestConfig::default()).await;
    let org = app.new_org().await;
    let admin = app.new_admin(&org).await;
    let cust = customer();
    let id = app.new_ticket_id(&org, &cust).await;
    let (_, first) = app.respond_and_send(&admin.jwt, &id, "first").await;
    let message_id = first["messageId"].as_str().expect("a message id").to_owned();
    assert_eq!(app.mails_to(&cust).await.len(), 1);

    let (_, second) = app.respond_and_send(&admin.jwt, &id, "second").await;
    assert_ne!(second["messageId"], message_id.as_str());
    let mails = app.mails_to(&cust).await;
    let texts: Vec<&str> = mails
        .iter()
        .map(|m| m.text.lines().next().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["first", "second"]);
    let t = app.ticket(&admin.jwt, &id).await;
    assert_eq!(t["responses"][0]["delivery"]["messageId"], message_id.as_str());
    app.stop().await;
}
