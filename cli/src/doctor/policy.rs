//! IAM policy evaluation, simple and honest: Allow and Deny statements
//! matched on action, resource (with `*` and `?` wildcards) and, for
//! resource policies, the service principal; the condition keys the caller
//! knows (`aws:SourceArn`, `aws:SourceAccount`) with the String/Arn
//! Equals/Like operators; NotAction, NotResource and NotPrincipal as IAM
//! reads them (every action, resource, principal not listed). Anything
//! else that could matter (other conditions, policy variables in a
//! resource) makes the answer "could not evaluate", never a PASS.

use serde_json::Value;

/// One request to authorise.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    /// The calling service (`iot.amazonaws.com`) for a resource policy;
    /// `None` for a role's (identity) policies, which name no principal.
    pub service: Option<&'a str>,
    /// Condition keys known for the request, e.g. `("aws:SourceArn", rule ARN)`.
    pub context: &'a [(&'a str, &'a str)],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No statement allows it.
    NotAllowed,
    /// A Deny statement matches.
    Denied,
    /// A statement that could decide it cannot be evaluated here (why).
    Unknown(String),
}

/// Whether a statement applies: yes, no, or cannot tell (why).
#[derive(Debug, PartialEq)]
enum Applies {
    Yes,
    No,
    Maybe(String),
}

/// The verdict of `documents` (each a policy document) on `req`.
pub fn evaluate(documents: &[&Value], req: &Request) -> Verdict {
    let (mut allow, mut deny) = (Applies::No, Applies::No);
    for st in documents.iter().flat_map(|d| statements(d)) {
        let applies = applies(st, req);
        let slot = if st["Effect"] == "Deny" {
            &mut deny
        } else if st["Effect"] == "Allow" {
            &mut allow
        } else {
            continue;
        };
        match applies {
            Applies::Yes => *slot = Applies::Yes,
            Applies::Maybe(why) if *slot == Applies::No => *slot = Applies::Maybe(why),
            _ => {}
        }
    }
    match (deny, allow) {
        (Applies::Yes, _) => Verdict::Denied,
        (Applies::Maybe(why), _) | (Applies::No, Applies::Maybe(why)) => Verdict::Unknown(why),
        (Applies::No, Applies::Yes) => Verdict::Allowed,
        (Applies::No, Applies::No) => Verdict::NotAllowed,
    }
}

/// A document's statements (one object or a list).
fn statements(doc: &Value) -> Vec<&Value> {
    match &doc["Statement"] {
        Value::Array(list) => list.iter().collect(),
        st @ Value::Object(_) => vec![st],
        _ => Vec::new(),
    }
}

/// A string or a list of strings.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn applies(st: &Value, req: &Request) -> Applies {
    let action = |p: &&str| glob(&p.to_ascii_lowercase(), &req.action.to_ascii_lowercase());
    let acts = if st["NotAction"].is_null() {
        strings(&st["Action"]).iter().any(action)
    } else {
        !strings(&st["NotAction"]).iter().any(action)
    };
    if !acts {
        return Applies::No;
    }
    let resource = if !st["NotResource"].is_null() {
        match resource_matches(&st["NotResource"], req.resource) {
            Applies::Yes => Applies::No,
            Applies::No => Applies::Yes,
            maybe => maybe,
        }
    } else if st["Resource"].is_null() {
        Applies::Yes
    } else {
        resource_matches(&st["Resource"], req.resource)
    };
    if resource == Applies::No {
        return Applies::No;
    }
    if let Some(service) = req.service {
        let principal = if st["NotPrincipal"].is_null() {
            principal_matches(&st["Principal"], service)
        } else {
            !principal_matches(&st["NotPrincipal"], service)
        };
        if !principal {
            return Applies::No;
        }
    }
    match (resource, conditions(&st["Condition"], req.context)) {
        (_, Applies::No) => Applies::No,
        (Applies::Maybe(why), _) | (_, Applies::Maybe(why)) => Applies::Maybe(why),
        _ => Applies::Yes,
    }
}

/// Whether any of the patterns matches `resource`; a pattern holding a
/// policy variable (`${aws:username}`) cannot be resolved here, so it
/// leaves the answer open unless another pattern matches.
fn resource_matches(patterns: &Value, resource: &str) -> Applies {
    let patterns = strings(patterns);
    if patterns
        .iter()
        .any(|p| !p.contains("${") && glob(p, resource))
    {
        Applies::Yes
    } else if patterns.iter().any(|p| p.contains("${")) {
        Applies::Maybe("a statement's Resource uses a policy variable".into())
    } else {
        Applies::No
    }
}

