//! The deployed function's health over a recent window, from what it
//! logged (`core/src/handler.rs`: one "certificate" line per certificate
//! with its outcome and reason; warnings when the claims table fails; an
//! error when its configuration is invalid); its queue and concurrency are
//! [`super::queue`]'s. Pure: the command passes in what it read.

use std::collections::{BTreeMap, HashMap};

use jitr_core::iot::CertStatus;

use super::certificate::quoted;
use super::metrics::{Counts, Figure};
use super::{duration, Check};

/// Outcomes that mean the function could not do its work (retried by the platform).
const FAILING: [&str; 2] = ["Failed", "Unfinished"];
/// Outcomes of duplicate events acknowledged without work (and the fast
/// lane's copies deferred to a working bulk lane): they say nothing of
/// whether the function works.
const NEUTRAL: [&str; 3] = ["Duplicate", "ClaimedElsewhere", "Deferred"];
/// The function's messages when the claims table fails it (it provisions on).
const CLAIMS_TROUBLE: [&str; 3] = [
    "provisioning without a claim",
    "heartbeat not recorded",
    "claim not settled",
];

/// What the function's log said over the window, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    /// Invocations (the platform's `START RequestId` lines).
    pub invocations: u64,
    /// Certificates per outcome (Activated, Rejected, Failed, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// The newest failed outcome's reason, verbatim.
    pub latest_failure: Option<String>,
    /// Whether the newest outcome (or start-up error) is a failure.
    pub failing_now: bool,
    /// The claims table's error when the newest outcome was provisioned without a claim.
    pub claims_trouble: Option<String>,
}

/// The named field of a log line: tracing's JSON (`fields.NAME`, or a
/// top-level `NAME`) or its text format (`NAME="..."` or `NAME=word`).
pub fn field(line: &str, name: &str) -> Option<String> {
    if let Some(v) = json_of(line) {
        let f = if v["fields"].is_object() {
            &v["fields"]
        } else {
            &v
        };
        return match &f[name] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        };
    }
    let key = format!("{name}=");
    let at = line
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || line.as_bytes()[i - 1] == b' ')
        .map(|(i, _)| i + key.len())?;
    let rest = &line[at..];
    match rest.strip_prefix('"') {
        Some(q) => quoted(q),
        // A Display value (`error=%e`) is not quoted: it runs to the next field.
        None => Some(rest[..next_field(rest)].trim_end().to_string()),
    }
}

/// Where the next ` name=` field starts in `text` (its end when none does).
fn next_field(text: &str) -> usize {
    let mut at = 0;
    while let Some(space) = text[at..].find(' ') {
        let start = at + space + 1;
        let name_len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len() - start);
        if name_len > 0 && text[start + name_len..].starts_with('=') {
            return start - 1;
        }
        at = start;
    }
    text.len()
}

/// An error as one readable sentence: the SDK's debug dump after " (" cut,
/// at most 300 characters.
fn sentence(error: &str) -> String {
    let short = error.split(" (").next().unwrap_or(error);
    match short.char_indices().nth(300) {
        Some((at, _)) => format!("{}...", &short[..at]),
        None => short.to_string(),
    }
}

fn json_of(line: &str) -> Option<serde_json::Value> {
    let at = line.find('{')?;
    serde_json::from_str::<serde_json::Value>(&line[at..])
        .ok()
        .filter(|v| v.is_object())
}

/// The log line's message (tracing's `message` field, or the text format's
/// words after the level and the spans (`... invoke{requestId="..."}: `)
/// up to the first `name=` field).
fn message(line: &str) -> Option<String> {
    if json_of(line).is_some() {
        return field(line, "message");
    }
    let line = line.trim_start();
    let (level, rest) = line.split_once(' ')?;
    if !matches!(level, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR") {
        return None;
    }
    let rest = rest.split_once("}: ").map_or(rest, |(_, after)| after);
    let text: Vec<&str> = rest
        .split_whitespace()
        .take_while(|w| !w.contains('='))
        .collect();
    Some(text.join(" "))
}

