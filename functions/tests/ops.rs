//! template.yaml keeps every function operable: its worst case over its AWS
//! calls fits its Timeout (budgets.rs), it logs JSON to a log group with
//! retention, and its errors and throttles, every queue, and API 5xx alarm to
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

/// `alarm` watches `metric` in `namespace` with the dimension `dimension`
/// satisfying `value`, and notifies AlarmTopic on any datapoint above zero.
fn alarm_on(alarm: &Value, namespace: &str, metric: &str, dimension: &str, value: impl Fn(&Value) -> bool) -> bool {
    let p = &alarm["Properties"];
    p["Namespace"] == namespace
        && p["MetricName"] == metric
        && p["Dimensions"]
            .as_sequence()
            .is_some_and(|ds| ds.iter().any(|d| d["Name"] == dimension && value(&d["Value"])))
}

fn notifies_alarm_topic(name: &str, alarm: &Value) {
    let p = &alarm["Properties"];
    let actions = p["AlarmActions"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{name}: no AlarmActions"));
    assert!(
        actions.iter().any(|a| is_ref(a, "AlarmTopic")),
        "{name} does not notify AlarmTopic"
    );
    assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{name}");
    // Any datapoint above zero, except a work queue's age of its oldest message.
    if p["MetricName"] != "ApproximateAgeOfOldestMessage" {
        assert_eq!(p["Threshold"].as_f64(), Some(0.0), "{name}: any datapoint above zero");
    }
    assert_eq!(p["TreatMissingData"], "notBreaching", "{name}: no data is no trouble");
}

#[test]
fn every_function_has_a_log_group_with_retention_and_error_and_throttle_alarms() {
    let t = template();
    let groups = resources(&t, "AWS::Logs::LogGroup");
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    for (_, alarm) in &alarms {
        notifies_alarm_topic("alarm", alarm);
    }
    for (name, _) in resources(&t, "AWS::Serverless::Function") {
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
        for metric in ["Errors", "Throttles"] {
            assert!(
                alarms
                    .iter()
                    .any(|(_, a)| alarm_on(a, "AWS/Lambda", metric, "FunctionName", |v| is_ref(v, &name))),
                "{name} has no {metric} alarm: add an AWS::CloudWatch::Alarm on AWS/Lambda {metric} with \
                 Dimensions [{{Name: FunctionName, Value: !Ref {name}}}], Threshold 0, GreaterThanThreshold, \
                 AlarmActions [!Ref AlarmTopic] (copy another function's)"
            );
        }
    }
    let retention = &t["Parameters"]["LogRetentionDays"];
    assert_eq!(retention["Default"].as_u64(), Some(30));
}

/// Any message in any queue (a dead-letter or failure queue) is an alarm, and
/// so is any 5xx from the API. A work queue a function consumes (an SQS event
/// source) holds messages normally: its alarm is on a message left waiting.
#[test]
fn every_queue_and_api_5xx_alarm_to_the_topic_whose_email_is_optional() {
    let t = template();
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    let consumed: Vec<String> = resources(&t, "AWS::Serverless::Function")
        .iter()
        .filter_map(|(_, f)| f["Properties"]["Events"].as_mapping())
        .flat_map(|events| events.iter().map(|(_, e)| e))
        .filter(|e| e["Type"] == "SQS")
        .filter_map(|e| match intrinsic(&e["Properties"]["Queue"], "GetAtt") {
            Some(Value::String(s)) => s.strip_suffix(".Arn").map(str::to_owned),
            _ => None,
        })
        .collect();
    for (name, _) in resources(&t, "AWS::SQS::Queue") {
        if consumed.contains(&name) {
            assert!(
                alarms.iter().any(
                    |(_, a)| alarm_on(a, "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", |v| {
                        is_get_att(v, &name, "QueueName")
                    })
                ),
                "work queue {name} has no alarm on ApproximateAgeOfOldestMessage (a message left waiting)"
            );
            continue;
        }
        assert!(
            alarms.iter().any(|(_, a)| alarm_on(
                a,
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                |v| is_get_att(v, &name, "QueueName")
            )),
            "queue {name} has no alarm: add an AWS::CloudWatch::Alarm on AWS/SQS ApproximateNumberOfMessagesVisible \
             with Dimensions [{{Name: QueueName, Value: !GetAtt {name}.QueueName}}], Statistic Maximum, Threshold 0, \
             GreaterThanThreshold, AlarmActions [!Ref AlarmTopic] (copy CloseDeadLetterQueueAlarm)"
        );
    }
    for (name, _) in resources(&t, "AWS::Serverless::HttpApi") {
        assert!(
            alarms
                .iter()
                .any(|(_, a)| alarm_on(a, "AWS/ApiGateway", "5xx", "ApiId", |v| is_ref(v, &name))),
            "HTTP API {name} has no 5xx alarm"
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

/// JSON logs and active tracing for every function, none opting out.
#[test]
fn every_function_logs_json_and_is_traced() {
    let t = template();
    for (name, f) in resources(&t, "AWS::Serverless::Function") {
        assert_eq!(setting(&t, f, "Tracing"), "Active", "{name}");
        assert_eq!(setting(&t, f, "LoggingConfig")["LogFormat"], "JSON", "{name}");
    }
}
