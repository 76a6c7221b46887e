//! The verifier hook (JITR_VERIFIER_FUNCTION) through the whole
//! provisioning, with an in-memory registry and a fake hook: it is asked
//! only about certificates the function's own checks admitted; its
//! admission activates under its thing name; its refusal revokes with its
//! reason; a hook that fails, answers against the rules or answers too late
//! fails the record (it comes back), never admitting nor revoking.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::admission::NoAllowList;
use jitr_core::aws::AwsError;
use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::iot::{Described, IotApi};
use jitr_core::outcome::Kind;
use jitr_core::provision::{provision_verified, provision_within_verified};
use jitr_core::verifier::{Choices, Question, Verdict, Verifier, VerifierError};

const CA: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const HOOK: &str = "arn:aws:lambda:eu-west-1:123456789012:function:verify";

/// Certificates, things and every change made.
#[derive(Default)]
struct Registry {
    certificates: Mutex<HashMap<String, Described>>,
    things: Mutex<HashMap<String, Vec<String>>>,
    calls: Mutex<Vec<String>>,
}

impl Registry {
    fn register(&self, id: &str, cn: &str) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        self.certificates.lock().unwrap().insert(
            id.to_string(),
            Described {
                certificate_arn: format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
                status: "PENDING_ACTIVATION".into(),
                ca_certificate_id: Some(CA.into()),
                certificate_pem: p.self_signed(&key).unwrap().pem(),
                created_ms: Some(1),
            },
        );
    }
    fn status(&self, id: &str) -> String {
        self.certificates.lock().unwrap()[id].status.to_string()
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl IotApi for Registry {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        let found = self.certificates.lock().unwrap().get(id).cloned();
        found.ok_or_else(|| AwsError::NotFound(id.to_string()))
    }
    async fn create_thing(
        &self,
        name: &str,
        _: Option<&str>,
        attributes: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        let mut attributes: Vec<_> = attributes.iter().collect();
        attributes.sort();
        self.note(format!("CreateThing {name} {attributes:?}"));
        self.things.lock().unwrap().entry(name.into()).or_default();
        Ok(())
    }
    async fn attach_policy(&self, _: &str, _: &str) -> Result<(), AwsError> {
        Ok(())
    }
    async fn attach_thing_principal(&self, t: &str, arn: &str, _: bool) -> Result<(), AwsError> {
        self.things
            .lock()
            .unwrap()
            .entry(t.into())
            .or_default()
            .push(arn.into());
        Ok(())
    }
    async fn add_thing_to_thing_group(&self, t: &str, g: &str) -> Result<(), AwsError> {
        self.note(format!("AddThingToThingGroup {t} {g}"));
        Ok(())
    }
    async fn update_certificate(&self, id: &str, s: CertificateStatus) -> Result<(), AwsError> {
        self.note(format!("UpdateCertificate {} {}", &id[..4], s.as_str()));
        if let Some(c) = self.certificates.lock().unwrap().get_mut(id) {
            c.status = s.as_str().into();
        }
        Ok(())
    }
    async fn list_pending_certificates(&self, _: &str) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }
    async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        let found = self.things.lock().unwrap().get(thing).cloned();
        found.ok_or_else(|| AwsError::NotFound(thing.to_string()))
    }
}

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
    let mut all = vec![
        ("JITR_POLICY_NAME", "jitr-device"),
        ("JITR_DEVICE_GROUP", "jitr-devices"),
        ("JITR_THING_GROUPS", "fleet,line-4"),
    ];
    all.extend_from_slice(vars);
    Config::from_lookup(|k| {
        all.iter()
            .rev()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn with_hook() -> Config {
    config(&[("JITR_VERIFIER_FUNCTION", HOOK)])
}

fn now() -> i64 {
    jitr_core::clock::unix_seconds()
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

    let ok = provision_verified(&iot, &NoAllowList, &hook, &hooked, &one, now()).await;
    assert_eq!(ok.outcome, Kind::Activated, "{ok:?}");
    assert_eq!(ok.thing.as_deref(), Some("line4-robot-1"));
    assert_eq!(iot.status(&one), "ACTIVE");
    assert_eq!(
        iot.things.lock().unwrap()["line4-robot-1"],
        [format!("arn:aws:iot:eu-west-1:123456789012:cert/{one}")]
    );
    let calls = iot.calls();
    assert!(
        calls.contains(&r#"CreateThing line4-robot-1 [("batch", "B7")]"#.to_string()),
        "{calls:?}"
    );
    // The device group, then the hook's choice among the configured groups.
    let groups: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("AddThingToThingGroup"))
        .collect();
    assert_eq!(
        groups,
        [
            "AddThingToThingGroup line4-robot-1 jitr-devices",
            "AddThingToThingGroup line4-robot-1 line-4"
        ]
    );
    // The question: the certificate's facts and what the function proposed.
    let q = hook.asked.lock().unwrap()[0].clone();
    assert_eq!(q.certificate_id, one);
    assert_eq!(q.ca_certificate_id.as_deref(), Some(CA));
    assert_eq!(q.proposed.thing_name, "robot-1");
    assert_eq!(q.proposed.thing_groups, ["jitr-devices", "fleet", "line-4"]);
    assert_eq!(q.key_type, "EC P-256");

    let no = provision_verified(&iot, &NoAllowList, &hook, &hooked, &two, now()).await;
    assert_eq!(no.outcome, Kind::Rejected);
    assert_eq!(
        no.reason.as_deref(),
        Some("rejected by the verifier hook: not in the asset library")
    );
    assert_eq!(iot.status(&two), "REVOKED");

    let bad = provision_verified(&iot, &NoAllowList, &hook, &hooked, &three, now()).await;
    assert_eq!(bad.outcome, Kind::Rejected);
    assert_eq!(iot.status(&three), "REVOKED");
    assert_eq!(
        hook.asked(),
        ["robot-1", "robot-2"],
        "robot 3 was not asked"
    );

    // A replay of the admitted one: ACTIVE, not asked again.
    let replay = provision_verified(&iot, &NoAllowList, &hook, &hooked, &one, now()).await;
    assert_eq!(replay.outcome, Kind::AlreadyActive);
    assert_eq!(hook.asked().len(), 2);

    // No hook configured: never asked, whatever is wired.
    let four = "dd".repeat(32);
    iot.register(&four, "robot-4");
    let plain = provision_verified(&iot, &NoAllowList, &hook, &config(&[]), &four, now()).await;
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
    // Under OnReject=ignore too: a failure is no rejection.
    for config in [with_hook(), {
        let mut c = with_hook();
        c.on_reject = jitr_core::config::OnReject::Ignore;
        c
    }] {
        for (id, expected) in ids.iter().zip([
            format!("Invoke (verifier hook): AWS IoT failed (VerifierFailed): verifier hook {HOOK}: the function failed (Unhandled): boom"),
            "verifier hook's answer: AWS IoT failed (VerifierAnswerRefused): thing name \"robot 2\" does not match JITR_THING_NAME_PATTERN".into(),
            "verifier hook's answer: AWS IoT failed (VerifierAnswerRefused): thing group \"other\" is not one of JITR_THING_GROUPS (fleet, line-4)".into(),
        ]) {
            let out = provision_verified(&iot, &NoAllowList, &hook, &config, id, now()).await;
            assert_eq!(out.outcome, Kind::Failed, "{out:?}");
            assert!(out.failed(), "the platform retries it");
            let reason = out.reason.unwrap();
            assert!(reason.starts_with(&expected), "{reason}");
            assert_eq!(iot.status(id), "PENDING_ACTIVATION");
        }
    }
    assert!(
        iot.calls().is_empty(),
        "no thing made, nothing revoked: {:?}",
        iot.calls()
    );
    // Its answer fixed, the record that comes back is admitted.
    let out = provision_verified(&iot, &NoAllowList, &hook, &with_hook(), &ids[3], now()).await;
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
    let out = provision_within_verified(
        &iot,
        &NoAllowList,
        &hook,
        &with_hook(),
        &id,
        now(),
        deadline,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cut at the deadline"
    );
    assert_eq!(out.outcome, Kind::Unfinished, "{out:?}");
    assert!(out.failed());
    assert_eq!(hook.asked(), ["robot-1"]);
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
    assert!(iot.calls().is_empty(), "{:?}", iot.calls());
}
