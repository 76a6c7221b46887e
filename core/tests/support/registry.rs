//! AWS IoT in memory, for provisioning driven through `IotApi` without the
//! SDK: certificates by id, things with their principals, and every call
//! made, in order, as "Operation arguments".

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::aws::AwsError;
use jitr_core::iot::{CertStatus, Described, IotApi};

use super::{arn, device_pem, CA};

/// The calls that read and change nothing.
const READS: [&str; 3] = [
    "DescribeCertificate",
    "ListCertificatesByCA",
    "ListThingPrincipals",
];

#[derive(Default)]
pub struct Registry {
    certificates: Mutex<HashMap<String, Described>>,
    things: Mutex<HashMap<String, Vec<String>>>,
    calls: Mutex<Vec<String>>,
    broken: Mutex<HashSet<String>>,
}

impl Registry {
    /// Certificate `id` of [`CA`], named `cn`, in `status`, registered at
    /// `created_ms`.
    pub fn add(&self, id: &str, cn: &str, status: &str, created_ms: i64) {
        let described = Described {
            certificate_arn: arn(id),
            status: CertStatus::parse(status),
            ca_certificate_id: Some(CA.into()),
            certificate_pem: device_pem(cn),
            created_ms: Some(created_ms),
        };
        self.certificates
            .lock()
            .unwrap()
            .insert(id.into(), described);
    }

    /// Certificate `id`, named `cn`, pending activation.
    pub fn register(&self, id: &str, cn: &str) {
        self.add(id, cn, "PENDING_ACTIVATION", 1);
    }

    /// Describing `id` fails as a 5xx does.
    pub fn break_describe(&self, id: &str) {
        self.broken.lock().unwrap().insert(id.into());
    }

    /// Thing `thing` exists with certificate `id` attached.
    pub fn attach(&self, thing: &str, id: &str) {
        self.things
            .lock()
            .unwrap()
            .entry(thing.into())
            .or_default()
            .push(arn(id));
    }

    pub fn status(&self, id: &str) -> String {
        self.certificates.lock().unwrap()[id]
            .status
            .as_str()
            .to_string()
    }

    /// The principals attached to `thing` (none when there is no such thing).
    pub fn principals(&self, thing: &str) -> Vec<String> {
        let things = self.things.lock().unwrap();
        things.get(thing).cloned().unwrap_or_default()
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Every call that changes something, in order.
    pub fn changes(&self) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        let reads = calls.iter().filter(|c| !READS.contains(&operation(c)));
        reads.cloned().collect()
    }

    /// The arguments of every call of `op`, in order.
    pub fn calls_to(&self, op: &str) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter_map(|c| c.strip_prefix(op)?.strip_prefix(' ').map(str::to_string))
            .collect()
    }

    /// The operations called, each once.
    pub fn operations(&self) -> BTreeSet<String> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|c| operation(c).to_string()).collect()
    }

    fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

/// A certificate id as calls are noted: its first four characters.
fn short(id: &str) -> &str {
    id.get(..4).unwrap_or(id)
}

/// The operation of a noted call.
fn operation(call: &str) -> &str {
    call.split(' ').next().unwrap_or_default()
}

impl IotApi for Registry {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        self.note(format!("DescribeCertificate {}", short(id)));
        if self.broken.lock().unwrap().contains(id) {
            return Err(AwsError::Service {
                code: "InternalFailureException".into(),
                message: "try again".into(),
            });
        }
        let found = self.certificates.lock().unwrap().get(id).cloned();
        found.ok_or_else(|| AwsError::NotFound(id.into()))
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

    async fn attach_policy(&self, policy: &str, target: &str) -> Result<(), AwsError> {
        self.note(format!("AttachPolicy {policy} {target}"));
        Ok(())
    }

    async fn attach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
        _: bool,
    ) -> Result<(), AwsError> {
        self.note(format!("AttachThingPrincipal {thing} {principal}"));
        let mut things = self.things.lock().unwrap();
        let attached = things.entry(thing.into()).or_default();
        if !attached.iter().any(|p| p == principal) {
            attached.push(principal.into());
        }
        Ok(())
    }

    async fn add_thing_to_thing_group(&self, thing: &str, group: &str) -> Result<(), AwsError> {
        self.note(format!("AddThingToThingGroup {thing} {group}"));
        Ok(())
    }

    async fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> Result<(), AwsError> {
        self.note(format!(
            "UpdateCertificate {} {}",
            short(id),
            status.as_str()
        ));
        let mut certificates = self.certificates.lock().unwrap();
        let described = certificates
            .get_mut(id)
            .ok_or_else(|| AwsError::NotFound(id.into()))?;
        described.status = CertStatus::from_sdk(&status);
        Ok(())
    }

    async fn list_pending_certificates(&self, ca: &str) -> Result<Vec<String>, AwsError> {
        self.note(format!("ListCertificatesByCA {ca}"));
        Ok(Vec::new())
    }

    async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        self.note(format!("ListThingPrincipals {thing}"));
        let found = self.things.lock().unwrap().get(thing).cloned();
        found.ok_or_else(|| AwsError::NotFound(thing.into()))
    }
}
