//! template.yaml keeps every function operable: its worst case over its AWS
//! calls fits its Timeout (budgets.rs), it logs JSON to a log group with
//! retention, and its error rate and throttles, every queue, the API, the
//! stream, the table, SES and Scheduler are in a few grouped alarms to
//! AlarmTopic. Read from the template, so a function or queue added later
//! without these fails here, with what to add.

use serde_yaml::Value;
use std::time::Duration;
use ticketing::adapters::aws::{self, budgets};

fn template() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

/// `(logical id, resource)` of every resource of `kind`.
fn resources<'a>(t: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(k, r)| (k.as_str().expect("a logical id").to_owned(), r))
        .collect()
}

/// The argument of intrinsic `name` (`Ref`, `Sub`, `GetAtt`), short (`!Ref x`) or long (`{Ref: x}`) form.
fn intrinsic<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == name => Some(&t.value),
        Value::Mapping(m) if m.len() == 1 => {
            let long = if name == "Ref" {
                name.to_owned()
            } else {
                format!("Fn::{name}")
            };
            m.get(long.as_str())
        }
        _ => None,
    }
}

fn is_ref(v: &Value, logical: &str) -> bool {
    intrinsic(v, "Ref").is_some_and(|r| r == logical)
}

/// `!GetAtt Resource.Attribute` in either form.
fn is_get_att(v: &Value, logical: &str, attribute: &str) -> bool {
    match intrinsic(v, "GetAtt") {
        Some(Value::String(s)) => *s == format!("{logical}.{attribute}"),
        Some(Value::Sequence(parts)) => parts.len() == 2 && parts[0] == logical && parts[1] == attribute,
        _ => false,
    }
}

/// A function's own setting, else the Globals one.
fn setting<'a>(t: &'a Value, f: &'a Value, key: &str) -> &'a Value {
    match &f["Properties"][key] {
        Value::Null => &t["Globals"]["Function"][key],
        own => own,
    }
}

fn binary(name: &str, f: &Value) -> String {
    f["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no Metadata.BuildProperties.Binary"))
        .to_owned()
}

/// HTTP API gives up on an integration after 30 s (and answers 503).
const HTTP_API_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn every_function_has_a_budget_that_fits_its_timeout() {
    let t = template();
    let functions = resources(&t, "AWS::Serverless::Function");
    for (name, f) in &functions {
        let binary = binary(name, f);
        let timeout = Duration::from_secs(
            setting(&t, f, "Timeout")
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: no Timeout (own or Globals)")),
        );
        // The call limits the function runs with: its TICKETING_AWS_TIMEOUT, read as sdk.rs reads it.
        let variable = |k: &str| {
            let own = &f["Properties"]["Environment"]["Variables"][k];
            let v = if own.is_null() {
                &t["Globals"]["Function"]["Environment"]["Variables"][k]
            } else {
                own
            };
            v.as_str().map(str::to_owned)
        };
        let limits = aws::call_limits(variable);
        let budget = budgets::budget(&binary).unwrap_or_else(|| {
            panic!(
                "{name} (binary {binary}) has no time budget. Add a FunctionBudget {{ binary: \"{binary}\", steps: &[...] }} \
                 to FUNCTIONS in shared/src/adapters/aws/budgets.rs: the AWS calls its worst invocation makes one after \
                 another (Step::Calls), bounded loops (Step::Repeat; a batch handler: batch size x calls per record), \
                 CPU work (Step::Cpu); then set its Timeout so budget + MARGIN fits."
            )
        });
        let worst = budget.worst_case(&limits);
        assert!(
            worst + budgets::MARGIN <= timeout,
            "{name} ({binary}): worst case {worst:?} + margin {:?} exceeds its Timeout {timeout:?} \
             (per call {:?}; steps {:#?}). Raise its Timeout, or cut calls from its worst path.",
            budgets::MARGIN,
            limits.worst_call(),
            budget.steps,
        );
        let served_over_http = f["Properties"]["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"] == "HttpApi"));
        if served_over_http {
            assert!(
                timeout < HTTP_API_INTEGRATION_TIMEOUT,
                "{name}: HTTP API gives up after 30 s, so a Timeout of {timeout:?} only hides a 503"
            );
        }
    }
    // No stale entries: every budget is some function's.
    for b in budgets::FUNCTIONS {
        assert!(
            functions.iter().any(|(name, f)| binary(name, f) == b.binary),
            "budgets.rs has an entry for {}, which template.yaml does not build",
            b.binary
        );
    }
}

