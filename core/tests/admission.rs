//! JITR_ADMISSION=allow-list through the whole provisioning, with an
//! in-memory registry and a fake allow-list store: a listed certificate is
//! activated under its entry's name; an unlisted one is revoked "not on the
//! allow-list"; a store that cannot be read (or answers too late) fails the
//! record, so it comes back, and never admits nor revokes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::admission::{AllowList, AllowListError, Entry, Listing};
use jitr_core::aws::AwsError;
use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::iot::{Described, IotApi};
use jitr_core::outcome::Kind;
use jitr_core::provision::{provision_listed, provision_within_listed};

const CA: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// Certificates, things and every call made.
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
    async fn add_thing_to_thing_group(&self, _: &str, _: &str) -> Result<(), AwsError> {
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

/// The fake store: entries, or (`down`) every lookup failing, or (`slow`)
/// answering after that long; counts lookups.
#[derive(Default)]
struct Store {
    entries: HashMap<String, Entry>,
    down: bool,
    slow: Option<Duration>,
    lookups: Mutex<usize>,
}

impl AllowList for Store {
    async fn lookup(&self, id: &str) -> Result<Listing, AllowListError> {
        *self.lookups.lock().unwrap() += 1;
        if let Some(wait) = self.slow {
            tokio::time::sleep(wait).await;
        }
        if self.down {
            return Err(AllowListError {
                table: "allow".into(),
                reason: "connection refused".into(),
            });
        }
        Ok(match self.entries.get(id) {
            Some(e) => Listing::Listed(e.clone()),
            None => Listing::NotListed,
        })
    }
}

fn config(admission: &str) -> Config {
    let vars = [
        ("JITR_POLICY_NAME", "jitr-device"),
        ("JITR_ADMISSION", admission),
        ("JITR_ALLOW_LIST_TABLE", "jitr-allow-list"),
    ];
    Config::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn now() -> i64 {
    jitr_core::clock::unix_seconds()
}

#[tokio::test]
async fn only_listed_certificates_get_in_under_their_listed_names() {
    let (listed, unlisted) = ("aa".repeat(32), "bb".repeat(32));
    let iot = Registry::default();
    iot.register(&listed, "robot-1");
    iot.register(&unlisted, "robot-2");
    let mut store = Store::default();
    store.entries.insert(
        listed.clone(),
        Entry {
            thing_name: Some("line4-robot-1".into()),
            attributes: [("batch".to_string(), "B7".to_string())].into(),
        },
    );
    let allow = config("allow-list");

    let ok = provision_listed(&iot, &store, &allow, &listed, now()).await;
    assert_eq!(ok.outcome, Kind::Activated, "{ok:?}");
    assert_eq!(ok.thing.as_deref(), Some("line4-robot-1"));
    assert_eq!(iot.status(&listed), "ACTIVE");
    let no = provision_listed(&iot, &store, &allow, &unlisted, now()).await;
    assert_eq!(no.outcome, Kind::Rejected, "{no:?}");
    assert_eq!(no.reason.as_deref(), Some("not on the allow-list"));
    assert_eq!(iot.status(&unlisted), "REVOKED");
    let calls = iot.calls.lock().unwrap().clone();
    assert!(
        calls.contains(&r#"CreateThing line4-robot-1 [("batch", "B7")]"#.to_string()),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.contains("robot-2")), "{calls:?}");
    // One lookup per pending certificate; none for an ACTIVE one's replay.
    assert_eq!(*store.lookups.lock().unwrap(), 2);
    let replay = provision_listed(&iot, &store, &allow, &listed, now()).await;
    assert_eq!(replay.outcome, Kind::AlreadyActive);
    assert_eq!(*store.lookups.lock().unwrap(), 2);
    // Under `any` the list is never read.
    let other = "cc".repeat(32);
    iot.register(&other, "robot-3");
    let any = provision_listed(&iot, &store, &config("any"), &other, now()).await;
    assert_eq!(any.outcome, Kind::Activated);
    assert_eq!(*store.lookups.lock().unwrap(), 2);
}

#[tokio::test]
async fn an_unreadable_list_fails_the_record_and_admits_nothing() {
    let id = "aa".repeat(32);
    let iot = Registry::default();
    iot.register(&id, "robot-1");
    let store = Store {
        down: true,
        ..Store::default()
    };
    let out = provision_listed(&iot, &store, &config("allow-list"), &id, now()).await;
    assert_eq!(out.outcome, Kind::Failed, "{out:?}");
    assert!(out.failed() && out.transient, "{out:?}");
    let reason = out.reason.unwrap();
    assert!(
        reason.contains("allow-list") && reason.contains("connection refused"),
        "{reason}"
    );
    // Neither admitted nor revoked: the record comes back.
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
    assert!(iot.calls.lock().unwrap().is_empty());
    // No store configured at all: the same.
    let out = jitr_core::provision::provision(&iot, &config("allow-list"), &id, now()).await;
    assert_eq!(out.outcome, Kind::Failed, "{out:?}");
    assert!(out.reason.unwrap().contains("JITR_ALLOW_LIST_TABLE"));
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
}

#[tokio::test]
async fn a_lookup_counts_against_the_deadline() {
    let id = "aa".repeat(32);
    let iot = Registry::default();
    iot.register(&id, "robot-1");
    let mut store = Store {
        slow: Some(Duration::from_secs(5)),
        ..Store::default()
    };
    store.entries.insert(id.clone(), Entry::default());
    let deadline = Deadline::after(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let out =
        provision_within_listed(&iot, &store, &config("allow-list"), &id, now(), deadline).await;
    assert_eq!(out.outcome, Kind::Unfinished, "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(iot.status(&id), "PENDING_ACTIVATION");
}
