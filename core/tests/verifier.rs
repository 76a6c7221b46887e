//! The verifier hook (JITR_VERIFIER_FUNCTION) through the whole
//! provisioning, with an in-memory registry and a fake hook: it is asked
//! only about certificates the function's own checks admitted; its
//! admission activates under its thing name; its refusal revokes with its
//! reason; a hook that fails, answers against the rules or answers too late
//! fails the record (it comes back), never admitting nor revoking.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::outcome::Kind;
use jitr_core::provision::{provision, provision_within, Gates};
use jitr_core::verifier::{Choices, Question, Verdict, Verifier, VerifierError};

use crate::support::registry::Registry;
use crate::support::{self, arn, now, CA};

const HOOK: &str = "arn:aws:lambda:eu-west-1:123456789012:function:verify";

/// The fake hook: a verdict per CN (Err: it fails), answering after
/// `slow`; records every question.
#[derive(Default)]
struct Hook {
    verdicts: HashMap<String, Result<Verdict, String>>,
    slow: Option<Duration>,
    asked: Mutex<Vec<Question>>,
}

impl Hook {
    fn answering(verdicts: &[(&str, Result<Verdict, String>)]) -> Hook {
        Hook {
            verdicts: verdicts
                .iter()
                .map(|(cn, v)| (cn.to_string(), v.clone()))
                .collect(),
            ..Hook::default()
        }
    }
    fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .map(|q| q.subject["CN"].clone())
            .collect()
    }
}

impl Verifier for Hook {
    async fn verify(&self, question: &Question) -> Result<Verdict, VerifierError> {
        self.asked.lock().unwrap().push(question.clone());
        if let Some(wait) = self.slow {
            tokio::time::sleep(wait).await;
        }
        self.verdicts[&question.subject["CN"]]
            .clone()
            .map_err(|reason| VerifierError {
                function: HOOK.into(),
                reason,
            })
    }
}

fn config(vars: &[(&str, &str)]) -> Config {
    let groups = [
        ("JITR_DEVICE_GROUP", "jitr-devices"),
        ("JITR_THING_GROUPS", "fleet,line-4"),
    ];
    support::config(&[&groups[..], vars].concat())
}

fn with_hook() -> Config {
    config(&[("JITR_VERIFIER_FUNCTION", HOOK)])
}

fn admit(name: Option<&str>, groups: Option<&[&str]>) -> Result<Verdict, String> {
    Ok(Verdict::Admit(Choices {
        thing_name: name.map(str::to_string),
        attributes: [("batch".to_string(), "B7".to_string())].into(),
        thing_groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
    }))
}