/// Reads the function's log lines (oldest first): the newest lines decide
/// whether it is failing now.
pub fn activity(lines: &[String]) -> Activity {
    let mut a = Activity::default();
    // Claims errors per certificate since its last outcome line.
    let mut claims: HashMap<String, String> = HashMap::new();
    for line in lines {
        if line.starts_with("START RequestId") {
            a.invocations += 1;
            // A heartbeat's error belongs to its invocation.
            claims.remove("");
            continue;
        }
        let Some(msg) = message(line) else { continue };
        if msg == "invalid configuration" {
            a.failing_now = true;
            a.latest_failure = Some(format!(
                "invalid configuration: {}",
                field(line, "error").unwrap_or_default()
            ));
        } else if CLAIMS_TROUBLE.contains(&msg.as_str()) {
            let error = field(line, "error").map_or_else(|| msg.clone(), |e| sentence(&e));
            claims.insert(field(line, "certificateId").unwrap_or_default(), error);
        } else if msg == "certificate" {
            let Some(outcome) = field(line, "outcome") else {
                continue;
            };
            let cert = field(line, "certificateId").unwrap_or_default();
            *a.outcomes.entry(outcome.clone()).or_default() += 1;
            if NEUTRAL.contains(&outcome.as_str()) {
                continue;
            }
            let failed = FAILING.contains(&outcome.as_str());
            if failed {
                a.latest_failure = Some(field(line, "reason").unwrap_or_else(|| outcome.clone()));
            }
            a.failing_now = failed;
            // A heartbeat's error (no certificate) counts for its invocation's next outcome.
            let (own, beat) = (claims.remove(&cert), claims.remove(""));
            a.claims_trouble = own.or(beat);
        }
    }
    a
}

/// `--since`: a number with s, m, h or d (seconds without a unit).
pub(crate) fn since_seconds(text: &str) -> Result<u64, String> {
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && scale > 0 && n * scale <= 30 * 86_400 => Ok(n * scale),
        _ => Err(format!(
            "expected a duration up to 30d such as 90s, 30m, 1h or 2d, got \"{text}\""
        )),
    }
}

/// What was read of the function's log.
#[derive(Debug, Clone)]
pub enum LogWindow {
    /// The lines of the window (oldest first); `seconds` is how far back
    /// they reach (less than asked when the read was bounded).
    Lines {
        lines: Vec<String>,
        seconds: i64,
    },
    /// The log group does not exist (the function never ran).
    NoGroup(String),
    Unreadable(String),
}

/// "the last 1 h" or "the last 20 min (bounded read)".
fn window_text(seconds: i64, asked: i64) -> String {
    let bounded = if seconds < asked {
        " (the newest part: the read was bounded)"
    } else {
        ""
    };
    format!("the last {}{bounded}", duration(seconds))
}

/// The counts, from CloudWatch when it has datapoints, else from the log
/// (the detail says which, and why).
fn counts(a: &Activity, metrics: &Figure<Counts>) -> String {
    let outcomes: Vec<String> = a.outcomes.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let outcomes = if outcomes.is_empty() {
        "no certificate handled".to_string()
    } else {
        outcomes.join(", ")
    };
    let from_log = |why: &str| {
        format!(
            "{} invocation(s), {outcomes} (counted from its log; {why})",
            a.invocations
        )
    };
    match metrics {
        Figure::Value(c) => format!(
            "{} invocation(s), {} error(s), {} throttle(s) (from CloudWatch); {outcomes} (from its log)",
            c.invocations, c.errors, c.throttles
        ),
        Figure::NoData => from_log("CloudWatch had no datapoints"),
        Figure::Unreadable(e) => from_log(&format!("CloudWatch metrics could not be read: {e}")),
    }
}

/// CloudWatch's counts when the log gave none.
fn metrics_only(metrics: &Figure<Counts>) -> String {
    match metrics {
        Figure::Value(c) => format!(
            "; {} invocation(s), {} error(s), {} throttle(s) (from CloudWatch)",
            c.invocations, c.errors, c.throttles
        ),
        Figure::NoData => String::new(),
        Figure::Unreadable(e) => format!("; CloudWatch metrics could not be read: {e}"),
    }
}