/// The functions run with the short call timeout the budgets assume, not the
/// 4 s default meant for ticketd and the moto tests.
#[test]
fn functions_get_the_call_timeout_their_budgets_assume() {
    let t = template();
    let v = &t["Globals"]["Function"]["Environment"]["Variables"][aws::ENV_AWS_TIMEOUT];
    let limits = aws::call_limits(|_| v.as_str().map(str::to_owned));
    assert_eq!(limits.operation, Duration::from_secs(2), "{v:?}");
    assert!(limits.operation < aws::DEFAULT_CALL_TIMEOUT);
}

/// One metric an alarm reads: its own (`MetricName`) or one of its metric
/// math `Metrics`, with the math's id.
struct Watched<'a> {
    id: Option<&'a str>,
    namespace: &'a Value,
    metric: &'a Value,
    dimensions: &'a Value,
    period: Option<u64>,
}

fn watched(alarm: &Value) -> Vec<Watched<'_>> {
    let p = &alarm["Properties"];
    match p["Metrics"].as_sequence() {
        Some(queries) => queries
            .iter()
            .filter(|q| !q["MetricStat"].is_null())
            .map(|q| Watched {
                id: q["Id"].as_str(),
                namespace: &q["MetricStat"]["Metric"]["Namespace"],
                metric: &q["MetricStat"]["Metric"]["MetricName"],
                dimensions: &q["MetricStat"]["Metric"]["Dimensions"],
                period: q["MetricStat"]["Period"].as_u64(),
            })
            .collect(),
        None => vec![Watched {
            id: None,
            namespace: &p["Namespace"],
            metric: &p["MetricName"],
            dimensions: &p["Dimensions"],
            period: p["Period"].as_u64(),
        }],
    }
}

/// The metric math expressions of an alarm, joined.
fn expressions(alarm: &Value) -> String {
    alarm["Properties"]["Metrics"]
        .as_sequence()
        .map(|qs| {
            qs.iter()
                .filter_map(|q| q["Expression"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// `id` is used by one of the alarm's expressions (or the alarm watches one metric).
fn counted(alarm: &Value, w: &Watched<'_>) -> bool {
    let Some(id) = w.id else { return true };
    expressions(alarm)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == id)
}

/// Some alarm counts `metric` in `namespace` whose dimension `dimension` satisfies `value`.
fn alarmed<'a>(
    alarms: &'a [(String, &'a Value)],
    namespace: &str,
    metric: &str,
    dimension: &str,
    value: impl Fn(&Value) -> bool,
) -> Option<&'a str> {
    alarms.iter().find_map(|(name, a)| {
        watched(a)
            .iter()
            .any(|w| {
                w.namespace == namespace
                    && w.metric == metric
                    && w.dimensions
                        .as_sequence()
                        .is_some_and(|ds| ds.iter().any(|d| d["Name"] == dimension && value(&d["Value"])))
                    && counted(a, w)
            })
            .then_some(name.as_str())
    })
}

/// The alarm count the noisy scheme had: an error and a throttle alarm per
/// function, one per queue and API 5xx, each on any datapoint over a minute.
const ALARMS_BEFORE: usize = 67;

