//! Business metrics in CloudWatch Embedded Metric Format, counted from the
//! log lines the service already writes ("ticket created", "responded",
//! "mail attempt", "mail event", "webhook attempt", "ticket auto-closed"): a
//! layer beside the JSON formatter writes one EMF object after each such
//! line, and CloudWatch Logs turns it into a metric (namespace [`NAMESPACE`],
//! dimension `Function`). No metric API call, so nothing added to any
//! function's time budget.

use std::io::Write;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

/// The metrics' CloudWatch namespace.
pub const NAMESPACE: &str = "Ticketing";

/// The metric a log line counts, by its message and the one field that
/// qualifies it (a mail's delivery state, a webhook delivery's state).
pub fn metric_of(line: &Line) -> Option<&'static str> {
    match (line.message.as_str(), line.state.as_deref()) {
        ("ticket created" | "customer reply opened a follow-up ticket", _) => Some("TicketsCreated"),
        ("responded", _) => Some("Responses"),
        ("mail attempt", Some("sent")) => Some("MailSent"),
        ("mail attempt", Some("failed")) => Some("MailFailed"),
        // A repeated or late report changes nothing and counts nothing.
        ("mail event", Some("bounced")) if line.applied != Some(false) => Some("MailBounced"),
        ("mail event", Some("complained")) if line.applied != Some(false) => Some("MailComplained"),
        ("webhook attempt", Some("failed")) => Some("WebhookDeliveriesFailed"),
        ("ticket auto-closed", _) => Some("AutoCloses"),
        _ => None,
    }
}

/// What of a log line the metrics read.
#[derive(Debug, Default)]
pub struct Line {
    pub message: String,
    /// `delivery` (mail) or `state` (webhook deliveries).
    pub state: Option<String>,
    /// `applied` (mail events).
    pub applied: Option<bool>,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "delivery" | "state" => self.state = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "applied" {
            self.applied = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "delivery" | "state" => self.state = Some(format!("{value:?}").trim_matches('"').to_owned()),
            _ => {}
        }
    }
}

/// The EMF object counting one `metric` for `function`, at `millis`.
pub fn record(metric: &str, function: &str, millis: u128) -> serde_json::Value {
    serde_json::json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{ "Name": metric, "Unit": "Count" }],
            }],
        },
        "Function": function,
        metric: 1,
    })
}

/// Writes an EMF object after each log line that counts a metric.
pub struct EmfLayer<W> {
    writer: W,
    function: String,
}

impl<W> EmfLayer<W> {
    /// `function`: the `Function` dimension (Lambda's `AWS_LAMBDA_FUNCTION_NAME`).
    pub fn new(writer: W, function: impl Into<String>) -> Self {
        Self {
            writer,
            function: function.into(),
        }
    }
}

impl<S, W> Layer<S> for EmfLayer<W>
where
    S: tracing::Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut line = Line::default();
        event.record(&mut line);
        let Some(metric) = metric_of(&line) else { return };
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut out = record(metric, &self.function, millis).to_string();
        out.push('\n');
        // A metric that cannot be written is not worth failing a request for.
        let _ = self.writer.make_writer().write_all(out.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str, state: Option<&str>, applied: Option<bool>) -> Line {
        Line {
            message: message.into(),
            state: state.map(str::to_owned),
            applied,
        }
    }

    #[test]
    fn each_business_event_counts_its_metric_and_nothing_else_counts() {
        assert_eq!(metric_of(&line("ticket created", None, None)), Some("TicketsCreated"));
        assert_eq!(metric_of(&line("responded", Some("pending"), None)), Some("Responses"));
        assert_eq!(metric_of(&line("mail attempt", Some("sent"), None)), Some("MailSent"));
        assert_eq!(metric_of(&line("mail attempt", Some("pending"), None)), None);
        assert_eq!(
            metric_of(&line("mail event", Some("bounced"), Some(true))),
            Some("MailBounced")
        );
        assert_eq!(metric_of(&line("mail event", Some("bounced"), Some(false))), None);
        assert_eq!(metric_of(&line("mail event", Some("delivered"), Some(true))), None);
        assert_eq!(
            metric_of(&line("webhook attempt", Some("failed"), None)),
            Some("WebhookDeliveriesFailed")
        );
        assert_eq!(metric_of(&line("webhook attempt", Some("pending"), None)), None);
        assert_eq!(metric_of(&line("ticket auto-closed", None, None)), Some("AutoCloses"));
        assert_eq!(metric_of(&line("request", None, None)), None);
    }

    #[test]
    fn a_record_is_the_embedded_metric_format() {
        let r = record("MailSent", "stack-respond", 1_700_000_000_000);
        assert_eq!(r["MailSent"], 1);
        assert_eq!(r["Function"], "stack-respond");
        let directive = &r["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([["Function"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "MailSent");
        assert_eq!(r["_aws"]["Timestamp"], 1_700_000_000_000_u64);
    }
}