/// The function's health: FAIL when its newest outcome failed (the detail
/// is the reason, verbatim), whatever the other checks say.
pub fn function_check(
    function: &str,
    log: &LogWindow,
    metrics: &Figure<Counts>,
    asked: i64,
    fix: &str,
) -> Check {
    const NAME: &str = "function";
    let (lines, seconds) = match log {
        LogWindow::Lines { lines, seconds } => (lines, *seconds),
        LogWindow::NoGroup(group) => {
            return Check::pass(
                NAME,
                format!(
                    "{function}: never ran ({group} does not exist){}",
                    metrics_only(metrics)
                ),
            )
        }
        LogWindow::Unreadable(e) => {
            return Check::warn(
                NAME,
                format!(
                    "{function}: its log could not be read: {e}{}",
                    metrics_only(metrics)
                ),
                "allow logs:FilterLogEvents on the function's log group to the caller",
            )
        }
    };
    let a = activity(lines);
    let when = window_text(seconds, asked);
    match (&a.latest_failure, a.failing_now) {
        (Some(reason), true) => Check::fail(
            NAME,
            format!(
                "{reason} ({function} fails its events: {}, over {when})",
                counts(&a, metrics)
            ),
            fix,
        ),
        (Some(reason), false) => Check::pass(
            NAME,
            format!(
                "{function}: {} over {when}; recovered since its last failure ({reason})",
                counts(&a, metrics)
            ),
        ),
        (None, _) => Check::pass(
            NAME,
            format!("{function}: {} over {when}", counts(&a, metrics)),
        ),
    }
}

/// The fix for a failing function: what to correct, then the stranded certificates.
pub fn function_fix(reason: Option<&str>, role: &str, reconcile: &str) -> String {
    let what = match reason {
        Some(r) if r.contains("AccessDenied") || r.contains("not authorized") => {
            format!("grant its role {role} the action the reason names (redeploy the stack)")
        }
        Some(r) if r.contains("invalid configuration") => {
            "correct the stack's parameters and redeploy".to_string()
        }
        _ => "correct what the reason names (its settings, its role, its network path to AWS IoT)"
            .to_string(),
    };
    format!("{what}; then provision what it left pending: {reconcile}")
}

/// The claims table, as the function found it: provisioning works without
/// it (each duplicate event then costs IoT calls), so a WARN.
pub fn claims_check(table: Option<&str>, log: &LogWindow, fix: &str) -> Option<Check> {
    const NAME: &str = "claims table";
    let table = table.filter(|t| !t.is_empty())?;
    let LogWindow::Lines { lines, .. } = log else {
        return Some(Check::pass(NAME, format!("{table} (no use of it logged)")));
    };
    Some(match activity(lines).claims_trouble {
        Some(e) => Check::warn(
            NAME,
            format!("the function provisions without claims in {table}: {e}"),
            fix,
        ),
        None => Check::pass(NAME, format!("{table}: no errors logged")),
    })
}

