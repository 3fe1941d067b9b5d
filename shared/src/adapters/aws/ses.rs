//! The [`Mailer`] port on Amazon SES (`SendEmail`), with the configuration
//! set whose event destination reports what became of each mail, and tags
//! naming the ticket and response, so those reports find their response.

use super::errors::is_code;
use super::sdk::LazyClient;
use crate::domain::Mail;
use crate::ports::{MailError, Mailer};
use async_trait::async_trait;
use aws_sdk_ses::Client;
use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::types::{Body, Content, Destination, Message, MessageTag};

pub struct SesMailer {
    /// Built on first send: most functions never send mail.
    client: LazyClient<Client>,
    configuration_set: String,
}

impl SesMailer {
    pub fn new(client: impl Into<LazyClient<Client>>, configuration_set: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            configuration_set: configuration_set.into(),
        }
    }
}

/// The message tags naming the ticket and response (read back by `mail_events`).
pub const TAG_TICKET: &str = "ticket";
pub const TAG_RESPONSE: &str = "response";

fn tag(name: &str, value: String) -> Result<MessageTag, MailError> {
    MessageTag::builder()
        .name(name)
        .value(value)
        .build()
        .map_err(|e| MailError(format!("could not build the mail: {e}")))
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError(format!("could not build the mail: {e}")))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<String, MailError> {
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(Body::builder().text(content(&mail.text)?).build())
            .build();
        let out = self
            .client
            .send_email()
            .source(&mail.from)
            // SES assigns its own Message-ID, so `mail.message_id` cannot go
            // out; the reply address is what routes a reply back.
            .set_reply_to_addresses(mail.reply_to.clone().map(|a| vec![a]))
            .destination(Destination::builder().to_addresses(mail.to.as_str()).build())
            .message(message)
            .configuration_set_name(&self.configuration_set)
            .tags(tag(TAG_TICKET, mail.ticket_id.to_string())?)
            .tags(tag(TAG_RESPONSE, mail.response_id.to_string())?)
            .send()
            .await
            .map_err(|e| {
                // The reason is shown on the ticket: SES's own words, or that it was unreachable.
                let reason = match &e {
                    SdkError::ServiceError(s) => format!(
                        "{}: {}",
                        s.err().code().unwrap_or("SesError"),
                        s.err().message().unwrap_or("rejected")
                    ),
                    SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => "mail service unreachable".to_owned(),
                    _ => "mail service error".to_owned(),
                };
                if !is_code(&e, "MessageRejected") {
                    tracing::warn!(error = %aws_sdk_ses::error::DisplayErrorContext(&e), "SES send failed");
                }
                MailError(reason)
            })?;
        tracing::info!(message_id = out.message_id(), to = %mail.to, subject = ?mail.subject, "mail sent with SES");
        Ok(out.message_id().to_owned())
    }
}
