//! The device's certificate in AWS IoT: unknown, pending (or stranded),
//! active with thing and policy, revoked and why (from the function's
//! logs). Pure: the command passes in what it read.

use jitr_core::iot::CertStatus;

use super::ca::or_unknown;
use super::{duration, Check};
use crate::cloud::certificate::CertView;

/// What the function's log group said about the certificate.
#[derive(Debug, Clone)]
pub enum LogReading {
    /// The group's lines that mention the certificate.
    Lines { group: String, lines: Vec<String> },
    /// The group does not exist (the function never logged, or logs elsewhere).
    NoGroup(String),
    /// Reading failed (e.g. no logs:FilterLogEvents permission).
    Unreadable(String),
}

/// A revocation `jitr device revoke` recorded (`revoked.json` of the CA
/// directory or of the devices' OUTDIR): when, and which file says so.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// RFC 3339 UTC, as recorded.
    pub revoked_at: String,
    pub file: String,
}

/// The reason of the newest "Rejected" outcome the function logged for a
/// certificate (`core/src/handler.rs` logs one JSON line per certificate:
/// `fields.outcome`, `fields.reason`; plain text `outcome=... reason="..."`
/// when the function logs text).
pub fn rejection_reason(lines: &[String]) -> Option<String> {
    lines.iter().rev().find_map(|line| {
        let json = line
            .find('{')
            .and_then(|at| serde_json::from_str::<serde_json::Value>(&line[at..]).ok());
        if let Some(v) = json {
            let f = if v["fields"].is_object() {
                &v["fields"]
            } else {
                &v
            };
            return (f["outcome"] == "Rejected")
                .then(|| f["reason"].as_str().map(str::to_string))
                .flatten();
        }
        let rejected = line.contains("outcome=\"Rejected\"") || line.contains("outcome=Rejected");
        let at = line.find("reason=\"")? + 8;
        rejected.then(|| quoted(&line[at..])).flatten()
    })
}

