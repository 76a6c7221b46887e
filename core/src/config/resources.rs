//! The other resources the function uses, each named by a setting and
//! checked at start-up: the claims table, the event bus, the verifier
//! function and the fast lane's queue.

use super::error::{err, ConfigError};
use super::read::{is_name, Get};

/// `JITR_CLAIMS_TABLE`, the claims table's name.
pub(super) fn claims_table(get: Get) -> Option<String> {
    get("JITR_CLAIMS_TABLE")
}

/// `JITR_EVENT_BUS`, checked against PutEvents' bus names (botocore's
/// events model, NonPartnerEventBusName: 1-256 of `[.\-_A-Za-z0-9]`): the
/// templates build the role's grant from the name, so an ARN is refused too.
pub(super) fn event_bus(get: Get) -> Result<Option<String>, ConfigError> {
    let bus = get("JITR_EVENT_BUS");
    match bus.as_deref() {
        Some(name) if !is_name(name, 256, ".-_") => Err(err(
            "JITR_EVENT_BUS",
            format!("\"{name}\" is not an event bus name (1-256 of a-z A-Z 0-9 . - _; the name, not the ARN)"),
        )),
        _ => Ok(bus),
    }
}

/// `JITR_VERIFIER_FUNCTION`, an unqualified Lambda function ARN.
pub(super) fn verifier_function(get: Get) -> Result<Option<String>, ConfigError> {
    let arn = get("JITR_VERIFIER_FUNCTION");
    if let Some(arn) = &arn {
        crate::verifier::check_function_arn(arn)
            .map_err(|problem| err("JITR_VERIFIER_FUNCTION", problem))?;
    }
    Ok(arn)
}

/// `JITR_FAST_LANE_QUEUE_ARN`, checked as a queue ARN
/// (`arn:<partition>:sqs:<region>:<account>:<name>`): one that no record
/// names would make the fast lane provision always, silently, so a
/// malformed one stops the function at start-up.
pub(super) fn fast_lane_queue_arn(get: Get) -> Result<Option<String>, ConfigError> {
    let arn = get("JITR_FAST_LANE_QUEUE_ARN");
    let Some(value) = &arn else {
        return Ok(None);
    };
    let parts: Vec<&str> = value.split(':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "sqs"
        && parts[3..].iter().all(|p| !p.is_empty());
    if ok {
        Ok(arn)
    } else {
        Err(err(
            "JITR_FAST_LANE_QUEUE_ARN",
            format!("\"{value}\" is not an SQS queue ARN (arn:aws:sqs:<region>:<account>:<queue>)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::config;

    /// JITR_CLAIMS_TABLE: read here like every setting (trimmed; empty is unset).
    #[test]
    fn the_claims_table_is_a_setting() {
        for (value, want) in [
            (None, None),
            (Some("  "), None),
            (Some(" jitr-Claims-1 "), Some("jitr-Claims-1")),
        ] {
            let mut vars = vec![("JITR_POLICY_NAME", "p")];
            vars.extend(value.map(|v| ("JITR_CLAIMS_TABLE", v)));
            assert_eq!(
                config(&vars).unwrap().claims_table.as_deref(),
                want,
                "{value:?}"
            );
        }
    }

    /// JITR_EVENT_BUS: a bus name as PutEvents takes it (botocore's
    /// NonPartnerEventBusName: 1-256 of [.\-_A-Za-z0-9]); unset or empty: none.
    #[test]
    fn the_event_bus_is_a_bus_name() {
        let longest = "b".repeat(256);
        let too_long = "b".repeat(257);
        for (value, ok) in [
            ("jitr-devices", true),
            (" Fleet_events.v2 ", true),
            ("default", true),
            (longest.as_str(), true),
            (too_long.as_str(), false),
            (
                "arn:aws:events:eu-west-1:123456789012:event-bus/jitr",
                false,
            ),
            ("partner/bus", false),
            ("my bus", false),
            ("b\u{fc}s", false),
        ] {
            let got = config(&[("JITR_POLICY_NAME", "p"), ("JITR_EVENT_BUS", value)]);
            match (got, ok) {
                (Ok(c), true) => assert_eq!(c.event_bus.as_deref(), Some(value.trim())),
                (Err(e), false) => {
                    assert_eq!(e.variable, "JITR_EVENT_BUS", "{value}");
                    assert!(e.problem.contains(&format!("\"{value}\"")), "{e}");
                    assert!(e.problem.contains("1-256"), "{e}");
                }
                (got, _) => panic!("{value}: {got:?}"),
            }
        }
        for unset in [vec![], vec![("JITR_EVENT_BUS", "  ")]] {
            let mut vars = unset.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            assert_eq!(config(&vars).unwrap().event_bus, None, "{unset:?}");
        }
    }

    /// JITR_VERIFIER_FUNCTION: an unqualified Lambda function ARN, or the
    /// function refuses to start naming the setting; unset or empty: none.
    #[test]
    fn the_verifier_hook_is_a_function_arn() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:verify";
        let c = config(&[
            ("JITR_POLICY_NAME", "p"),
            ("JITR_VERIFIER_FUNCTION", &format!(" {arn} ")),
        ])
        .unwrap();
        assert_eq!(c.verifier_function.as_deref(), Some(arn));
        for unset in [vec![], vec![("JITR_VERIFIER_FUNCTION", " ")]] {
            let mut vars = unset.clone();
            vars.push(("JITR_POLICY_NAME", "p"));
            assert_eq!(config(&vars).unwrap().verifier_function, None, "{unset:?}");
        }
        let qualified = format!("{arn}:live");
        for bad in [
            "verify",
            qualified.as_str(),
            "arn:aws:sqs:eu-west-1:123456789012:q",
        ] {
            let e =
                config(&[("JITR_POLICY_NAME", "p"), ("JITR_VERIFIER_FUNCTION", bad)]).unwrap_err();
            assert_eq!(e.variable, "JITR_VERIFIER_FUNCTION", "{bad}");
            assert!(
                e.to_string().starts_with(&format!(
                    "configuration JITR_VERIFIER_FUNCTION: \"{bad}\" is not a Lambda function ARN"
                )),
                "{e}"
            );
        }
    }

    #[test]
    fn the_fast_lane_is_named_by_its_queue_arn() {
        let c = config(&[("JITR_POLICY_NAME", "p")]).unwrap();
        assert_eq!(c.fast_lane_queue_arn, None);
        let arn = "arn:aws:sqs:eu-west-1:123456789012:s-FastLaneQueue-X";
        let c = config(&[
            ("JITR_POLICY_NAME", "p"),
            ("JITR_FAST_LANE_QUEUE_ARN", &format!(" {arn} ")),
        ])
        .unwrap();
        assert_eq!(c.fast_lane_queue_arn.as_deref(), Some(arn));
    }
}
