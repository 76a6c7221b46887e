//! Checks of the path a registration event takes through the deployed
//! stack: the topic rule (enabled, its topic, its action) and the event
//! source mappings that read its queues. Pure: the command passes in what
//! it read.

use super::fixes::StackFixes;
use super::Check;
use crate::cloud::deployment::{Deployment, MappingView};
use crate::cloud::queue::{queue_name, QueueView};
use crate::cloud::topic_rule::covers;

/// The topic rule's checks: it exists and is enabled, its topic covers
/// `ca_id`'s registrations, its action reaches a queue or the function.
pub fn rule_checks(
    d: &Deployment,
    ca_id: Option<&str>,
    fixes: &StackFixes,
    deploy: &str,
) -> Vec<Check> {
    let mut out = Vec::new();
    match &d.rule {
        // AWS IoT answers GetTopicRule of a missing rule with
        // UnauthorizedException; ListTopicRules did not list it.
        None if d.missing_rule.is_some() => out.push(Check::fail(
            "topic rule",
            format!(
                "rule missing: {} ({} names it, AWS IoT does not hold it): registration events go nowhere",
                d.missing_rule.as_deref().unwrap_or_default(),
                d.found_by
            ),
            deploy,
        )),
        None => out.push(Check::fail(
            "topic rule",
            format!("no topic rule found ({})", d.found_by),
            deploy,
        )),
        Some(r) => {
            out.push(if r.disabled {
                Check::fail(
                    "topic rule",
                    format!("{} is disabled: registration events go nowhere", r.name),
                    fixes
                        .known
                        .aws(&format!("iot enable-topic-rule --rule-name {}", r.name)),
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
            out.push(rule_action(d, deploy));
        }
    }
    out
}

/// The rule's action: every queue it sends to exists, or it invokes a function.
fn rule_action(d: &Deployment, deploy: &str) -> Check {
    let Some(r) = &d.rule else {
        return Check::fail("rule action", "no topic rule", deploy);
    };
    let held = |url: &str| {
        d.queues
            .iter()
            .any(|q| queue_name(&q.url) == queue_name(url))
    };
    let missing: Vec<&str> = r
        .queue_urls
        .iter()
        .map(String::as_str)
        .filter(|u| !held(u))
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            "rule action",
            format!(
                "queue missing: {} (SQS: QueueDoesNotExist): the rule's events to it go nowhere",
                missing.join(", ")
            ),
            deploy,
        );
    }
    let mut sends: Vec<String> = r.queue_urls.clone();
    sends.extend(r.function_arns.iter().map(|f| format!("invokes {f}")));
    if sends.is_empty() {
        return Check::fail(
            "rule action",
            format!(
                "{} has no SQS or Lambda action: registration events go nowhere",
                r.name
            ),
            deploy,
        );
    }
    if r.queue_urls.is_empty() {
        Check::pass("rule action", sends.join(", "))
    } else {
        Check::pass("rule action", format!("sends to {}", sends.join(", ")))
    }
}

/// Every event queue (bulk and fast lane) is read by an enabled mapping.
pub fn mappings_check(d: &Deployment, fixes: &StackFixes, deploy: &str) -> Option<Check> {
    if d.queues.is_empty() {
        return None;
    }
    let mut unread = Vec::new();
    let mut off = Vec::new();
    for q in &d.queues {
        match d.mappings.iter().find(|m| m.queue_arn == q.arn) {
            None => unread.push(q.url.as_str()),
            Some(m) if !m.enabled() => off.push((q, m)),
            Some(_) => {}
        }
    }
    if !unread.is_empty() {
        return Some(Check::fail(
            "event source mapping",
            format!("nothing reads {}", unread.join(", ")),
            deploy,
        ));
    }
    if !off.is_empty() {
        let lanes: Vec<String> = off
            .iter()
            .map(|(q, m)| format!("{} ({})", q.url, m.state))
            .collect();
        // One command per lane, joined: run as printed, every lane is enabled.
        let enable = |(q, m): &(&QueueView, &MappingView)| {
            match fixes.mapping_uuids.get(&q.arn) {
            Some(uuid) => fixes.known.aws(&format!("lambda update-event-source-mapping --uuid {uuid} --enabled")),
            None => fixes.known.aws(&format!("lambda list-event-source-mappings --function-name {} --event-source-arn {}", m.function_arn, q.arn)) + " shows its UUID; then aws lambda update-event-source-mapping --uuid UUID --enabled",
        }
        };
        return Some(Check::fail(
            "event source mapping",
            format!("{}: queued events are not delivered", lanes.join(", ")),
            off.iter().map(enable).collect::<Vec<_>>().join(" && "),
        ));
    }
    let functions: Vec<&str> = d.mappings.iter().map(|m| m.function_arn.as_str()).collect();
    Some(Check::pass(
        "event source mapping",
        format!(
            "Enabled, {} to {}",
            d.queues
                .iter()
                .map(|q| queue_name(&q.url))
                .collect::<Vec<_>>()
                .join(" and "),
            functions.first().copied().unwrap_or_default()
        ),
    ))
}