/// Every alarm reads a rate or level over periods of at least 5 minutes (no
/// single one-minute datapoint pages anyone), tells AlarmTopic when it fires
/// and when it clears, counts every metric it reads, and there are about a
/// third as many as the one-alarm-per-metric scheme had.
#[test]
fn alarms_are_few_and_each_fires_and_clears_on_periods_of_minutes() {
    let t = template();
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    assert!(
        alarms.len() * 3 <= ALARMS_BEFORE,
        "{} alarms: group them (metric math, at most 10 metrics each)",
        alarms.len()
    );
    for (name, alarm) in &alarms {
        let p = &alarm["Properties"];
        for key in ["AlarmActions", "OKActions"] {
            assert!(
                p[key]
                    .as_sequence()
                    .is_some_and(|a| a.iter().any(|a| is_ref(a, "AlarmTopic"))),
                "{name}: {key} must include !Ref AlarmTopic (whoever is paged also hears it clear)"
            );
        }
        assert_eq!(p["TreatMissingData"], "notBreaching", "{name}: no data is no trouble");
        assert!(p["EvaluationPeriods"].as_u64().is_some(), "{name}: EvaluationPeriods");
        assert!(
            p["AlarmDescription"]
                .as_str()
                .is_some_and(|d| d.contains("docs/RUNBOOK.md")),
            "{name}: its description names its runbook entry"
        );
        let metrics = watched(alarm);
        assert!(metrics.len() <= 10, "{name}: CloudWatch allows 10 metrics per alarm");
        for w in &metrics {
            assert!(
                w.period.is_some_and(|s| s >= 300),
                "{name}: {:?} over a period under 5 minutes",
                w.metric
            );
            assert!(counted(alarm, w), "{name}: metric {:?} is read but never counted", w.id);
        }
        if let Some(queries) = p["Metrics"].as_sequence() {
            let returned = queries.iter().filter(|q| q["ReturnData"] == true).count();
            assert_eq!(returned, 1, "{name}: one expression is what the alarm watches");
        }
    }
}

#[test]
fn every_function_has_a_log_group_and_its_error_rate_and_throttles_alarmed() {
    let t = template();
    let groups = resources(&t, "AWS::Logs::LogGroup");
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    for (name, f) in resources(&t, "AWS::Serverless::Function") {
        let want = format!("/aws/lambda/${{{name}}}");
        let group = groups
            .iter()
            .find(|(_, g)| intrinsic(&g["Properties"]["LogGroupName"], "Sub").is_some_and(|s| *s == want.as_str()))
            .unwrap_or_else(|| {
                panic!(
                    "{name} has no log group: add an AWS::Logs::LogGroup with LogGroupName: !Sub \"{want}\" \
                     and RetentionInDays: !Ref LogRetentionDays to the operability block of template.yaml"
                )
            });
        assert!(
            is_ref(&group.1["Properties"]["RetentionInDays"], "LogRetentionDays"),
            "{}: RetentionInDays must be !Ref LogRetentionDays",
            group.0
        );
        // The error rate: errors and invocations in the same alarm.
        let errors = alarms.iter().find(|(_, a)| {
            let one = [(String::new(), *a)];
            alarmed(&one, "AWS/Lambda", "Errors", "FunctionName", |v| is_ref(v, &name)).is_some()
                && alarmed(&one, "AWS/Lambda", "Invocations", "FunctionName", |v| is_ref(v, &name)).is_some()
        });
        assert!(
            errors.is_some(),
            "{name}: no alarm on its error rate. Add its AWS/Lambda Errors and Invocations (Dimensions \
             [{{Name: FunctionName, Value: !Ref {name}}}]) to an error-rate alarm with room (at most 10 metrics: \
             5 functions), ids used in its expressions"
        );
        assert!(
            alarmed(&alarms, "AWS/Lambda", "Throttles", "FunctionName", |v| is_ref(v, &name)).is_some(),
            "{name}: no alarm counts its Throttles. Add its AWS/Lambda Throttles to a Throttles alarm with room"
        );
        // Invoked asynchronously (Scheduler, SES): an event Lambda drops is an alarm too.
        let invoked_async = !f["Properties"]["EventInvokeConfig"].is_null()
            || f["Properties"]["Events"]
                .as_mapping()
                .is_some_and(|events| events.values().any(|e| e["Type"] == "ScheduleV2"));
        if invoked_async {
            assert!(
                alarmed(&alarms, "AWS/Lambda", "AsyncEventsDropped", "FunctionName", |v| is_ref(
                    v, &name
                ))
                .is_some(),
                "{name} is invoked asynchronously: alarm on its AsyncEventsDropped"
            );
        }
    }
    let retention = &t["Parameters"]["LogRetentionDays"];
    assert_eq!(retention["Default"].as_u64(), Some(30));
}

