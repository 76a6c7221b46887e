//! Checks of the deployed stack (`infra/`): the topic rule and the event
//! source mappings (`event_path.rs`), the function's configuration and
//! device policy, the dead-letter queue. Pure: the command passes in what
//! it read.

use jitr_core::config::Config;

use super::event_path::{mappings_check, rule_checks};
use super::fixes::StackFixes;
use super::Check;
use crate::cloud::deployment::Deployment;

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
    fixes: &StackFixes,
) -> Vec<Check> {
    let deploy = fixes.deploy(d.stack.as_deref());
    let mut out = rule_checks(d, ca_id, fixes, &deploy);
    out.extend(mappings_check(d, fixes, &deploy));
    out.push(function_check(d, config, &deploy));
    out.extend(policy_check(d, config, policy_exists));
    out.extend(dead_letter_check(d, fixes, deploy));
    out
}

/// The function exists and its JITR_* settings parse.
fn function_check(d: &Deployment, config: Option<&Result<Config, String>>, deploy: &str) -> Check {
    match (&d.function, config) {
        (None, _) => Check::fail(
            "function",
            format!("no function found ({})", d.found_by),
            deploy,
        ),
        (Some(f), Some(Err(e))) => Check::fail(
            "function configuration",
            format!("{}: {e}", f.name),
            "correct the stack's parameters and redeploy",
        ),
        (Some(f), _) => Check::pass(
            "function configuration",
            format!("{}: JITR_* settings valid", f.name),
        ),
    }
}

/// The policy the function attaches exists, and is the stack's.
fn policy_check(
    d: &Deployment,
    config: Option<&Result<Config, String>>,
    policy_exists: Option<bool>,
) -> Option<Check> {
    let (Some(Ok(c)), Some(exists)) = (config, policy_exists) else {
        return None;
    };
    let stack_policy = d.policy.as_ref().filter(|p| **p != c.policy_name);
    Some(if let (true, Some(p)) = (exists, stack_policy) {
        Check::warn(
            "device policy",
            format!(
                "the function attaches {}, not the stack's policy {p}",
                c.policy_name
            ),
            format!(
                "set JITR_POLICY_NAME to {p} (redeploy the stack), unless {} is meant",
                c.policy_name
            ),
        )
    } else if exists {
        Check::pass("device policy", format!("{} exists", c.policy_name))
    } else {
        Check::fail("device policy", format!("JITR_POLICY_NAME {} does not exist: every provisioning fails", c.policy_name), "redeploy the stack (it creates the policy), or set JITR_POLICY_NAME to an existing policy")
    })
}

