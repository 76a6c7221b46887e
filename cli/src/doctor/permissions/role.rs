//! Whether a role's policies allow what a part of the deployment needs: the
//! rule's role sends to the event queue, the function's role consumes it.
//! Pure: the command passes in the policies it read; `policy.rs` evaluates them.

use serde_json::Value;

use super::reference::{call_needs, Need, Place};
use crate::cloud::iam::{role_name, RolePolicies};
use crate::doctor::policy::{evaluate, Request, Verdict};
use crate::doctor::Check;

/// What reading a role (or a resource policy) gave: the policies, `None`
/// when it does not exist, or why it could not be read.
pub type Read<T> = Result<Option<T>, String>;

/// Where a role's policies fall short, or why that cannot be told.
fn shortfall(policies: &RolePolicies, needs: &[Need]) -> Result<(), Verdict> {
    let docs: Vec<&Value> = policies.documents.iter().map(|(_, d)| d).collect();
    let mut unknown = None;
    for (action, resource) in needs {
        let req = Request {
            action,
            resource,
            service: None,
            context: &[],
        };
        match evaluate(&docs, &req) {
            Verdict::Allowed => {}
            Verdict::Unknown(why) => {
                unknown.get_or_insert(Verdict::Unknown(format!("{action}: {why}")));
            }
            denied => return Err(denied),
        }
    }
    unknown.map_or(Ok(()), Err)
}

/// A role must allow every need: PASS, FAIL naming the first missing
/// permission with `fix`, or WARN when it cannot be evaluated or read.
pub fn role_check(
    name: &'static str,
    role_arn: &str,
    read: &Read<RolePolicies>,
    needs: &[Need],
    fix: &str,
) -> Check {
    let role = role_name(role_arn);
    let policies = match read {
        Err(e) => {
            return Check::warn(
                name,
                format!("could not read role {role}'s policies: {e}"),
                "grant iam:GetRole, iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, iam:GetPolicy and iam:GetPolicyVersion to run this check",
            )
        }
        Ok(None) => {
            return Check::fail(
                name,
                format!("role {role} does not exist"),
                crate::doctor::fixes::DEPLOY,
            )
        }
        Ok(Some(p)) => p,
    };
    let what = needs
        .iter()
        .map(|(a, r)| format!("{a} on {r}"))
        .collect::<Vec<_>>();
    match shortfall(policies, needs) {
        // A permissions boundary can deny what the policies allow: never PASS then.
        Ok(()) if policies.boundary.is_some() => Check::warn(
            name,
            format!(
                "role {role}'s policies allow {}, but its permissions boundary {} is not evaluated",
                what.join(", "),
                policies.boundary.as_deref().unwrap_or_default()
            ),
            format!(
                "check that the boundary of role {role} also allows {}",
                what.join(", ")
            ),
        ),
        Ok(()) => Check::pass(name, format!("role {role} allows {}", what.join(", "))),
        Err(Verdict::Unknown(why)) => Check::warn(
            name,
            format!("could not evaluate role {role}'s policies ({why})"),
            format!("check in IAM that role {role} allows {}", what.join(", ")),
        ),
        Err(verdict) => {
            let missing = needs
                .iter()
                .find(|(action, resource)| {
                    shortfall(policies, &[(*action, resource.clone())]).is_err_and(|v| v == verdict)
                })
                .map(|(a, r)| format!("{a} on {r}"))
                .unwrap_or_default();
            let how = if verdict == Verdict::Denied {
                "denies"
            } else {
                "does not allow"
            };
            Check::fail(name, format!("role {role} {how} {missing}"), fix)
        }
    }
}

/// The rule's role may send to the event queue.
pub fn rule_may_send(role_arn: &str, read: &Read<RolePolicies>, queue_arn: &str) -> Check {
    role_check(
        "rule may send to queue",
        role_arn,
        read,
        &queue_needs(&["sqs:SendMessage"], queue_arn),
        &format!(
            "allow sqs:SendMessage on {queue_arn} in role {} (redeploy the stack)",
            role_name(role_arn)
        ),
    )
}

/// The function's role may consume the event queue (what Lambda's SQS poller needs).
pub fn function_may_read(role_arn: &str, read: &Read<RolePolicies>, queue_arn: &str) -> Check {
    let needs = queue_needs(
        &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ],
        queue_arn,
    );
    role_check(
        "function may read queue",
        role_arn,
        read,
        &needs,
        &format!(
            "allow sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes on {queue_arn} in role {} (redeploy the stack)",
            role_name(role_arn)
        ),
    )
}

/// `actions` on a queue (each authorised against the queue).
fn queue_needs(actions: &[&'static str], queue_arn: &str) -> Vec<Need> {
    let name = queue_arn.rsplit(':').next().unwrap_or_default();
    actions
        .iter()
        .flat_map(|a| call_needs(a, Place::of(queue_arn), &[("queue", name)]))
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::doctor::Status::*;
    use serde_json::json;

    pub(crate) const QUEUE: &str = "arn:aws:sqs:eu-west-1:1:jitr-EventQueue-X";
    pub(crate) const ROLE: &str = "arn:aws:iam::1:role/jitr-RuleRole-X";

    pub(crate) fn role(statements: Value) -> Read<RolePolicies> {
        Ok(Some(RolePolicies {
            documents: vec![("p".into(), json!({ "Statement": statements }))],
            boundary: None,
        }))
    }

    /// The same role with a permissions boundary.
    fn bounded(statements: Value) -> Read<RolePolicies> {
        role(statements).map(|r| {
            r.map(|p| RolePolicies {
                boundary: Some("arn:aws:iam::1:policy/boundary".into()),
                ..p
            })
        })
    }

    pub(crate) fn allow(action: Value, resource: Value) -> Value {
        json!([{"Effect": "Allow", "Action": action, "Resource": resource}])
    }

    #[test]
    fn the_rule_role_must_send_to_the_queue() {
        let cases = [
            (role(allow(json!("sqs:SendMessage"), json!([QUEUE]))), Pass),
            (
                role(allow(
                    json!("sqs:SendMessage"),
                    json!("arn:aws:sqs:eu-west-1:1:other"),
                )),
                Fail,
            ),
            (role(json!([])), Fail),
            // Allowed, but a boundary may deny it: never PASS.
            (
                bounded(allow(json!("sqs:SendMessage"), json!([QUEUE]))),
                Warn,
            ),
            (bounded(json!([])), Fail),
            (Ok(None), Fail),
            (Err("AccessDenied".to_string()), Warn),
            (
                role(
                    json!([{"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]),
                ),
                Warn,
            ),
            (
                role(
                    json!([{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": QUEUE}]),
                ),
                Fail,
            ),
        ];
        for (read, status) in cases {
            let c = rule_may_send(ROLE, &read, QUEUE);
            assert_eq!(c.status, status, "{}", c.line());
        }
        let missing = rule_may_send(ROLE, &role(json!([])), QUEUE);
        assert_eq!(
            missing.detail,
            format!("role jitr-RuleRole-X does not allow sqs:SendMessage on {QUEUE}")
        );
        assert!(missing.fix.unwrap().contains("allow sqs:SendMessage"));
    }
}