#[tokio::test]
async fn the_hook_admits_under_its_name_and_refuses_with_its_reason() {
    let (one, two, three) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
    let iot = Registry::default();
    iot.register(&one, "robot-1");
    iot.register(&two, "robot-2");
    // Refused by the function's own checks (a name AWS refuses): never asked.
    iot.register(&three, "robot 3");
    let hook = Hook::answering(&[
        ("robot-1", admit(Some("line4-robot-1"), Some(&["line-4"]))),
        (
            "robot-2",
            Ok(Verdict::Reject("not in the asset library".into())),
        ),
    ]);
    let hooked = with_hook();
    let gates = Gates::none().with_verifier(&hook);

    let ok = provision(&iot, gates, &hooked, &one, now()).await;
    assert_eq!(ok.outcome, Kind::Activated, "{ok:?}");
    assert_eq!(ok.thing.as_deref(), Some("line4-robot-1"));
    assert_eq!(iot.status(&one), "ACTIVE");
    assert_eq!(iot.principals("line4-robot-1"), [arn(&one)]);
    let calls = iot.changes();
    assert!(
        calls.contains(&r#"CreateThing line4-robot-1 [("batch", "B7")]"#.to_string()),
        "{calls:?}"
    );
    // The device group, then the hook's choice among the configured groups.
    assert_eq!(
        iot.calls_to("AddThingToThingGroup"),
        ["line4-robot-1 jitr-devices", "line4-robot-1 line-4"]
    );
    // The question: the certificate's facts and what the function proposed.
    let q = hook.asked.lock().unwrap()[0].clone();
    assert_eq!(q.certificate_id, one);
    assert_eq!(q.ca_certificate_id.as_deref(), Some(CA));
    assert_eq!(q.proposed.thing_name, "robot-1");
    assert_eq!(q.proposed.thing_groups, ["jitr-devices", "fleet", "line-4"]);
    assert_eq!(q.key_type, "EC P-256");

    let no = provision(&iot, gates, &hooked, &two, now()).await;
    assert_eq!(no.outcome, Kind::Rejected);
    assert_eq!(
        no.reason.as_deref(),
        Some("rejected by the verifier hook: not in the asset library")
    );
    assert_eq!(iot.status(&two), "REVOKED");

    let bad = provision(&iot, gates, &hooked, &three, now()).await;
    assert_eq!(bad.outcome, Kind::Rejected);
    assert_eq!(iot.status(&three), "REVOKED");
    assert_eq!(
        hook.asked(),
        ["robot-1", "robot-2"],
        "robot 3 was not asked"
    );

    // A replay of the admitted one: ACTIVE, not asked again.
    let replay = provision(&iot, gates, &hooked, &one, now()).await;
    assert_eq!(replay.outcome, Kind::AlreadyActive);
    assert_eq!(hook.asked().len(), 2);

    // No hook configured: never asked, whatever is wired.
    let four = "dd".repeat(32);
    iot.register(&four, "robot-4");
    let plain = provision(&iot, gates, &config(&[]), &four, now()).await;
    assert_eq!(plain.outcome, Kind::Activated);
    assert_eq!(plain.thing.as_deref(), Some("robot-4"));
    assert_eq!(hook.asked().len(), 2);
}

/// A hook that fails (a FunctionError, unreachable, malformed JSON: all
/// one VerifierError) or answers against the rules fails the record: the
/// certificate stays pending, no thing, nothing revoked.
#[tokio::test]
async fn a_failed_or_unruly_answer_fails_the_record() {
    let ids: Vec<String> = ["a1", "a2", "a3", "a4"].map(|p| p.repeat(32)).to_vec();
    let iot = Registry::default();
    for (id, cn) in ids.iter().zip(["robot-1", "robot-2", "robot-3", "robot-4"]) {
        iot.register(id, cn);
    }
    let hook = Hook::answering(&[
        (
            "robot-1",
            Err("the function failed (Unhandled): boom".into()),
        ),
        ("robot-2", admit(Some("robot 2"), None)),
        ("robot-3", admit(None, Some(&["other"]))),
        ("robot-4", admit(None, None)),
    ]);
    let gates = Gates::none().with_verifier(&hook);
    // Under OnReject=ignore too: a failure is no rejection.
    for config in [with_hook(), {
        let mut c = with_hook();
        c.on_reject = jitr_core::config::OnReject::Ignore;
        c
    }] {
        for (id, expected) in ids.iter().zip([
            format!("Invoke (verifier hook): VerifierFailed: verifier hook {HOOK}: the function failed (Unhandled): boom"),
            "verifier hook's answer: VerifierAnswerRefused: thing name \"robot 2\" does not match JITR_THING_NAME_PATTERN".into(),
            "verifier hook's answer: VerifierAnswerRefused: thing group \"other\" is not one of JITR_THING_GROUPS (fleet, line-4)".into(),
        ]) {
            let out = provision(&iot, gates, &config, id, now()).await;
            assert_eq!(out.outcome, Kind::Failed, "{out:?}");
            assert!(out.failed(), "the platform retries it");
            let reason = out.reason.unwrap();
            assert!(reason.starts_with(&expected), "{reason}");
            assert_eq!(iot.status(id), "PENDING_ACTIVATION");
        }
    }
    assert!(
        iot.changes().is_empty(),
        "no thing made, nothing revoked: {:?}",
        iot.changes()
    );
    // Its answer fixed, the record that comes back is admitted.
    let out = provision(&iot, gates, &with_hook(), &ids[3], now()).await;
    assert_eq!(out.outcome, Kind::Activated);
}

/// The hook's answer counts against the record's deadline: a late one
/// leaves the record unfinished (it comes back), pending, untouched.
#[tokio::test]
async fn a_late_answer_leaves_the_record_unfinished() {
    let id = "ee".repeat(32);
    let iot = Registry::default();
    iot.register(&id, "robot-1");
    let mut hook = Hook::answering(&[("robot-1", admit(None, None))]);
    hook.slow = Some(Duration::from_secs(5));
    let deadline = Deadline::after(Duration::from_millis(600));
    let started = std::time::Instant::now();
    let gates = Gates::none().with_verifier(&hook);
    let out = provision_within(&iot, gates, &with_hook(), &id, now(), deadline).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut at the deadline"
    );
    assert_eq!(out.outcome, Kind::Unfinished, "{out:?}");
    assert!(out.failed());
    assert_eq!(hook.asked(), ["robot-1"]);
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
    assert!(iot.changes().is_empty(), "{:?}", iot.changes());
}
