//! Checks of the deployed stack (`infra/`): the topic rule, its topic and
//! action, the event source mapping, the function's configuration and
//! device policy, the dead-letter queue. Pure: the command passes in what
//! it read.

use jitr_core::config::Config;

use super::Check;
use crate::cloud::deployment::{covers, Deployment};

/// How to put a missing part back.
pub const DEPLOY: &str = "deploy infra/ (see README, Deployment), or pass --stack NAME";

/// `--stack NAME` names no CloudFormation stack here.
pub fn missing_stack(name: &str, region: &str) -> Check {
    Check::fail(
        "stack",
        format!("no CloudFormation stack {name} in {region}"),
        "pass the name the stack was deployed with (aws cloudformation list-stacks), or --region",
    )
}

/// The stack's checks; `config` is the function's JITR_* settings parsed,
/// `policy_exists` whether its policy exists.
pub fn deployment_checks(
    d: &Deployment,
    ca_id: Option<&str>,
    config: Option<&Result<Config, String>>,
    policy_exists: Option<bool>,
) -> Vec<Check> {
    let mut out = Vec::new();
    match &d.rule {
        None => out.push(Check::fail(
            "topic rule",
            format!("no topic rule found ({})", d.found_by),
            DEPLOY,
        )),
        Some(r) => {
            out.push(if r.disabled {
                Check::fail(
                    "topic rule",
                    format!("{} is disabled: registration events go nowhere", r.name),
                    format!("aws iot enable-topic-rule --rule-name {}", r.name),
                )
            } else {
                Check::pass("topic rule", format!("{} enabled", r.name))
            });
            if let Some(id) = ca_id {
                out.push(if covers(&r.topic, id) {
                    Check::pass("rule topic", format!("{} covers CA {id}", r.topic))
                } else {
                    Check::fail(
                        "rule topic",
                        format!(
                            "the rule listens on {}, not on CA {id}'s registrations",
                            r.topic
                        ),
                        format!("redeploy the stack with CaCertificateId={id}"),
                    )
                });
            }
            out.push(if d.queue.is_some() {
                Check::pass(
                    "rule action",
                    format!("sends to {}", r.queue_urls.join(", ")),
                )
            } else if r.queue_urls.is_empty() && !r.function_arns.is_empty() {
                Check::pass(
                    "rule action",
                    format!("invokes {}", r.function_arns.join(", ")),
                )
            } else {
                Check::fail(
                    "rule action",
                    format!("its queue {} does not exist", r.queue_urls.join(", ")),
                    DEPLOY,
                )
            });
        }
    }
    match (&d.queue, &d.mapping) {
        (None, _) => {}
        (Some(q), None) => out.push(Check::fail("event source mapping", format!("nothing reads {}", q.url), DEPLOY)),
        (Some(_), Some(m)) if m.state == "Enabled" => out.push(Check::pass("event source mapping", format!("Enabled, to {}", m.function_arn))),
        (Some(_), Some(m)) => out.push(Check::fail("event source mapping", format!("{}: queued events are not delivered", m.state), "aws lambda update-event-source-mapping --uuid UUID --enabled (list-event-source-mappings shows the UUID)")),
    }
    match (&d.function, config) {
        (None, _) => out.push(Check::fail(
            "function",
            format!("no function found ({})", d.found_by),
            DEPLOY,
        )),
        (Some(f), Some(Err(e))) => out.push(Check::fail(
            "function configuration",
            format!("{}: {e}", f.name),
            "correct the stack's parameters and redeploy",
        )),
        (Some(f), _) => out.push(Check::pass(
            "function configuration",
            format!("{}: JITR_* settings valid", f.name),
        )),
    }
    if let (Some(Ok(c)), Some(exists)) = (config, policy_exists) {
        let stack_policy = d.policy.as_ref().filter(|p| **p != c.policy_name);
        out.push(if let (true, Some(p)) = (exists, stack_policy) {
            Check::warn("device policy", format!("the function attaches {}, not the stack's policy {p}", c.policy_name), format!("set JITR_POLICY_NAME to {p} (redeploy the stack), unless {} is meant", c.policy_name))
        } else if exists {
            Check::pass("device policy", format!("{} exists", c.policy_name))
        } else {
            Check::fail("device policy", format!("JITR_POLICY_NAME {} does not exist: every provisioning fails", c.policy_name), "redeploy the stack (it creates the policy), or set JITR_POLICY_NAME to an existing policy")
        });
    }
    match (&d.queue, &d.dead_letter) {
        (Some(_), None) => out.push(Check::warn(
            "dead-letter queue",
            "the event queue has no dead-letter queue: events that keep failing are lost",
            DEPLOY,
        )),
        (_, Some(q)) if q.messages == 0 => out.push(Check::pass("dead-letter queue", "empty")),
        (_, Some(q)) => out.push(Check::warn(
            "dead-letter queue",
            format!(
                "{} event(s) in {}: their certificates may still be pending",
                q.messages, q.url
            ),
            format!("jitr reconcile --ca {}", ca_id.unwrap_or("CA_DIR|ID")),
        )),
        (None, None) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Status::*;
    use super::*;
    use crate::cloud::deployment::{
        FunctionView, MappingView, QueueView, RuleView, REGISTERED_TOPIC,
    };

    fn healthy() -> Deployment {
        let queue = |name: &str, dl: Option<&str>, n| QueueView {
            url: format!("http://q/{name}"),
            arn: format!("arn:aws:sqs:r:1:{name}"),
            dead_letter_arn: dl.map(str::to_string),
            messages: n,
        };
        Deployment {
            found_by: "stack jitr".into(),
            rule: Some(RuleView {
                name: "r".into(),
                topic: format!("{REGISTERED_TOPIC}ca"),
                disabled: false,
                queue_urls: vec!["http://q/events".into()],
                function_arns: vec![],
                arn: "arn:aws:iot:r:1:rule/r".into(),
                role_arns: vec!["arn:aws:iam::1:role/rule".into()],
            }),
            queue: Some(queue("events", Some("arn:aws:sqs:r:1:dlq"), 0)),
            dead_letter: Some(queue("dlq", None, 0)),
            mapping: Some(MappingView {
                state: "Enabled".into(),
                queue_arn: "arn:aws:sqs:r:1:events".into(),
                function_arn: "f".into(),
            }),
            function: Some(FunctionView {
                name: "jitr-jitr".into(),
                arn: "arn:aws:lambda:r:1:function:jitr-jitr".into(),
                role: "arn:aws:iam::1:role/function".into(),
                log_group: "/aws/lambda/jitr-jitr".into(),
                env: Default::default(),
            }),
            policy: Some("p".into()),
        }
    }

    #[test]
    fn deployment_faults_each_fail_their_own_check() {
        let config = Config::from_lookup(|k| (k == "JITR_POLICY_NAME").then(|| "p".to_string()))
            .map_err(|e| e.to_string());
        let run =
            |d: &Deployment, exists| deployment_checks(d, Some("ca"), Some(&config), Some(exists));
        assert!(
            run(&healthy(), true).iter().all(|c| c.status == Pass),
            "{:?}",
            run(&healthy(), true)
        );
        let mut disabled = healthy();
        disabled.rule.as_mut().unwrap().disabled = true;
        let mut other_ca = healthy();
        other_ca.rule.as_mut().unwrap().topic = format!("{REGISTERED_TOPIC}other");
        let mut paused = healthy();
        paused.mapping.as_mut().unwrap().state = "Disabled".into();
        let mut waiting = healthy();
        waiting.dead_letter.as_mut().unwrap().messages = 3;
        let mut no_rule = healthy();
        no_rule.rule = None;
        let cases = [
            (disabled, true, "topic rule", Fail),
            (other_ca, true, "rule topic", Fail),
            (paused, true, "event source mapping", Fail),
            (waiting, true, "dead-letter queue", Warn),
            (healthy(), false, "device policy", Fail),
            (no_rule, true, "topic rule", Fail),
        ];
        for (d, exists, name, status) in cases {
            let checks = run(&d, exists);
            for c in &checks {
                let want = if c.name == name { status } else { Pass };
                assert_eq!(c.status, want, "{name}: {}", c.line());
            }
            assert!(checks.iter().any(|c| c.name == name), "{name}");
        }
        let bad = Err("JITR_POLICY_NAME: missing".to_string());
        let checks = deployment_checks(&healthy(), Some("ca"), Some(&bad), None);
        assert!(checks
            .iter()
            .any(|c| c.name == "function configuration" && c.status == Fail));
        // The function attaches another policy than the stack's: a warning.
        let mut other = healthy();
        other.policy = Some("stack-policy".into());
        let checks = run(&other, true);
        let policy = checks.iter().find(|c| c.name == "device policy").unwrap();
        assert_eq!(policy.status, Warn, "{}", policy.line());
    }
}