/// A device certificate pending (`status`, as AWS IoT holds it) on a
/// deployment whose function fails: its fix points at the function's failure.
pub fn point_pending_at(check: &mut Check, status: Option<&CertStatus>, failure: Option<&str>) {
    let pending = status == Some(&CertStatus::PendingActivation);
    if let (true, Some(reason), Some(fix)) = (pending, failure, check.fix.as_mut()) {
        check.detail = format!("{}; the function fails its events: {reason}", check.detail);
        *fix = format!("see the function check (correct its failure first), then: {fix}");
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status::*;
    use super::*;

    fn json(level: &str, fields: &str) -> String {
        format!(r#"{{"level":"{level}","fields":{{{fields}}}}}"#)
    }
    fn outcome(cert: &str, outcome: &str, reason: &str) -> String {
        json(
            "INFO",
            &format!(
                r#""message":"certificate","certificateId":"{cert}","outcome":"{outcome}","reason":"{reason}""#
            ),
        )
    }
    fn lines(l: &[String]) -> LogWindow {
        LogWindow::Lines {
            lines: l.to_vec(),
            seconds: 3600,
        }
    }
    const REASON: &str =
        "DescribeCertificate: cannot reach AWS IoT at http://127.0.0.1:9 (connection refused)";

    #[test]
    fn fields_come_out_of_json_and_text_lines() {
        let j = outcome("ab", "Failed", r#"x \"y\""#);
        assert_eq!(field(&j, "outcome").as_deref(), Some("Failed"));
        assert_eq!(field(&j, "reason").as_deref(), Some("x \"y\""));
        assert_eq!(message(&j).as_deref(), Some("certificate"));
        let t = r#"ERROR certificate certificateId=ab outcome="Failed" reason="A: b \"c\"" duration_ms=3"#;
        assert_eq!(field(t, "certificateId").as_deref(), Some("ab"));
        assert_eq!(field(t, "reason").as_deref(), Some("A: b \"c\""));
        assert_eq!(field(t, "duration_ms").as_deref(), Some("3"));
        assert_eq!(message(t).as_deref(), Some("certificate"));
        // As Lambda's text logs hold it: indented, inside the runtime's span.
        let span = r#" ERROR Lambda runtime invoke{requestId="6a4d"}: certificate certificateId=33 outcome="Failed" reason="DescribeCertificate: cannot reach AWS IoT at http://127.0.0.1:39213: Connection refused (os error 111)" duration_ms=12294"#;
        assert_eq!(message(span).as_deref(), Some("certificate"));
        assert_eq!(field(span, "outcome").as_deref(), Some("Failed"));
        let w = r#"WARN provisioning without a claim certificateId=ab error="ResourceNotFoundException""#;
        assert_eq!(message(w).as_deref(), Some("provisioning without a claim"));
        assert_eq!(field("START RequestId: x", "outcome"), None);
    }

    #[test]
    fn a_function_failing_its_events_fails_with_the_reason() {
        let failing = [
            "START RequestId: 1 Version: $LATEST".to_string(),
            outcome("a", "Activated", ""),
            "START RequestId: 2 Version: $LATEST".to_string(),
            outcome("b", "Failed", "old reason"),
            outcome("c", "Failed", REASON),
        ];
        // Duplicates acknowledged after the failure do not hide it.
        let mut failing = failing.to_vec();
        failing.push(outcome("c", "ClaimedElsewhere", "another instance"));
        failing.push(outcome("c", "Deferred", "the bulk lane works"));
        let c = function_check(
            "jitr-jitr",
            &lines(&failing),
            &Figure::NoData,
            3600,
            "fix it",
        );
        assert_eq!(c.status, Fail, "{}", c.line());
        assert!(c.detail.starts_with(REASON), "{}", c.detail);
        assert!(
            c.detail
                .contains("2 invocation(s), Activated 1, ClaimedElsewhere 1, Deferred 1, Failed 2"),
            "{}",
            c.detail
        );
        assert_eq!(c.fix.as_deref(), Some("fix it"));
        // The newest outcome decides: recovered after failing.
        let mut recovered = failing.to_vec();
        recovered.push(outcome("c", "Activated", ""));
        let c = function_check("f", &lines(&recovered), &Figure::NoData, 3600, "fix it");
        assert_eq!(c.status, Pass, "{}", c.line());
        assert!(c.detail.contains(REASON), "{}", c.detail);
        // Text logs, an init error, nothing logged, no group, unreadable.
        let text = [format!(
            r#"ERROR certificate certificateId=ab outcome="Unfinished" reason="{}""#,
            "cut short"
        )];
        assert_eq!(
            function_check("f", &lines(&text), &Figure::NoData, 3600, "x")
                .detail
                .split(" (")
                .next(),
            Some("cut short")
        );
        let init = [json(
            "ERROR",
            r#""message":"invalid configuration","error":"JITR_POLICY_NAME: is required""#,
        )];
        let c = function_check("f", &lines(&init), &Figure::NoData, 3600, "x");
        assert_eq!(c.status, Fail);
        assert!(
            c.detail
                .starts_with("invalid configuration: JITR_POLICY_NAME: is required"),
            "{}",
            c.detail
        );
        assert_eq!(
            function_check("f", &lines(&[]), &Figure::NoData, 3600, "x").status,
            Pass
        );
        assert_eq!(
            function_check(
                "f",
                &LogWindow::NoGroup("g".into()),
                &Figure::NoData,
                3600,
                "x"
            )
            .status,
            Pass
        );
        assert_eq!(
            function_check(
                "f",
                &LogWindow::Unreadable("denied".into()),
                &Figure::NoData,
                3600,
                "x"
            )
            .status,
            Warn
        );
        // A bounded read says so.
        let c = function_check(
            "f",
            &LogWindow::Lines {
                lines: vec![],
                seconds: 600,
            },
            &Figure::NoData,
            3600,
            "x",
        );
        assert!(
            c.detail.contains("the last 10 min (the newest part"),
            "{}",
            c.detail
        );
    }

    /// The role missing one IoT permission (the emulator runs functions
    /// with its own credentials, so this is AWS's answer as the function logs it).
    #[test]
    fn a_denied_action_fails_the_function_naming_it() {
        let denied = "AttachThingPrincipal: AccessDeniedException: User: arn:aws:sts::1:assumed-role/jitr-FunctionRole/jitr is not authorized to perform: iot:AttachThingPrincipal on resource: arn:aws:iot:eu-west-1:1:cert/ab";
        let log = [
            outcome("a", "Activated", ""),
            outcome("ab", "Failed", denied),
        ];
        let reason = activity(&log).latest_failure;
        let fix = function_fix(
            reason.as_deref(),
            "arn:aws:iam::1:role/jitr-FunctionRole",
            "jitr reconcile --ca c --policy p",
        );
        let c = function_check("f", &lines(&log), &Figure::NoData, 3600, &fix);
        assert_eq!(c.status, Fail);
        assert!(c.detail.starts_with(denied), "{}", c.detail);
        assert!(c.fix.unwrap().starts_with(
            "grant its role arn:aws:iam::1:role/jitr-FunctionRole the action the reason names"
        ));
    }

    #[test]
    fn since_reads_durations() {
        let cases = [
            ("90s", Ok(90)),
            ("30m", Ok(1800)),
            ("1h", Ok(3600)),
            ("2d", Ok(172_800)),
            ("45", Ok(45)),
        ];
        for (text, want) in cases {
            assert_eq!(since_seconds(text), want, "{text}");
        }
        for bad in ["", "0h", "1w", "h", "31d", "-1h"] {
            let e = since_seconds(bad).unwrap_err();
            assert!(e.contains(&format!("got \"{bad}\"")), "{e}");
        }
    }

    #[test]
    fn fixes_name_what_failed() {
        let denied = "AttachPolicy: AccessDenied: not allowed iot:AttachPolicy";
        assert!(
            function_fix(Some(denied), "role/x", "jitr reconcile --ca c --policy p")
                .starts_with("grant its role role/x")
        );
        assert!(
            function_fix(Some(REASON), "r", "jitr reconcile --ca c --policy p")
                .ends_with("then provision what it left pending: jitr reconcile --ca c --policy p")
        );
    }

    #[test]
    fn claims_trouble_warns_until_a_certificate_is_claimed_again() {
        let warn = |cert: &str| {
            json(
                "WARN",
                &format!(
                    r#""message":"provisioning without a claim","certificateId":"{cert}","error":"ResourceNotFoundException: table missing""#
                ),
            )
        };
        let trouble = [
            outcome("a", "Activated", ""),
            warn("b"),
            outcome("b", "Activated", ""),
        ];
        // Text logs: the Display error runs to the end; a heartbeat's error
        // left over in one invocation does not follow into the next.
        let text = |cert: &str| {
            format!(
                r#" WARN Lambda runtime invoke{{requestId="1"}}: provisioning without a claim certificateId={cert} error=claims table t: service error: ResourceNotFoundException: Requested resource not found (ServiceError(ServiceError {{ x: y }}))"#
            )
        };
        let beat = r#" WARN Lambda runtime invoke{requestId="1"}: heartbeat not recorded error=claims table t: gone (Debug)"#.to_string();
        let logged = [
            "START RequestId: 1".to_string(),
            beat,
            text("b"),
            outcome("b", "Activated", ""),
        ];
        let c = claims_check(Some("t"), &lines(&logged), "x").unwrap();
        assert_eq!(
            c.detail,
            "the function provisions without claims in t: claims table t: service error: ResourceNotFoundException: Requested resource not found"
        );
        let mut later = logged.to_vec();
        later.push(logged[1].clone());
        later.extend([
            "START RequestId: 2".to_string(),
            outcome("c", "Activated", ""),
        ]);
        assert_eq!(
            claims_check(Some("t"), &lines(&later), "x").unwrap().status,
            Pass
        );
        let c = claims_check(Some("claims"), &lines(&trouble), "recreate").unwrap();
        assert_eq!(c.status, Warn, "{}", c.line());
        assert!(
            c.detail
                .contains("ResourceNotFoundException: table missing"),
            "{}",
            c.detail
        );
        let mut fine = trouble.to_vec();
        fine.push(outcome("c", "Activated", ""));
        assert_eq!(
            claims_check(Some("claims"), &lines(&fine), "x")
                .unwrap()
                .status,
            Pass
        );
        assert!(claims_check(None, &lines(&trouble), "x").is_none());
    }

    #[test]
    fn counts_come_from_cloudwatch_when_it_has_datapoints() {
        let log = [
            "START RequestId: 1".to_string(),
            outcome("a", "Activated", ""),
            outcome("b", "Failed", REASON),
        ];
        let cw = Figure::Value(Counts {
            invocations: 40,
            errors: 7,
            throttles: 3,
        });
        let c = function_check("f", &lines(&log), &cw, 3600, "x");
        assert_eq!(c.status, Fail);
        assert!(
            c.detail.contains(
                "40 invocation(s), 7 error(s), 3 throttle(s) (from CloudWatch); Activated 1, Failed 1 (from its log)"
            ),
            "{}",
            c.detail
        );
        let none = function_check("f", &lines(&log), &Figure::NoData, 3600, "x");
        assert!(
            none.detail
                .contains("1 invocation(s), Activated 1, Failed 1 (counted from its log; CloudWatch had no datapoints)"),
            "{}",
            none.detail
        );
        let denied = Figure::Unreadable("AccessDenied: cloudwatch:GetMetricData".into());
        let c = function_check("f", &lines(&log[..2]), &denied, 3600, "x");
        assert_eq!(c.status, Pass);
        assert!(
            c.detail.contains(
                "(counted from its log; CloudWatch metrics could not be read: AccessDenied: cloudwatch:GetMetricData)"
            ),
            "{}",
            c.detail
        );
        // No log to count from: CloudWatch's counts still show.
        let c = function_check("f", &LogWindow::Unreadable("denied".into()), &cw, 3600, "x");
        assert!(
            c.detail
                .ends_with("; 40 invocation(s), 7 error(s), 3 throttle(s) (from CloudWatch)"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_pending_certificate_points_at_the_failing_function() {
        let mut pending = Check::warn(
            "device certificate",
            "PENDING_ACTIVATION for 5 s: soon",
            "wait",
        );
        point_pending_at(
            &mut pending,
            Some(&CertStatus::PendingActivation),
            Some(REASON),
        );
        assert!(pending.detail.ends_with(REASON), "{}", pending.detail);
        assert!(pending
            .fix
            .as_deref()
            .unwrap()
            .starts_with("see the function check"));
        let mut active = Check::pass("device certificate", "ACTIVE");
        point_pending_at(&mut active, Some(&CertStatus::Active), Some(REASON));
        assert_eq!(active.detail, "ACTIVE");
    }
}
