//! Checks of the permissions between the deployment's parts: the rule's
//! role may send to the queue, the function's role may consume it and call
//! the AWS IoT actions provisioning needs, and a rule that invokes the
//! function directly is let in by the function's resource policy. Pure:
//! the command passes in the policies it read; `policy.rs` evaluates them.

use serde_json::Value;

use super::policy::{evaluate, Request, Verdict};
use super::Check;
use crate::cloud::iam::{role_name, RolePolicies};

/// What reading a role (or a resource policy) gave: the policies, `None`
/// when it does not exist, or why it could not be read.
pub type Read<T> = Result<Option<T>, String>;

/// One action on one resource that a role must be allowed.
pub type Need = (&'static str, String);

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
                super::deployment::DEPLOY,
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
        &[("sqs:SendMessage", queue_arn.to_string())],
        &format!(
            "allow sqs:SendMessage on {queue_arn} in role {} (redeploy the stack)",
            role_name(role_arn)
        ),
    )
}

/// The function's role may consume the event queue (what Lambda's SQS poller needs).
pub fn function_may_read(role_arn: &str, read: &Read<RolePolicies>, queue_arn: &str) -> Check {
    let needs: Vec<Need> = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ]
    .into_iter()
    .map(|a| (a, queue_arn.to_string()))
    .collect();
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

/// What provisioning calls, on example resources of the function's account
/// and region, each on the resource AWS authorises it against (IAM's
/// Service Authorization Reference; `core/src/provision.rs`). With a device
/// group (the stacks) the thing joins it and JITR_THING_GROUPS', checked on
/// the thing and on each group; without one, AttachPolicy on the
/// certificate (AWS checks the target only, not the policy).
pub fn provisioning_needs(
    function_arn: &str,
    config: &jitr_core::config::Config,
    certificate_id: &str,
    thing: &str,
) -> Vec<Need> {
    let (account, region) = super::ca::arn_place(function_arn);
    let arn = |r: &str| format!("arn:aws:iot:{region}:{account}:{r}");
    let (cert, thing_arn) = (
        arn(&format!("cert/{certificate_id}")),
        arn(&format!("thing/{thing}")),
    );
    let mut needs = vec![
        ("iot:DescribeCertificate", cert.clone()),
        ("iot:UpdateCertificate", cert.clone()),
        ("iot:ListThingPrincipals", thing_arn.clone()),
        ("iot:CreateThing", thing_arn.clone()),
        ("iot:AttachThingPrincipal", cert.clone()),
    ];
    if config.device_group.is_none() {
        needs.push(("iot:AttachPolicy", cert));
    }
    let groups: Vec<&String> = config
        .device_group
        .iter()
        .chain(&config.thing_groups)
        .collect();
    if !groups.is_empty() {
        needs.push(("iot:AddThingToThingGroup", thing_arn));
    }
    for g in groups {
        needs.push(("iot:AddThingToThingGroup", arn(&format!("thinggroup/{g}"))));
    }
    needs
}

/// The function's role may call what provisioning needs.
pub fn function_may_provision(role_arn: &str, read: &Read<RolePolicies>, needs: &[Need]) -> Check {
    role_check(
        "function may provision",
        role_arn,
        read,
        needs,
        &format!(
            "allow the missing action in role {} (the template's FunctionRole lists them all; redeploy the stack)",
            role_name(role_arn)
        ),
    )
}