/// A message in a dead-letter queue is an alarm; a work queue (an SQS event
/// source, or the failure queue the sweeper drains) alarms on a message left
/// waiting. The API alarms on its 5xx rate and p99 latency; the stream on
/// reconcile's iterator age; the table on throttles and system errors; SES on
/// the reputation rates AWS reviews; Scheduler on what it drops.
#[test]
fn every_queue_the_api_the_stream_the_table_ses_and_scheduler_are_alarmed() {
    let t = template();
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    let mut work: Vec<String> = resources(&t, "AWS::Serverless::Function")
        .iter()
        .filter_map(|(_, f)| f["Properties"]["Events"].as_mapping())
        .flat_map(|events| events.iter().map(|(_, e)| e))
        .filter(|e| e["Type"] == "SQS")
        .filter_map(|e| match intrinsic(&e["Properties"]["Queue"], "GetAtt") {
            Some(Value::String(s)) => s.strip_suffix(".Arn").map(str::to_owned),
            _ => None,
        })
        .collect();
    work.push("FailureQueue".into());
    for (name, _) in resources(&t, "AWS::SQS::Queue") {
        let (metric, what) = if work.contains(&name) {
            ("ApproximateAgeOfOldestMessage", "a message left waiting")
        } else {
            ("ApproximateNumberOfMessagesVisible", "any message (a dead letter)")
        };
        assert!(
            alarmed(&alarms, "AWS/SQS", metric, "QueueName", |v| is_get_att(
                v,
                &name,
                "QueueName"
            ))
            .is_some(),
            "queue {name} has no alarm on {what}: add AWS/SQS {metric} with Dimensions \
             [{{Name: QueueName, Value: !GetAtt {name}.QueueName}}] to DeadLettersAlarm or QueueBacklogAlarm"
        );
    }
    for (name, _) in resources(&t, "AWS::Serverless::HttpApi") {
        let rate = alarms.iter().any(|(_, a)| {
            let one = [(String::new(), *a)];
            alarmed(&one, "AWS/ApiGateway", "5xx", "ApiId", |v| is_ref(v, &name)).is_some()
                && alarmed(&one, "AWS/ApiGateway", "Count", "ApiId", |v| is_ref(v, &name)).is_some()
        });
        assert!(rate, "HTTP API {name} has no 5xx rate alarm (5xx over Count)");
        let latency = alarms.iter().any(|(_, a)| {
            a["Properties"]["ExtendedStatistic"] == "p99"
                && alarmed(&[(String::new(), *a)], "AWS/ApiGateway", "Latency", "ApiId", |v| {
                    is_ref(v, &name)
                })
                .is_some()
        });
        assert!(latency, "HTTP API {name} has no p99 latency alarm");
    }
    assert!(
        alarmed(&alarms, "AWS/Lambda", "IteratorAge", "FunctionName", |v| is_ref(
            v,
            "ReconcileFunction"
        ))
        .is_some(),
        "nothing watches how far reconcile is behind the stream"
    );
    for metric in ["ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"] {
        assert!(
            alarmed(&alarms, "AWS/DynamoDB", metric, "TableName", |v| is_ref(
                v,
                "TicketsTable"
            ))
            .is_some(),
            "the table's {metric} are not alarmed"
        );
    }
    for (metric, threshold) in [("Reputation.BounceRate", 0.05), ("Reputation.ComplaintRate", 0.001)] {
        let found = alarms.iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["Namespace"] == "AWS/SES"
                && p["MetricName"] == metric
                && p["Threshold"].as_f64() == Some(threshold)
                && p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        });
        assert!(
            found,
            "no alarm on SES {metric} >= {threshold} (where AWS reviews the account)"
        );
    }
    for metric in ["InvocationDroppedCount", "TargetErrorCount"] {
        assert!(
            alarmed(&alarms, "AWS/Scheduler", metric, "ScheduleGroup", |v| is_ref(
                v,
                "AutoCloseScheduleGroup"
            ))
            .is_some(),
            "Scheduler's {metric} for the auto-close group is not alarmed"
        );
    }
    assert_eq!(
        t["Resources"]["AlarmTopic"]["Type"], "AWS::SNS::Topic",
        "the alarms' topic"
    );
    let subscriptions: Vec<_> = resources(&t, "AWS::SNS::Subscription")
        .into_iter()
        .filter(|(_, s)| is_ref(&s["Properties"]["TopicArn"], "AlarmTopic"))
        .collect();
    assert_eq!(subscriptions.len(), 1, "one subscription to the alarm topic");
    let (name, sub) = &subscriptions[0];
    assert_eq!(sub["Condition"], "HasAlarmEmail", "{name}: only when AlarmEmail is set");
    assert!(is_ref(&sub["Properties"]["TopicArn"], "AlarmTopic"));
    assert!(is_ref(&sub["Properties"]["Endpoint"], "AlarmEmail"));
    assert_eq!(sub["Properties"]["Protocol"], "email");
    assert_eq!(t["Parameters"]["AlarmEmail"]["Default"], "", "optional");
}