fn principal_matches(p: &Value, service: &str) -> bool {
    p == "*"
        || p["AWS"] == "*"
        || strings(&p["Service"])
            .iter()
            .any(|s| s.eq_ignore_ascii_case(service))
}

/// `Condition` blocks: every operator's every key must hold.
fn conditions(c: &Value, context: &[(&str, &str)]) -> Applies {
    let Some(ops) = c.as_object() else {
        return Applies::Yes;
    };
    for (op, keys) in ops {
        let like = match op.as_str() {
            "StringEquals" | "ArnEquals" => false,
            "StringLike" | "ArnLike" => true,
            _ => return Applies::Maybe(format!("a statement has a {op} condition")),
        };
        for (key, wanted) in keys.as_object().into_iter().flatten() {
            let Some((_, value)) = context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else {
                return Applies::Maybe(format!("a statement has a condition on {key}"));
            };
            let holds = strings(wanted)
                .iter()
                .any(|w| if like { glob(w, value) } else { w == value });
            if !holds {
                return Applies::No;
            }
        }
    }
    Applies::Yes
}

/// IAM wildcards: `*` any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const QUEUE: &str = "arn:aws:sqs:eu-west-1:111122223333:jitr-EventQueue-X";

    fn send(context: &'static [(&'static str, &'static str)]) -> Request<'static> {
        Request {
            action: "sqs:SendMessage",
            resource: QUEUE,
            service: None,
            context,
        }
    }

    #[test]
    fn wildcards_match_like_iam() {
        let cases = [
            ("*", "anything", true),
            ("sqs:*", "sqs:sendmessage", true),
            ("sqs:Send*", "sqs:SendMessage", true),
            ("arn:aws:iot:*:*:cert/*", "arn:aws:iot:r:1:cert/ab", true),
            ("arn:aws:iot:r:1:cert/?b", "arn:aws:iot:r:1:cert/ab", true),
            ("arn:aws:iot:r:1:thing/*", "arn:aws:iot:r:1:cert/ab", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("", "", true),
            ("abc", "ab", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob(p, t), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn identity_policies_read_as_allowed_not_allowed_denied_or_unknown() {
        let allow = |action: Value, resource: Value| json!({"Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]});
        let cases: Vec<(Vec<Value>, Verdict)> = vec![
            (
                vec![allow(json!("sqs:SendMessage"), json!(QUEUE))],
                Verdict::Allowed,
            ),
            (vec![allow(json!(["sqs:*"]), json!("*"))], Verdict::Allowed),
            (
                vec![allow(json!("SQS:sendmessage"), json!([QUEUE]))],
                Verdict::Allowed,
            ),
            (
                vec![allow(
                    json!("sqs:SendMessage"),
                    json!("arn:aws:sqs:eu-west-1:111122223333:other"),
                )],
                Verdict::NotAllowed,
            ),
            (
                vec![allow(json!("sqs:ReceiveMessage"), json!(QUEUE))],
                Verdict::NotAllowed,
            ),
            (vec![], Verdict::NotAllowed),
            (
                vec![
                    allow(json!("sqs:*"), json!("*")),
                    json!({"Statement": {"Effect": "Deny", "Action": "sqs:Send*", "Resource": "*"}}),
                ],
                Verdict::Denied,
            ),
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}),
                ],
                Verdict::Allowed,
            ),
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}),
                ],
                Verdict::Unknown("a statement has a Bool condition".into()),
            ),
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/team": "iot"}}}]}),
                ],
                Verdict::Unknown("a statement has a condition on aws:PrincipalTag/team".into()),
            ),
            (
                // A conditional Deny could take back an unconditional Allow.
                vec![
                    allow(json!("sqs:*"), json!("*")),
                    json!({"Statement": [{"Effect": "Deny", "Action": "sqs:*", "Resource": "*",
                        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}),
                ],
                Verdict::Unknown("a statement has a IpAddress condition".into()),
            ),
        ];
        for (docs, want) in cases {
            let refs: Vec<&Value> = docs.iter().collect();
            assert_eq!(evaluate(&refs, &send(&[])), want, "{docs:?}");
        }
    }

    #[test]
    fn not_action_and_not_resource_are_evaluated_as_iam_does() {
        let create = Request {
            action: "iot:CreateThing",
            resource: "arn:aws:iot:r:1:thing/robot-1",
            service: None,
            context: &[],
        };
        let allow_all = json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        let cases: Vec<(Vec<Value>, Verdict)> = vec![
            // PowerUserAccess: everything but IAM.
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}]}),
                ],
                Verdict::Allowed,
            ),
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "NotAction": "iot:*", "Resource": "*"}]}),
                ],
                Verdict::NotAllowed,
            ),
            // A Deny that does not concern the request.
            (
                vec![
                    allow_all.clone(),
                    json!({"Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucket", "NotResource": "arn:aws:s3:::keep"}]}),
                ],
                Verdict::Allowed,
            ),
            // Deny everything outside one resource: the thing is outside.
            (
                vec![
                    allow_all.clone(),
                    json!({"Statement": [{"Effect": "Deny", "Action": "iot:*", "NotResource": "arn:aws:iot:r:1:thing/other"}]}),
                ],
                Verdict::Denied,
            ),
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "Action": "iot:*", "NotResource": "arn:aws:iot:r:1:thing/robot-*"}]}),
                ],
                Verdict::NotAllowed,
            ),
            // NotPrincipal does not apply to identity policies' requests.
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}}]}),
                ],
                Verdict::Allowed,
            ),
            // Policy variables cannot be resolved here: unknown, not a FAIL.
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "Action": "iot:CreateThing", "Resource": "arn:aws:iot:r:1:thing/${aws:username}"}]}),
                ],
                Verdict::Unknown("a statement's Resource uses a policy variable".into()),
            ),
            // ...unless another pattern decides it.
            (
                vec![
                    json!({"Statement": [{"Effect": "Allow", "Action": "iot:CreateThing", "Resource": ["arn:aws:iot:r:1:thing/${aws:username}", "*"]}]}),
                ],
                Verdict::Allowed,
            ),
        ];
        for (docs, want) in cases {
            let refs: Vec<&Value> = docs.iter().collect();
            assert_eq!(evaluate(&refs, &create), want, "{docs:?}");
        }
        // NotPrincipal in a resource policy: the service is left out or not.
        let invoke = |principal: Value| {
            let doc = json!({"Statement": [{"Effect": "Allow", "NotPrincipal": principal, "Action": "lambda:InvokeFunction", "Resource": "*"}]});
            evaluate(
                &[&doc],
                &Request {
                    action: "lambda:InvokeFunction",
                    resource: "f",
                    service: Some("iot.amazonaws.com"),
                    context: &[],
                },
            )
        };
        assert_eq!(
            invoke(json!({"Service": "iot.amazonaws.com"})),
            Verdict::NotAllowed
        );
        assert_eq!(
            invoke(json!({"Service": "s3.amazonaws.com"})),
            Verdict::Allowed
        );
    }

    #[test]
    fn resource_policies_match_the_service_and_its_source() {
        const RULE: &str = "arn:aws:iot:eu-west-1:111122223333:rule/jitr_registered";
        const FUNCTION: &str = "arn:aws:lambda:eu-west-1:111122223333:function:jitr-jitr";
        let policy = |principal: Value, condition: Value| {
            json!({"Statement": [{"Effect": "Allow", "Principal": principal,
                "Action": "lambda:InvokeFunction", "Resource": FUNCTION, "Condition": condition}]})
        };
        let context = [
            ("aws:SourceArn", RULE),
            ("aws:SourceAccount", "111122223333"),
        ];
        let invoke = Request {
            action: "lambda:InvokeFunction",
            resource: FUNCTION,
            service: Some("iot.amazonaws.com"),
            context: &context,
        };
        let iot = json!({"Service": "iot.amazonaws.com"});
        let cases = [
            (policy(iot.clone(), json!(null)), Verdict::Allowed),
            (
                policy(iot.clone(), json!({"ArnLike": {"AWS:SourceArn": RULE}})),
                Verdict::Allowed,
            ),
            (
                policy(
                    iot.clone(),
                    json!({"ArnLike": {"AWS:SourceArn": "arn:aws:iot:eu-west-1:111122223333:rule/other"}}),
                ),
                Verdict::NotAllowed,
            ),
            (
                policy(
                    iot.clone(),
                    json!({"StringEquals": {"aws:SourceAccount": "111122223333"}}),
                ),
                Verdict::Allowed,
            ),
            (
                policy(json!({"Service": "s3.amazonaws.com"}), json!(null)),
                Verdict::NotAllowed,
            ),
            (policy(json!("*"), json!(null)), Verdict::Allowed),
        ];
        for (doc, want) in cases {
            assert_eq!(evaluate(&[&doc], &invoke), want, "{doc}");
        }
    }
}