/// The event queues' dead-letter queue exists and is empty.
fn dead_letter_check(d: &Deployment, fixes: &StackFixes, deploy: String) -> Option<Check> {
    let dead_letter_arn = d.queues.iter().find_map(|q| q.dead_letter_arn.as_deref());
    match (d.queues.is_empty(), dead_letter_arn, &d.dead_letter) {
        (false, Some(arn), None) => Some(Check::warn(
            "dead-letter queue",
            format!(
                "queue missing: {arn} (the event queue's redrive target; SQS: QueueDoesNotExist): events that keep failing are lost"
            ),
            deploy,
        )),
        (false, None, None) => Some(Check::warn(
            "dead-letter queue",
            "the event queue has no dead-letter queue: events that keep failing are lost",
            deploy,
        )),
        (_, _, Some(q)) if q.messages == 0 => Some(Check::pass("dead-letter queue", "empty")),
        (_, _, Some(q)) => Some(Check::warn(
            "dead-letter queue",
            format!(
                "{} event(s) in {}: their certificates may still be pending",
                q.messages, q.url
            ),
            fixes.reconcile.clone(),
        )),
        (true, _, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::*;
    use super::*;
    use crate::cloud::deployment::{FunctionView, MappingView};
    use crate::cloud::queue::QueueView;
    use crate::cloud::topic_rule::{RuleView, REGISTERED_TOPIC};
    use crate::doctor::fixes::Known;

    fn queue(name: &str, dl: Option<&str>, n: u64) -> QueueView {
        QueueView {
            url: format!("http://q/{name}"),
            arn: format!("arn:aws:sqs:r:1:{name}"),
            dead_letter_arn: dl.map(str::to_string),
            messages: n,
        }
    }

    fn mapping(queue: &str) -> MappingView {
        MappingView {
            state: "Enabled".into(),
            queue_arn: format!("arn:aws:sqs:r:1:{queue}"),
            function_arn: "f".into(),
        }
    }

    /// The stack as deployed: a bulk and a fast lane, one dead-letter queue.
    fn healthy() -> Deployment {
        Deployment {
            found_by: "stack jitr".into(),
            rule: Some(RuleView {
                name: "r".into(),
                topic: format!("{REGISTERED_TOPIC}ca"),
                disabled: false,
                queue_urls: vec!["http://q/events".into(), "http://q/fast".into()],
                function_arns: vec![],
                arn: "arn:aws:iot:r:1:rule/r".into(),
                role_arns: vec!["arn:aws:iam::1:role/rule".into(); 2],
            }),
            queues: vec![
                queue("events", Some("arn:aws:sqs:r:1:dlq"), 0),
                queue("fast", Some("arn:aws:sqs:r:1:dlq"), 0),
            ],
            dead_letter: Some(queue("dlq", None, 0)),
            mappings: vec![mapping("events"), mapping("fast")],
            function: Some(FunctionView {
                name: "jitr-jitr".into(),
                arn: "arn:aws:lambda:r:1:function:jitr-jitr".into(),
                role: "arn:aws:iam::1:role/function".into(),
                log_group: "/aws/lambda/jitr-jitr".into(),
                env: Default::default(),
            }),
            policy: Some("p".into()),
            missing_rule: None,
            stack: Some("jitr".into()),
        }
    }

    #[test]
    fn deployment_faults_each_fail_their_own_check() {
        let config = Config::from_lookup(|k| (k == "JITR_POLICY_NAME").then(|| "p".to_string()))
            .map_err(|e| e.to_string());
        let fixes = StackFixes {
            known: Known {
                region: "r".into(),
                ..Known::default()
            },
            reconcile: "jitr reconcile --ca ca --policy p --region r".into(),
            mapping_uuids: [("arn:aws:sqs:r:1:events".to_string(), "u-1".to_string())].into(),
            ca_id: Some("ca".into()),
        };
        let run = |d: &Deployment, exists| {
            deployment_checks(d, Some("ca"), Some(&config), Some(exists), &fixes)
        };
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
        paused.mappings[0].state = "Disabled".into();
        let mut fast_paused = healthy();
        fast_paused.mappings[1].state = "Disabled".into();
        let mut fast_unread = healthy();
        fast_unread.mappings.pop();
        let mut waiting = healthy();
        waiting.dead_letter.as_mut().unwrap().messages = 3;
        let mut no_rule = healthy();
        no_rule.rule = None;
        let cases = [
            (disabled, true, "topic rule", Fail),
            (other_ca, true, "rule topic", Fail),
            (paused, true, "event source mapping", Fail),
            (fast_paused, true, "event source mapping", Fail),
            (fast_unread, true, "event source mapping", Fail),
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
        // Fixes are complete commands.
        let fix = |d: &Deployment, name: &str| {
            run(d, true)
                .into_iter()
                .find(|c| c.name == name)
                .and_then(|c| c.fix)
                .unwrap()
        };
        let mut disabled = healthy();
        disabled.rule.as_mut().unwrap().disabled = true;
        assert_eq!(
            fix(&disabled, "topic rule"),
            "aws iot enable-topic-rule --rule-name r --region r"
        );
        let mut paused = healthy();
        paused.mappings[0].state = "Disabled".into();
        assert_eq!(
            fix(&paused, "event source mapping"),
            "aws lambda update-event-source-mapping --uuid u-1 --enabled --region r"
        );
        let mut both = healthy();
        both.mappings[0].state = "Disabled".into();
        both.mappings[1].state = "Disabled".into();
        let mut two = fixes.clone();
        two.mapping_uuids
            .insert("arn:aws:sqs:r:1:fast".into(), "u-2".into());
        let both_fix = deployment_checks(&both, Some("ca"), Some(&config), Some(true), &two)
            .into_iter()
            .find(|c| c.name == "event source mapping")
            .and_then(|c| c.fix)
            .unwrap();
        assert_eq!(
            both_fix,
            "aws lambda update-event-source-mapping --uuid u-1 --enabled --region r && aws lambda update-event-source-mapping --uuid u-2 --enabled --region r"
        );
        let mut waiting = healthy();
        waiting.dead_letter.as_mut().unwrap().messages = 1;
        assert_eq!(fix(&waiting, "dead-letter queue"), fixes.reconcile);
        let bad = Err("JITR_POLICY_NAME: missing".to_string());
        let checks = deployment_checks(&healthy(), Some("ca"), Some(&bad), None, &fixes);
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

    #[test]
    fn missing_parts_are_named_missing_with_their_fix() {
        let config = Config::from_lookup(|k| (k == "JITR_POLICY_NAME").then(|| "p".to_string()))
            .map_err(|e| e.to_string());
        let check = |d: &Deployment, name: &str| {
            deployment_checks(
                d,
                Some("ca"),
                Some(&config),
                Some(true),
                &StackFixes::default(),
            )
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
        };
        // The stack names a rule AWS IoT does not hold.
        let mut no_rule = healthy();
        no_rule.rule = None;
        no_rule.missing_rule = Some("jitr_registered".into());
        let c = check(&no_rule, "topic rule");
        assert_eq!(c.status, Fail);
        assert!(
            c.detail.starts_with("rule missing: jitr_registered"),
            "{}",
            c.line()
        );
        assert!(
            c.fix.as_deref().is_some_and(|f| f.contains("deploy")),
            "{}",
            c.line()
        );
        // The rule sends to a queue SQS does not hold: either lane.
        for (at, url) in [(0, "http://q/events"), (1, "http://q/fast")] {
            let mut no_queue = healthy();
            no_queue.queues.remove(at);
            no_queue.mappings.remove(at);
            let c = check(&no_queue, "rule action");
            assert_eq!(c.status, Fail, "{url}");
            assert_eq!(
                c.detail,
                format!("queue missing: {url} (SQS: QueueDoesNotExist): the rule's events to it go nowhere"),
            );
        }
        // A rule with neither an SQS nor a Lambda action.
        let mut no_action = healthy();
        no_action.queues.clear();
        no_action.mappings.clear();
        no_action.rule.as_mut().unwrap().queue_urls.clear();
        let c = check(&no_action, "rule action");
        assert_eq!(c.status, Fail);
        assert!(!c.detail.contains("queue missing"), "{}", c.line());
        assert!(c.detail.contains("no SQS or Lambda action"), "{}", c.line());
        // A dead-letter queue configured but gone is not "no dead-letter queue".
        // The fix of a missing part: the book's page, and with the stack
        // known, the commands that put it back.
        let with_ca = StackFixes {
            ca_id: Some("ca".into()),
            ..StackFixes::default()
        };
        let fix = deployment_checks(&no_rule, Some("ca"), Some(&config), Some(true), &with_ca)
            .into_iter()
            .find(|c| c.name == "topic rule")
            .and_then(|c| c.fix)
            .unwrap();
        assert!(!fix.contains("README"), "{fix}");
        assert!(fix.contains("docs/src/guide/deploying.md"), "{fix}");
        assert!(fix.contains("make deploy STACK=jitr CA_ID=ca"), "{fix}");
        assert!(
            fix.contains("aws cloudformation delete-stack --stack-name jitr"),
            "{fix}"
        );
        let mut unnamed = no_rule.clone();
        unnamed.stack = None;
        let fix = deployment_checks(
            &unnamed,
            None,
            Some(&config),
            Some(true),
            &StackFixes::default(),
        )
        .into_iter()
        .find(|c| c.name == "topic rule")
        .and_then(|c| c.fix)
        .unwrap();
        assert!(
            fix.contains("docs/src/guide/deploying.md") && fix.contains("--stack NAME"),
            "{fix}"
        );
        let mut no_dlq = healthy();
        no_dlq.dead_letter = None;
        let c = check(&no_dlq, "dead-letter queue");
        assert_eq!(c.status, Warn);
        assert!(
            c.detail.starts_with("queue missing: arn:aws:sqs:r:1:dlq"),
            "{}",
            c.line()
        );
        let mut unset = healthy();
        unset.dead_letter = None;
        for q in &mut unset.queues {
            q.dead_letter_arn = None;
        }
        let c = check(&unset, "dead-letter queue");
        assert!(
            c.detail.contains("has no dead-letter queue"),
            "{}",
            c.line()
        );
    }
}