/// The HTTP API writes one JSON access-log line per request (request id,
/// route, status, latency, source IP, integration error) to a log group
/// with retention; Lambda's REPORT lines (duration, memory, init) are kept.
#[test]
fn the_api_logs_each_request_and_functions_keep_their_report_lines() {
    let t = template();
    for (name, api) in resources(&t, "AWS::Serverless::HttpApi") {
        let settings = &api["Properties"]["AccessLogSettings"];
        let group = match intrinsic(&settings["DestinationArn"], "GetAtt") {
            Some(Value::String(s)) => s
                .strip_suffix(".Arn")
                .unwrap_or_else(|| panic!("{name}: {s}"))
                .to_owned(),
            other => panic!("{name}: AccessLogSettings.DestinationArn must be !GetAtt <LogGroup>.Arn, not {other:?}"),
        };
        let g = &t["Resources"][group.as_str()];
        assert_eq!(g["Type"], "AWS::Logs::LogGroup", "{name}: {group}");
        assert!(
            is_ref(&g["Properties"]["RetentionInDays"], "LogRetentionDays"),
            "{group}"
        );
        let format: serde_json::Value = serde_json::from_str(settings["Format"].as_str().expect("a Format"))
            .unwrap_or_else(|e| panic!("{name}: the access log format is not JSON: {e}"));
        for (key, variable) in [
            ("requestId", "$context.requestId"),
            ("routeKey", "$context.routeKey"),
            ("status", "$context.status"),
            ("responseLatency", "$context.responseLatency"),
            ("sourceIp", "$context.identity.sourceIp"),
            ("integrationError", "$context.integrationErrorMessage"),
        ] {
            assert_eq!(format[key], variable, "{name}: access log field {key}");
        }
        assert!(
            !settings["Format"]
                .as_str()
                .unwrap_or_default()
                .contains("$context.path"),
            "{name}: raw paths may hold customer emails; log the route"
        );
    }
    for (name, f) in resources(&t, "AWS::Serverless::Function") {
        let level = &setting(&t, f, "LoggingConfig")["SystemLogLevel"];
        assert!(
            level.is_null() || level == "INFO" || level == "DEBUG",
            "{name}: SystemLogLevel {level:?} drops Lambda's REPORT lines"
        );
    }
}

/// JSON logs and active tracing for every function, none opting out.
#[test]
fn every_function_logs_json_and_is_traced() {
    let t = template();
    for (name, f) in resources(&t, "AWS::Serverless::Function") {
        assert_eq!(setting(&t, f, "Tracing"), "Active", "{name}");
        assert_eq!(setting(&t, f, "LoggingConfig")["LogFormat"], "JSON", "{name}");
    }
}
