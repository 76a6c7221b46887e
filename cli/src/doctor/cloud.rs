//! Checks of what AWS holds: the issuing CA, the device's certificate and
//! the deployed stack. Pure: the command passes in what it read.

use jitr_core::config::Config;

use super::{duration, Check};
use crate::cloud::deployment::{covers, Deployment};
use crate::cloud::{CaView, CertView};

/// The issuing CA as found: its id, what AWS says of it, and its validity.
pub struct CaSeen<'a> {
    pub id: &'a str,
    /// `jitr ca register` argument for the fix (the CA directory, else the id).
    pub target: &'a str,
    pub view: Option<&'a CaView>,
    /// (notBefore, notAfter) of the CA certificate, when known.
    pub validity: Option<(i64, i64)>,
    /// Registered CAs higher in the chain (e.g. the root), by id.
    pub registered_above: &'a [String],
    /// The region calls go to.
    pub region: &'a str,
}

pub fn ca_checks(ca: &CaSeen, now: i64) -> Vec<Check> {
    let Some(view) = ca.view else {
        let detail = if ca.registered_above.is_empty() {
            format!(
                "CA {} is not registered in this account and region ({})",
                ca.id, ca.region
            )
        } else {
            format!(
                "CA {} (the one that signed the device) is not registered; only its issuer {} is, and AWS IoT registers devices under the CA that signed them",
                ca.id,
                ca.registered_above.join(", ")
            )
        };
        return vec![Check::fail(
            "ca registered",
            detail,
            format!("jitr ca register {}", ca.target),
        )];
    };
    let mut out = vec![Check::pass(
        "ca registered",
        format!("{} ({})", view.certificate_id, view.arn),
    )];
    let arn_region = view.arn.split(':').nth(3).unwrap_or_default();
    if !arn_region.is_empty() && arn_region != ca.region {
        out.push(Check::fail(
            "ca region",
            format!("registered in {arn_region}, calls go to {}", ca.region),
            format!(
                "pass --region {arn_region}, or register the CA in {}",
                ca.region
            ),
        ));
    }
    out.push(if view.status == "ACTIVE" {
        Check::pass("ca status", "ACTIVE")
    } else {
        Check::fail(
            "ca status",
            format!("{}: AWS IoT refuses its devices", view.status),
            format!("jitr ca activate {}", ca.target),
        )
    });
    out.push(if view.auto_registration == "ENABLE" {
        Check::pass("ca auto-registration", "ENABLE")
    } else {
        Check::fail(
            "ca auto-registration",
            format!(
                "{}: devices signed by it are refused instead of registered",
                or_unknown(&view.auto_registration)
            ),
            format!("jitr ca auto-registration enable {}", ca.target),
        )
    });
    out.push(if view.mode == "SNI_ONLY" {
        Check::warn(
            "ca mode",
            "SNI_ONLY: devices must send SNI (the endpoint's host name) to be matched to this CA",
            "make sure the device's TLS stack sends SNI (connect by host name, not IP)",
        )
    } else {
        Check::pass("ca mode", view.mode.clone())
    });
    if let Some((not_before, not_after)) = ca.validity {
        out.push(if (not_before..=not_after).contains(&now) {
            Check::pass(
                "ca validity",
                format!("valid until {}", super::device::date(not_after)),
            )
        } else {
            Check::fail(
                "ca validity",
                format!(
                    "not valid now (valid {} to {})",
                    super::device::date(not_before),
                    super::device::date(not_after)
                ),
                "create a new CA (jitr ca create), register it and issue devices from it",
            )
        });
    }
    out
}

