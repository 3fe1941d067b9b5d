//! Each function's IAM statements as template.yaml declares them, with
//! `!Ref`, `!GetAtt` and `!Sub` resolved to one test deployment's names, and
//! an evaluator that says whether they allow a recorded AWS call: the action,
//! the resource's ARN, and the conditions the template uses
//! (`dynamodb:LeadingKeys`, `ses:FromAddress`, `iam:PassedToService`).

use serde_yaml::Value;
use std::collections::BTreeMap;
use ticketing::adapters::aws::Call;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const STACK: &str = "iam";

/// The physical names a deployment gives the template's logical ids:
/// `Ref` values and `GetAtt` attributes (`Logical.Attribute`).
#[derive(Debug, Default, Clone)]
pub struct Names(pub BTreeMap<String, String>);

impl Names {
    fn get(&self, name: &str) -> String {
        match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => REGION.into(),
            "AWS::AccountId" => ACCOUNT.into(),
            "AWS::StackName" => STACK.into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            other => self
                .0
                .get(other)
                .cloned()
                .unwrap_or_else(|| panic!("the test deployment has no name for {other}")),
        }
    }

    /// A template value with its intrinsics resolved: strings, or lists of them.
    pub fn resolve(&self, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(list) => list.iter().flat_map(|x| self.resolve(x)).collect(),
            Value::Tagged(t) => {
                let arg = t.value.as_str().map(str::to_owned);
                match t.tag.to_string().as_str() {
                    "!Ref" => vec![self.get(&arg.expect("!Ref name"))],
                    "!GetAtt" => vec![self.get(&arg.expect("!GetAtt name"))],
                    "!Sub" => vec![self.sub(&arg.expect("!Sub string"))],
                    other => panic!("intrinsic {other} is not resolved by the IAM harness"),
                }
            }
            other => panic!("unexpected policy value {other:?}"),
        }
    }

    fn sub(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').expect("closed ${") + i;
            out.push_str(&self.get(&rest[i + 2..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// One statement, resolved.
#[derive(Debug, Clone)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// operator -> key -> allowed values
    pub conditions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// The statements of `function` (a logical id) in the template.
pub fn statements(template: &Value, function: &str, names: &Names) -> Vec<Statement> {
    let f = &template["Resources"][function];
    let mut out = Vec::new();
    for policy in f["Properties"]["Policies"].as_sequence().expect("Policies") {
        let Some(list) = policy["Statement"].as_sequence() else {
            panic!("{function}: a SAM policy template the IAM harness does not expand: {policy:?}");
        };
        for st in list {
            assert_eq!(st["Effect"], "Allow", "{function}: only Allow statements");
            let mut conditions = BTreeMap::new();
            if let Some(c) = st["Condition"].as_mapping() {
                for (op, keys) in c {
                    let mut m = BTreeMap::new();
                    for (k, v) in keys.as_mapping().expect("condition keys") {
                        m.insert(k.as_str().unwrap().to_owned(), names.resolve(v));
                    }
                    conditions.insert(op.as_str().unwrap().to_owned(), m);
                }
            }
            out.push(Statement {
                actions: names.resolve(&st["Action"]),
                resources: names.resolve(&st["Resource"]),
                conditions,
            });
        }
    }
    out
}

/// The policy document moto enforces for a function. moto 5.2.5 checks the
/// action of every request, but the resource only for SQS and S3 (the others
/// are checked against `*`), evaluates no condition keys of these services
/// (a condition with no value would deny), and authorizes a transaction as
/// `dynamodb:TransactWriteItems` rather than per item: so the statements go
/// in with resources kept for SQS and S3 only, no conditions, and the
/// transaction actions added beside item writes. [`allows`] checks all of
/// that exactly on the recorded calls.
pub fn moto_policy(statements: &[Statement]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = statements
        .iter()
        .map(|st| {
            let mut actions = st.actions.clone();
            if actions.iter().any(|a| {
                [
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:ConditionCheckItem",
                ]
                .contains(&a.as_str())
            }) {
                actions.push("dynamodb:TransactWriteItems".into());
            }
            let keep = st.actions.iter().all(|a| a.starts_with("sqs:") || a.starts_with("s3:"));
            let resource = if keep {
                serde_json::json!(st.resources)
            } else {
                serde_json::json!("*")
            };
            serde_json::json!({"Effect": "Allow", "Action": actions, "Resource": resource})
        })
        // moto checks GetQueueUrl against `*` (it reads no queue name from
        // the request); the recorded-call check holds it to the queue.
        .chain(
            statements
                .iter()
                .any(|st| st.actions.iter().any(|a| a == "sqs:GetQueueUrl"))
                .then(|| serde_json::json!({"Effect": "Allow", "Action": "sqs:GetQueueUrl", "Resource": "*"})),
        )
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": list})
}

fn glob(pattern: &str, value: &str) -> bool {
    // `*` matches any run, `?` one character (IAM's wildcards).
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// One authorization IAM makes for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Vec<String>>,
}

/// What IAM checks for a recorded call, its resources as ARNs.
/// `stream_arn`: the table's stream (a `GetRecords` names it by iterator).
pub fn requests(call: &Call, stream_arn: &str) -> Vec<Request> {
    let arn = |service: &str, rest: &str| format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{rest}");
    let mut context = BTreeMap::new();
    let action = call.iam_action();
    let resource = match call.service {
        "dynamodb"
            if call.action.contains("Stream") || ["GetRecords", "GetShardIterator"].contains(&call.action.as_str()) =>
        {
            if call.resource.is_empty() {
                stream_arn.to_owned()
            } else {
                call.resource.clone()
            }
        }
        "dynamodb" => {
            if let Some(key) = &call.leading_key {
                context.insert("dynamodb:LeadingKeys".to_owned(), vec![key.clone()]);
            }
            arn("dynamodb", &format!("table/{}", call.resource))
        }
        "sqs" => arn("sqs", call.resource.rsplit('/').next().unwrap_or_default()),
        "secretsmanager" => call.resource.clone(),
        "s3" => format!("arn:aws:s3:::{}", call.resource),
        "scheduler" => arn("scheduler", &format!("schedule/{}", call.resource)),
        "ses" => {
            context.insert("ses:FromAddress".to_owned(), vec![call.resource.clone()]);
            let mut out = vec![Request {
                action: action.clone(),
                resource: arn("ses", &format!("identity/{}", call.resource)),
                context: context.clone(),
            }];
            if let Some(set) = &call.configuration_set {
                out.push(Request {
                    action,
                    resource: arn("ses", &format!("configuration-set/{set}")),
                    context,
                });
            }
            return out;
        }
        other => panic!("a call to {other} the IAM harness does not know: {call:?}"),
    };
    let mut out = vec![Request {
        action,
        resource,
        context,
    }];
    if let Some(role) = &call.passed_role {
        out.push(Request {
            action: "iam:PassRole".into(),
            resource: role.clone(),
            context: BTreeMap::from([(
                "iam:PassedToService".to_owned(),
                vec!["scheduler.amazonaws.com".to_owned()],
            )]),
        });
    }
    out
}

fn condition_holds(op: &str, key: &str, allowed: &[String], context: &BTreeMap<String, Vec<String>>) -> bool {
    let values = context.get(key);
    let matches = |v: &String, like: bool| allowed.iter().any(|a| if like { glob(a, v) } else { a == v });
    match op {
        // Every value present must match (none present: true, as in IAM).
        "ForAllValues:StringLike" => values.is_none_or(|vs| vs.iter().all(|v| matches(v, true))),
        "ForAllValues:StringEquals" => values.is_none_or(|vs| vs.iter().all(|v| matches(v, false))),
        // A single-valued key: present and matching.
        "StringEquals" => values.is_some_and(|vs| !vs.is_empty() && vs.iter().all(|v| matches(v, false))),
        "StringLike" => values.is_some_and(|vs| !vs.is_empty() && vs.iter().all(|v| matches(v, true))),
        other => panic!("condition operator {other} is not evaluated by the IAM harness"),
    }
}

/// Whether `statements` allow `request`.
pub fn allows(statements: &[Statement], request: &Request) -> bool {
    statements.iter().any(|st| {
        st.actions.iter().any(|a| glob(a, &request.action))
            && st.resources.iter().any(|r| glob(r, &request.resource))
            && st
                .conditions
                .iter()
                .all(|(op, keys)| keys.iter().all(|(k, v)| condition_holds(op, k, v, &request.context)))
    })
}

#[test]
fn the_evaluator_reads_actions_resources_and_conditions_as_iam_does() {
    let names = Names(BTreeMap::from([(
        "T.Arn".to_owned(),
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"),
    )]));
    let t: Value = serde_yaml::from_str(
        r#"
Resources:
  F:
    Properties:
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem]
              Resource: !GetAtt T.Arn
            - Effect: Allow
              Action: [dynamodb:UpdateItem]
              Resource: !Sub "${T.Arn}"
              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys: ["ORG#*"]
"#,
    )
    .unwrap();
    let st = statements(&t, "F", &names);
    let req = |action: &str, key: &str| Request {
        action: action.into(),
        resource: format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"),
        context: BTreeMap::from([("dynamodb:LeadingKeys".to_owned(), vec![key.to_owned()])]),
    };
    assert!(allows(&st, &req("dynamodb:GetItem", "IDEM#1")));
    assert!(allows(&st, &req("dynamodb:UpdateItem", "ORG#1")));
    assert!(!allows(&st, &req("dynamodb:UpdateItem", "IDEM#1")), "LeadingKeys");
    assert!(!allows(&st, &req("dynamodb:PutItem", "ORG#1")), "action");
    let mut other = req("dynamodb:GetItem", "ORG#1");
    other.resource = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/index/by_org");
    assert!(!allows(&st, &other), "an index is another resource");
}
