//! The IoT operations the function calls, recorded through every path of
//! provisioning with a device group (as the templates configure it): new
//! thing with groups, rotation that retires, replay that finishes a
//! rotation, rejection with revocation, skips. They must be exactly
//! `FUNCTION_IOT_OPERATIONS`, the list the templates' IAM is checked
//! against, so neither can drift from what the code does.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::aws::AwsError;
use jitr_core::config::Config;
use jitr_core::iot::{Described, IotApi};
use jitr_core::outcome::Kind;
use jitr_core::provision::{provision, FUNCTION_IOT_OPERATIONS};

const CA: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// An in-memory registry that records each operation called.
#[derive(Default)]
struct Recording {
    calls: Mutex<Vec<&'static str>>,
    certificates: Mutex<HashMap<String, Described>>,
    principals: Mutex<HashMap<String, Vec<String>>>,
    groups: Mutex<Vec<(String, String)>>,
}

impl Recording {
    fn note(&self, op: &'static str) {
        self.calls.lock().unwrap().push(op);
    }

    fn register(&self, id: &str, cn: &str, status: &str, created_ms: i64) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let pem = p.self_signed(&key).unwrap().pem();
        self.certificates.lock().unwrap().insert(
            id.to_string(),
            Described {
                certificate_arn: format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
                status: status.into(),
                ca_certificate_id: Some(CA.into()),
                certificate_pem: pem,
                created_ms: Some(created_ms),
            },
        );
    }
}

impl IotApi for Recording {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        self.note("DescribeCertificate");
        let found = self.certificates.lock().unwrap().get(id).cloned();
        found.ok_or_else(|| AwsError::NotFound(id.to_string()))
    }
    async fn create_thing(
        &self,
        name: &str,
        _: Option<&str>,
        _: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        self.note("CreateThing");
        self.principals
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_default();
        Ok(())
    }
    async fn attach_policy(&self, _: &str, _: &str) -> Result<(), AwsError> {
        self.note("AttachPolicy");
        Ok(())
    }
    async fn attach_thing_principal(
        &self,
        thing: &str,
        arn: &str,
        _: bool,
    ) -> Result<(), AwsError> {
        self.note("AttachThingPrincipal");
        let mut p = self.principals.lock().unwrap();
        let list = p.entry(thing.to_string()).or_default();
        if !list.iter().any(|a| a == arn) {
            list.push(arn.to_string());
        }
        Ok(())
    }
    async fn add_thing_to_thing_group(&self, thing: &str, group: &str) -> Result<(), AwsError> {
        self.note("AddThingToThingGroup");
        self.groups
            .lock()
            .unwrap()
            .push((thing.to_string(), group.to_string()));
        Ok(())
    }
    async fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> Result<(), AwsError> {
        self.note("UpdateCertificate");
        if let Some(c) = self.certificates.lock().unwrap().get_mut(id) {
            c.status = status.as_str().into();
        }
        Ok(())
    }
    async fn list_pending_certificates(&self, _: &str) -> Result<Vec<String>, AwsError> {
        self.note("ListCertificatesByCA");
        Ok(Vec::new())
    }
    async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        self.note("ListThingPrincipals");
        let found = self.principals.lock().unwrap().get(thing).cloned();
        found.ok_or_else(|| AwsError::NotFound(thing.to_string()))
    }
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars = vec![
        ("JITR_POLICY_NAME", "jitr-device"),
        ("JITR_DEVICE_GROUP", "jitr-devices"),
        ("JITR_THING_GROUPS", "fleet"),
        ("JITR_ON_ROTATION", "retire-previous"),
    ];
    vars.extend_from_slice(extra);
    Config::from_lookup(|k| {
        vars.iter()
            .rev()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn the_function_calls_exactly_the_listed_operations() {
    let api = Recording::default();
    let t = now() * 1000;
    let (old, new, stranger) = ("0a".repeat(32), "0b".repeat(32), "0c".repeat(32));
    let config = config(&[]);
    // A new thing: it joins the device group and the configured one.
    api.register(&old, "robot-1", "PENDING_ACTIVATION", t - 5000);
    let first = provision(&api, &config, &old, now()).await;
    assert_eq!(first.outcome, Kind::Activated, "{first:?}");
    assert_eq!(
        *api.groups.lock().unwrap(),
        [
            ("robot-1".to_string(), "jitr-devices".to_string()),
            ("robot-1".to_string(), "fleet".to_string())
        ]
    );
    // Its successor: activated, the predecessor retired.
    api.register(&new, "robot-1", "PENDING_ACTIVATION", t);
    let rotated = provision(&api, &config, &new, now()).await;
    assert_eq!(rotated.outcome, Kind::Activated, "{rotated:?}");
    assert_eq!(rotated.retired, std::slice::from_ref(&old));
    // Replays: ACTIVE (looks at the thing under retire-previous), INACTIVE.
    assert_eq!(
        provision(&api, &config, &new, now()).await.outcome,
        Kind::AlreadyActive
    );
    assert_eq!(
        provision(&api, &config, &old, now()).await.outcome,
        Kind::Inactive
    );
    // Rejected and revoked: not a device name.
    api.register(&stranger, "not a thing name", "PENDING_ACTIVATION", t);
    assert_eq!(
        provision(&api, &config, &stranger, now()).await.outcome,
        Kind::Rejected
    );

    let called: BTreeSet<&str> = api.calls.lock().unwrap().iter().copied().collect();
    let listed: BTreeSet<&str> = FUNCTION_IOT_OPERATIONS.into_iter().collect();
    assert_eq!(called, listed);
    // Never a policy attachment: the role has no iot:AttachPolicy.
    assert!(!called.contains("AttachPolicy"));
}

/// Without a device group (the CLI run by an administrator), the
/// certificate gets the policy itself: an operation the function's role
/// does not have, which is why the templates always set the group.
#[tokio::test]
async fn without_a_device_group_the_certificate_gets_the_policy() {
    let api = Recording::default();
    let id = "0d".repeat(32);
    api.register(&id, "robot-2", "PENDING_ACTIVATION", now() * 1000);
    let config =
        Config::from_lookup(|k| (k == "JITR_POLICY_NAME").then(|| "jitr-device".into())).unwrap();
    assert_eq!(
        provision(&api, &config, &id, now()).await.outcome,
        Kind::Activated
    );
    assert!(api.calls.lock().unwrap().contains(&"AttachPolicy"));
    assert!(api.groups.lock().unwrap().is_empty());
}