/// The device certificate's state in AWS IoT (ACTIVE needs a thing and a policy attached).
pub fn certificate_check(
    id: &str,
    ca_target: &str,
    cert: Option<&CertView>,
    now: i64,
    stranded_after: i64,
) -> Check {
    const NAME: &str = "device certificate";
    let Some(c) = cert else {
        return Check::warn(NAME, format!("{id} is unknown to AWS IoT: the device has not connected, or its connection did not reach registration"), "connect it (jitr connect DEVICE_DIR) and run jitr doctor again");
    };
    let age = now - c.created;
    match c.status.as_str() {
        "PENDING_ACTIVATION" if age > stranded_after => Check::fail(
            NAME,
            format!(
                "PENDING_ACTIVATION for {} (stranded: the function never activated it)",
                duration(age)
            ),
            format!("jitr reconcile --ca {ca_target}"),
        ),
        "PENDING_ACTIVATION" => Check::warn(
            NAME,
            format!(
                "PENDING_ACTIVATION for {}: the function should activate it shortly",
                duration(age)
            ),
            "wait a few seconds and run jitr doctor again",
        ),
        "ACTIVE" => {
            if c.things.is_empty() || c.policies.is_empty() {
                Check::fail(
                    NAME,
                    format!(
                        "ACTIVE but things [{}], policies [{}]",
                        c.things.join(", "),
                        c.policies.join(", ")
                    ),
                    format!("jitr provision {id}"),
                )
            } else {
                Check::pass(
                    NAME,
                    format!(
                        "ACTIVE, thing {}, policy {}",
                        c.things.join(", "),
                        c.policies.join(", ")
                    ),
                )
            }
        }
        "REVOKED" => Check::fail(
            NAME,
            "REVOKED: the function revokes certificates it rejects (its log names the reason)",
            "issue a new certificate that the function's rules admit (jitr device issue)",
        ),
        other => Check::fail(NAME, or_unknown(other), format!("jitr provision {id}")),
    }
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
    const DEPLOY: &str = "deploy infra/ (see README, Deployment), or pass --stack NAME";
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
        out.push(if exists {
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

fn or_unknown(s: &str) -> String {
    if s.is_empty() {
        "unknown".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::{self, *};
    use super::*;
    use crate::cloud::deployment::{
        FunctionView, MappingView, QueueView, RuleView, REGISTERED_TOPIC,
    };

    fn ca(status: &str, auto: &str, mode: &str) -> CaView {
        CaView {
            certificate_id: "c".into(),
            arn: "arn:aws:iot:eu-west-1:1:cacert/c".into(),
            status: status.into(),
            auto_registration: auto.into(),
            mode: mode.into(),
            pem: String::new(),
        }
    }

    fn statuses(checks: &[Check]) -> Vec<(&'static str, Status)> {
        checks.iter().map(|c| (c.name, c.status)).collect()
    }

    #[test]
    fn ca_faults_each_fail_their_own_check() {
        let seen = |view: Option<&CaView>, above: &[String]| {
            ca_checks(
                &CaSeen {
                    id: "c",
                    target: "int",
                    view,
                    validity: Some((0, 100)),
                    registered_above: above,
                    region: "eu-west-1",
                },
                50,
            )
        };
        let healthy = ca("ACTIVE", "ENABLE", "DEFAULT");
        assert!(seen(Some(&healthy), &[]).iter().all(|c| c.status == Pass));
        let cases: [(CaView, &str, Status); 3] = [
            (ca("INACTIVE", "ENABLE", "DEFAULT"), "ca status", Fail),
            (
                ca("ACTIVE", "DISABLE", "DEFAULT"),
                "ca auto-registration",
                Fail,
            ),
            (ca("ACTIVE", "ENABLE", "SNI_ONLY"), "ca mode", Warn),
        ];
        for (view, name, status) in cases {
            let checks = seen(Some(&view), &[]);
            for (n, s) in statuses(&checks) {
                assert_eq!(s, if n == name { status } else { Pass }, "{n} for {view:?}");
            }
        }
        let missing = seen(None, &["root".to_string()]);
        assert_eq!(statuses(&missing), [("ca registered", Fail)]);
        assert!(
            missing[0].detail.contains("root")
                && missing[0].fix.as_deref() == Some("jitr ca register int")
        );
        let other_region = ca_checks(
            &CaSeen {
                id: "c",
                target: "c",
                view: Some(&healthy),
                validity: None,
                registered_above: &[],
                region: "us-east-1",
            },
            50,
        );
        assert!(statuses(&other_region).contains(&("ca region", Fail)));
        let expired = ca_checks(
            &CaSeen {
                id: "c",
                target: "c",
                view: Some(&healthy),
                validity: Some((0, 10)),
                registered_above: &[],
                region: "eu-west-1",
            },
            50,
        );
        assert!(statuses(&expired).contains(&("ca validity", Fail)));
    }

    #[test]
    fn certificate_states_read_as_pass_warn_or_fail() {
        let view = |status: &str, things: &[&str], policies: &[&str]| CertView {
            arn: "a".into(),
            status: status.into(),
            created: 1000,
            things: things.iter().map(|s| s.to_string()).collect(),
            policies: policies.iter().map(|s| s.to_string()).collect(),
        };
        let cases = [
            (None, 1010, Warn),
            (Some(view("PENDING_ACTIVATION", &[], &[])), 1010, Warn),
            (Some(view("PENDING_ACTIVATION", &[], &[])), 2000, Fail),
            (Some(view("ACTIVE", &["t"], &["p"])), 2000, Pass),
            (Some(view("ACTIVE", &["t"], &[])), 2000, Fail),
            (Some(view("REVOKED", &[], &[])), 2000, Fail),
            (Some(view("INACTIVE", &["t"], &["p"])), 2000, Fail),
        ];
        for (cert, now, status) in cases {
            let c = certificate_check("id", "root", cert.as_ref(), now, 300);
            assert_eq!(c.status, status, "{cert:?} at {now}: {}", c.line());
        }
        let stranded = certificate_check(
            "id",
            "root",
            Some(&view("PENDING_ACTIVATION", &[], &[])),
            2000,
            300,
        );
        assert_eq!(stranded.fix.as_deref(), Some("jitr reconcile --ca root"));
    }

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
                env: Default::default(),
            }),
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
        assert!(statuses(&checks).contains(&("function configuration", Fail)));
    }
}