/// The text up to the first unescaped `"`, with `\"` and `\\` unescaped
/// (how tracing's text format writes a string field).
pub(super) fn quoted(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// The device certificate's state in AWS IoT (ACTIVE needs a thing and a
/// policy: its own, or, as the stacks give it, one attached to a group of
/// its thing; REVOKED says why: the revocation jitr recorded, else the
/// function's logs when read).
pub fn certificate_check(
    id: &str,
    ca_target: &str,
    cert: Option<&CertView>,
    now: i64,
    stranded_after: i64,
    logs: Option<&LogReading>,
    recorded: Option<&Recorded>,
) -> Check {
    const NAME: &str = "device certificate";
    let Some(c) = cert else {
        return Check::warn(NAME, format!("{id} is unknown to AWS IoT: the device has not connected, or its connection did not reach registration"), "connect it (jitr connect DEVICE_DIR) and run jitr doctor again");
    };
    let age = now - c.created;
    let attached = format!(
        "thing [{}], policy [{}]",
        c.things.join(", "),
        c.policies.join(", ")
    );
    match &c.status {
        CertStatus::PendingActivation if age > stranded_after => Check::fail(
            NAME,
            format!(
                "PENDING_ACTIVATION for {} (stranded: the function never activated it)",
                duration(age)
            ),
            format!("jitr reconcile --ca {ca_target}"),
        ),
        CertStatus::PendingActivation => Check::warn(
            NAME,
            format!(
                "PENDING_ACTIVATION for {}: the function should activate it shortly",
                duration(age)
            ),
            "wait a few seconds and run jitr doctor again",
        ),
        CertStatus::Active if c.things.is_empty() || c.policies.is_empty() => Check::fail(
            NAME,
            format!("ACTIVE but {attached}"),
            format!("jitr provision {id}"),
        ),
        CertStatus::Active => Check::pass(NAME, format!("ACTIVE, {attached}")),
        CertStatus::Revoked => match recorded {
            Some(r) => Check::fail(
                NAME,
                format!(
                    "REVOKED by an administrator (jitr device revoke) at {}, as {} records",
                    r.revoked_at, r.file
                ),
                "revoked on purpose: if the device should connect again, issue it a new certificate (jitr device issue)",
            ),
            None => Check::fail(
                NAME,
                format!("REVOKED: {}", revoked_because(logs)),
                "issue a new certificate that the function's rules admit (jitr device issue)",
            ),
        },
        other => Check::fail(NAME, or_unknown(other.as_str()), format!("jitr provision {id}")),
    }
}

fn revoked_because(logs: Option<&LogReading>) -> String {
    match logs {
        None => "the function revokes certificates it rejects (no function found to read its logs)"
            .into(),
        Some(LogReading::Lines { group, lines }) => match rejection_reason(lines) {
            Some(reason) => format!("the function rejected it: {reason}"),
            None => format!("no reason found in the function's logs ({group})"),
        },
        Some(LogReading::NoGroup(group)) => {
            format!("no reason found in the function's logs ({group} does not exist)")
        }
        Some(LogReading::Unreadable(e)) => {
            format!("the function's logs could not be read for the reason: {e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::*;
    use super::*;

    #[test]
    fn certificate_states_read_as_pass_warn_or_fail() {
        let view = |status: &str, things: &[&str], policies: &[&str]| CertView {
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
            // The device policy through the thing's device group.
            (
                Some(view("ACTIVE", &["t"], &["p (thing group jitr-devices)"])),
                2000,
                Pass,
            ),
            (Some(view("REVOKED", &[], &[])), 2000, Fail),
            (Some(view("INACTIVE", &["t"], &["p"])), 2000, Fail),
        ];
        for (cert, now, status) in cases {
            let c = certificate_check("id", "root", cert.as_ref(), now, 300, None, None);
            assert_eq!(c.status, status, "{cert:?} at {now}: {}", c.line());
        }
        let stranded = certificate_check(
            "id",
            "root",
            Some(&view("PENDING_ACTIVATION", &[], &[])),
            2000,
            300,
            None,
            None,
        );
        assert_eq!(stranded.fix.as_deref(), Some("jitr reconcile --ca root"));
    }

    #[test]
    fn a_revoked_certificate_says_why_from_the_function_logs() {
        let json = |outcome: &str, reason: &str| {
            format!(
                r#"{{"level":"INFO","fields":{{"message":"certificate","certificateId":"ab","outcome":"{outcome}","reason":"{reason}"}}}}"#
            )
        };
        let lines = |l: &[String]| LogReading::Lines {
            group: "/aws/lambda/jitr-jitr".into(),
            lines: l.to_vec(),
        };
        let revoked = CertView {
            status: "REVOKED".into(),
            created: 0,
            things: vec![],
            policies: vec![],
        };
        let cases = [
            (
                lines(&[json("Rejected", "common name robot_1 does not match ^robot-[0-9]+$")]),
                "REVOKED: the function rejected it: common name robot_1 does not match ^robot-[0-9]+$",
            ),
            (
                // The newest line decides.
                lines(&[json("Rejected", "old"), "START RequestId: x".into(), json("Rejected", "new")]),
                "REVOKED: the function rejected it: new",
            ),
            (
                lines(&[
                    r#"ERROR certificate certificateId=ab outcome="Rejected" reason="CA not allowed" duration_ms=3"#.into(),
                ]),
                "REVOKED: the function rejected it: CA not allowed",
            ),
            (
                lines(&[
                    r#"ERROR certificate certificateId=ab outcome="Rejected" reason="thing name \"robot-4\" does not match \\d" duration_ms=3"#.into(),
                ]),
                "REVOKED: the function rejected it: thing name \"robot-4\" does not match \\d",
            ),
            (
                lines(&[json("Activated", "")]),
                "REVOKED: no reason found in the function's logs (/aws/lambda/jitr-jitr)",
            ),
            (
                LogReading::NoGroup("/aws/lambda/x".into()),
                "REVOKED: no reason found in the function's logs (/aws/lambda/x does not exist)",
            ),
        ];
        for (logs, detail) in cases {
            let c = certificate_check("ab", "root", Some(&revoked), 10, 300, Some(&logs), None);
            assert_eq!(c.status, Fail);
            assert_eq!(c.detail, detail, "{logs:?}");
        }
    }

    #[test]
    fn a_revocation_jitr_recorded_is_reported_with_when_not_as_unexplained() {
        let revoked = CertView {
            status: "REVOKED".into(),
            created: 0,
            things: vec![],
            policies: vec![],
        };
        let recorded = Recorded {
            revoked_at: "2026-11-23T05:00:00Z".into(),
            file: "dev/revoked.json".into(),
        };
        let silent = LogReading::Lines {
            group: "/aws/lambda/jitr-jitr".into(),
            lines: vec![],
        };
        for logs in [None, Some(&silent)] {
            let c = certificate_check("ab", "root", Some(&revoked), 10, 300, logs, Some(&recorded));
            assert_eq!(c.status, Fail);
            assert_eq!(
                c.detail,
                "REVOKED by an administrator (jitr device revoke) at 2026-11-23T05:00:00Z, as dev/revoked.json records",
                "{logs:?}"
            );
            assert!(!c.detail.contains("no reason found"), "{}", c.detail);
            assert!(
                c.fix
                    .as_deref()
                    .is_some_and(|f| f.contains("jitr device issue")),
                "{}",
                c.line()
            );
        }
        // Not recorded: the function's logs are the only account of it.
        let c = certificate_check("ab", "root", Some(&revoked), 10, 300, Some(&silent), None);
        assert!(
            c.detail.contains("no reason found in the function's logs"),
            "{}",
            c.detail
        );
        // A record does not explain a certificate that is not REVOKED.
        let active = CertView {
            status: "ACTIVE".into(),
            things: vec!["t".into()],
            policies: vec!["p".into()],
            ..revoked.clone()
        };
        assert_eq!(
            certificate_check("ab", "root", Some(&active), 10, 300, None, Some(&recorded)).status,
            Pass
        );
    }
}