/// A rule with a Lambda action: the function's resource policy lets
/// iot.amazonaws.com invoke it for this rule.
pub fn rule_may_invoke(function_arn: &str, rule_arn: &str, policy: &Read<Value>) -> Check {
    const NAME: &str = "rule may invoke function";
    let (account, _) = super::ca::arn_place(rule_arn);
    let fix = format!(
        "aws lambda add-permission --function-name {function_arn} --statement-id iot-invoke --action lambda:InvokeFunction --principal iot.amazonaws.com --source-arn {rule_arn} --source-account {account}"
    );
    let doc = match policy {
        Err(e) => {
            return Check::warn(
                NAME,
                format!("could not read the function's resource policy: {e}"),
                "grant lambda:GetPolicy to run this check",
            )
        }
        Ok(None) => {
            return Check::fail(
                NAME,
                format!("{function_arn} has no resource policy: AWS IoT may not invoke it"),
                fix,
            )
        }
        Ok(Some(doc)) => doc,
    };
    let context = [("aws:SourceArn", rule_arn), ("aws:SourceAccount", account)];
    let req = Request {
        action: "lambda:InvokeFunction",
        resource: function_arn,
        service: Some("iot.amazonaws.com"),
        context: &context,
    };
    match evaluate(&[doc], &req) {
        Verdict::Allowed => Check::pass(
            NAME,
            format!("iot.amazonaws.com may invoke it for {rule_arn}"),
        ),
        Verdict::Unknown(why) => Check::warn(
            NAME,
            format!("could not evaluate the function's resource policy ({why})"),
            format!("check that it lets iot.amazonaws.com invoke it for {rule_arn}"),
        ),
        _ => Check::fail(
            NAME,
            format!("its resource policy does not let iot.amazonaws.com invoke it for {rule_arn}"),
            fix,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::*;
    use super::*;
    use serde_json::json;

    const QUEUE: &str = "arn:aws:sqs:eu-west-1:1:jitr-EventQueue-X";
    const ROLE: &str = "arn:aws:iam::1:role/jitr-RuleRole-X";
    const FUNCTION: &str = "arn:aws:lambda:eu-west-1:1:function:jitr-jitr";

    fn role(statements: Value) -> Read<RolePolicies> {
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

    fn allow(action: Value, resource: Value) -> Value {
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

    #[test]
    fn the_function_role_must_consume_the_queue_and_provision() {
        let consume = role(allow(
            json!([
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes"
            ]),
            json!(QUEUE),
        ));
        assert_eq!(function_may_read(ROLE, &consume, QUEUE).status, Pass);
        let receive_only = role(allow(json!("sqs:ReceiveMessage"), json!(QUEUE)));
        let c = function_may_read(ROLE, &receive_only, QUEUE);
        assert_eq!(c.status, Fail);
        assert!(c.detail.contains("sqs:DeleteMessage"), "{}", c.detail);

        let config = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = [("JITR_POLICY_NAME", "dev-policy")]
                .iter()
                .chain(vars)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            jitr_core::config::Config::from_lookup(|k| {
                vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
            .unwrap()
        };
        let stack = config(&[
            ("JITR_DEVICE_GROUP", "devices"),
            ("JITR_THING_GROUPS", "fleet"),
        ]);
        let needs = provisioning_needs(FUNCTION, &stack, "ab", "robot-1");
        assert!(
            !needs.iter().any(|(a, _)| *a == "iot:AttachPolicy"),
            "{needs:?}"
        );
        for group in ["devices", "fleet"] {
            let group = format!("arn:aws:iot:eu-west-1:1:thinggroup/{group}");
            assert!(
                needs.contains(&("iot:AddThingToThingGroup", group)),
                "{needs:?}"
            );
        }
        // The template's statements, as deployed with ThingGroups=fleet.
        let template = role(json!([
            {"Effect": "Allow", "Action": ["iot:DescribeCertificate", "iot:UpdateCertificate"], "Resource": "arn:aws:iot:eu-west-1:1:cert/*"},
            {"Effect": "Allow", "Action": "iot:ListThingPrincipals", "Resource": "arn:aws:iot:eu-west-1:1:thing/*"},
            {"Effect": "Allow", "Action": "iot:CreateThing", "Resource": "arn:aws:iot:eu-west-1:1:thing/*"},
            {"Effect": "Allow", "Action": "iot:AttachThingPrincipal", "Resource": "arn:aws:iot:eu-west-1:1:cert/*"},
            {"Effect": "Allow", "Action": "iot:AddThingToThingGroup", "Resource": ["arn:aws:iot:eu-west-1:1:thing/*", "arn:aws:iot:eu-west-1:1:thinggroup/devices", "arn:aws:iot:eu-west-1:1:thinggroup/fleet"]},
        ]));
        assert_eq!(function_may_provision(ROLE, &template, &needs).status, Pass);
        // A group the role may not add to fails, named.
        let other = config(&[
            ("JITR_DEVICE_GROUP", "devices"),
            ("JITR_THING_GROUPS", "elsewhere"),
        ]);
        let c = function_may_provision(
            ROLE,
            &template,
            &provisioning_needs(FUNCTION, &other, "ab", "robot-1"),
        );
        assert_eq!(c.status, Fail);
        assert!(
            c.detail.contains(
                "iot:AddThingToThingGroup on arn:aws:iot:eu-west-1:1:thinggroup/elsewhere"
            ),
            "{}",
            c.detail
        );
        // Without a device group the certificate gets the policy: AttachPolicy on it.
        let per_certificate = provisioning_needs(FUNCTION, &config(&[]), "ab", "robot-1");
        assert!(per_certificate.contains(&(
            "iot:AttachPolicy",
            "arn:aws:iot:eu-west-1:1:cert/ab".to_string()
        )));
        assert_eq!(
            function_may_provision(ROLE, &template, &per_certificate).status,
            Fail
        );
    }

    #[test]
    fn a_rule_invoking_the_function_needs_its_resource_policy() {
        const RULE: &str = "arn:aws:iot:eu-west-1:1:rule/jitr_registered";
        let policy = |source: &str| {
            Ok(Some(json!({"Statement": [{"Effect": "Allow",
                "Principal": {"Service": "iot.amazonaws.com"}, "Action": "lambda:InvokeFunction",
                "Resource": FUNCTION, "Condition": {"ArnLike": {"AWS:SourceArn": source}}}]})))
        };
        let cases = [
            (policy(RULE), Pass),
            (policy("arn:aws:iot:eu-west-1:1:rule/other"), Fail),
            (Ok(None), Fail),
            (Err("AccessDenied".to_string()), Warn),
        ];
        for (read, status) in cases {
            let c = rule_may_invoke(FUNCTION, RULE, &read);
            assert_eq!(c.status, status, "{}", c.line());
        }
        assert!(rule_may_invoke(FUNCTION, RULE, &Ok(None))
            .fix
            .unwrap()
            .starts_with("aws lambda add-permission"));
    }
}
