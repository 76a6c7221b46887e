//! The CA of each certificate provisioning described, remembered for the
//! invocation so its events ([`crate::events`]) name the CA without a call
//! of their own: an [`IotApi`] layer that passes every call through and
//! notes DescribeCertificate's `caCertificateId`.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_iot::types::CertificateStatus;

use crate::aws::AwsError;
use crate::iot::{Described, IotApi};

/// `inner`, noting the CA of every certificate it describes.
pub struct NotingCas<'a, A> {
    inner: &'a A,
    cas: Mutex<HashMap<String, String>>,
}

impl<'a, A: IotApi> NotingCas<'a, A> {
    pub fn new(inner: &'a A) -> Self {
        NotingCas {
            inner,
            cas: Mutex::default(),
        }
    }

    /// The CA of `certificate_id`, if it was described through this layer.
    pub fn ca_of(&self, certificate_id: &str) -> Option<String> {
        self.cas.lock().unwrap().get(certificate_id).cloned()
    }
}

impl<A: IotApi> IotApi for NotingCas<'_, A> {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        let d = self.inner.describe_certificate(id).await?;
        if let Some(ca) = &d.ca_certificate_id {
            self.cas.lock().unwrap().insert(id.to_string(), ca.clone());
        }
        Ok(d)
    }
    async fn create_thing(
        &self,
        name: &str,
        thing_type: Option<&str>,
        attributes: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        self.inner.create_thing(name, thing_type, attributes).await
    }
    async fn attach_policy(&self, policy: &str, target_arn: &str) -> Result<(), AwsError> {
        self.inner.attach_policy(policy, target_arn).await
    }
    async fn attach_thing_principal(
        &self,
        thing: &str,
        principal_arn: &str,
        exclusive: bool,
    ) -> Result<(), AwsError> {
        self.inner
            .attach_thing_principal(thing, principal_arn, exclusive)
            .await
    }
    async fn add_thing_to_thing_group(&self, thing: &str, group: &str) -> Result<(), AwsError> {
        self.inner.add_thing_to_thing_group(thing, group).await
    }
    async fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> Result<(), AwsError> {
        self.inner.update_certificate(id, status).await
    }
    async fn list_pending_certificates(&self, ca_id: &str) -> Result<Vec<String>, AwsError> {
        self.inner.list_pending_certificates(ca_id).await
    }
    async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        self.inner.list_thing_principals(thing).await
    }
}
