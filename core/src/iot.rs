//! The AWS IoT calls provisioning makes, behind a small trait so the
//! provisioning logic runs against the SDK, moto server, or scripted faults.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_iot::types::{
    AttributePayload, CertificateDescription, CertificateStatus, ThingPrincipalType,
};

use crate::aws::AwsError;

/// A certificate as DescribeCertificate answers: the one mapping of that
/// answer, for the function and the CLI alike.
#[derive(Debug, Clone)]
pub struct Described {
    pub certificate_arn: String,
    pub status: CertStatus,
    pub ca_certificate_id: Option<String>,
    pub certificate_pem: String,
    /// When AWS registered it, epoch milliseconds.
    pub created_ms: Option<i64>,
}

impl Described {
    /// DescribeCertificate's `certificateDescription`, read once (a missing
    /// field is empty: AWS always sends the ARN, status and PEM).
    pub fn from_description(d: &CertificateDescription) -> Self {
        Described {
            certificate_arn: d.certificate_arn().unwrap_or_default().to_string(),
            status: d
                .status()
                .map(CertStatus::from_sdk)
                .unwrap_or_else(|| CertStatus::Unknown(String::new())),
            ca_certificate_id: d.ca_certificate_id().map(str::to_string),
            certificate_pem: d.certificate_pem().unwrap_or_default().to_string(),
            created_ms: d.creation_date().and_then(|t| t.to_millis().ok()),
        }
    }
}

/// A certificate's status in AWS IoT (the API's `CertificateStatus`), as
/// the decisions read it. A status AWS adds later is kept by its name
/// (`Unknown`), so an answer is never refused for it: the function leaves
/// such a certificate alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    RegisterInactive,
    PendingActivation,
    Unknown(String),
}

impl CertStatus {
    /// The API's name (`ACTIVE`, `PENDING_ACTIVATION`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            CertStatus::Active => "ACTIVE",
            CertStatus::Inactive => "INACTIVE",
            CertStatus::Revoked => "REVOKED",
            CertStatus::PendingTransfer => "PENDING_TRANSFER",
            CertStatus::RegisterInactive => "REGISTER_INACTIVE",
            CertStatus::PendingActivation => "PENDING_ACTIVATION",
            CertStatus::Unknown(name) => name,
        }
    }

    /// The status the API names `name`.
    pub fn parse(name: &str) -> Self {
        match name {
            "ACTIVE" => CertStatus::Active,
            "INACTIVE" => CertStatus::Inactive,
            "REVOKED" => CertStatus::Revoked,
            "PENDING_TRANSFER" => CertStatus::PendingTransfer,
            "REGISTER_INACTIVE" => CertStatus::RegisterInactive,
            "PENDING_ACTIVATION" => CertStatus::PendingActivation,
            other => CertStatus::Unknown(other.to_string()),
        }
    }

    /// The SDK's status.
    pub fn from_sdk(status: &CertificateStatus) -> Self {
        Self::parse(status.as_str())
    }
}

impl std::fmt::Display for CertStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for CertStatus {
    fn from(name: &str) -> Self {
        Self::parse(name)
    }
}

impl From<String> for CertStatus {
    fn from(name: String) -> Self {
        Self::parse(&name)
    }
}

impl PartialEq<str> for CertStatus {
    fn eq(&self, name: &str) -> bool {
        self.as_str() == name
    }
}

impl PartialEq<&str> for CertStatus {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// Written as the API's name (dry-run plans, outcomes).
impl serde::Serialize for CertStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The AWS IoT operations of provisioning. Each either succeeds or fails
/// with a classified [`AwsError`]; "already exists" answers are the caller's
/// to interpret.
pub trait IotApi: Sync {
    fn describe_certificate(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Described, AwsError>> + Send;
    fn create_thing(
        &self,
        name: &str,
        thing_type: Option<&str>,
        attributes: &HashMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn attach_policy(
        &self,
        policy: &str,
        target_arn: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// `exclusive`: as the thing's exclusive principal (`EXCLUSIVE_THING`),
    /// so the certificate can never be attached to another thing.
    fn attach_thing_principal(
        &self,
        thing: &str,
        principal_arn: &str,
        exclusive: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn add_thing_to_thing_group(
        &self,
        thing: &str,
        group: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
    fn list_pending_certificates(
        &self,
        ca_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
    /// The principals (certificate ARNs, usually) attached to a thing;
    /// [`AwsError::NotFound`] when there is no such thing.
    fn list_thing_principals(
        &self,
        thing: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
}

/// [`IotApi`] over the AWS SDK client (retries and backoff come from its config).
#[derive(Clone)]
pub struct SdkIot {
    pub client: aws_sdk_iot::Client,
    /// For network error messages.
    pub endpoint: String,
}

impl SdkIot {
    fn err<E>(&self, e: aws_sdk_iot::error::SdkError<E>) -> AwsError
    where
        E: aws_sdk_iot::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError::from_sdk(e, &self.endpoint)
    }
}

impl IotApi for SdkIot {
    fn describe_certificate(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Described, AwsError>> + Send {
        let call = self.client.describe_certificate().certificate_id(id);
        async move {
            let out = call.send().await.map_err(|e| self.err(e))?;
            let d = out
                .certificate_description()
                .ok_or_else(|| AwsError::Service {
                    code: "Empty".into(),
                    message: "DescribeCertificate answered without a description".into(),
                })?;
            Ok(Described::from_description(d))
        }
    }

    fn create_thing(
        &self,
        name: &str,
        thing_type: Option<&str>,
        attributes: &HashMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        let payload = AttributePayload::builder()
            .set_attributes(Some(attributes.clone()))
            .build();
        let call = self
            .client
            .create_thing()
            .thing_name(name)
            .set_thing_type_name(thing_type.map(str::to_string))
            .attribute_payload(payload);
        async move { call.send().await.map(|_| ()).map_err(|e| self.err(e)) }
    }

    fn attach_policy(
        &self,
        policy: &str,
        target_arn: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        let call = self
            .client
            .attach_policy()
            .policy_name(policy)
            .target(target_arn);
        async move { call.send().await.map(|_| ()).map_err(|e| self.err(e)) }
    }

    fn attach_thing_principal(
        &self,
        thing: &str,
        principal_arn: &str,
        exclusive: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        let call = self
            .client
            .attach_thing_principal()
            .thing_name(thing)
            .principal(principal_arn)
            .set_thing_principal_type(exclusive.then_some(ThingPrincipalType::ExclusiveThing));
        async move { call.send().await.map(|_| ()).map_err(|e| self.err(e)) }
    }

    fn add_thing_to_thing_group(
        &self,
        thing: &str,
        group: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        let call = self
            .client
            .add_thing_to_thing_group()
            .thing_name(thing)
            .thing_group_name(group);
        async move { call.send().await.map(|_| ()).map_err(|e| self.err(e)) }
    }

    fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        let call = self
            .client
            .update_certificate()
            .certificate_id(id)
            .new_status(status);
        async move { call.send().await.map(|_| ()).map_err(|e| self.err(e)) }
    }

    fn list_thing_principals(
        &self,
        thing: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send {
        let thing = thing.to_string();
        async move {
            let mut arns = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_thing_principals()
                    .thing_name(&thing)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| self.err(e))?;
                arns.extend(page.principals().iter().cloned());
                token = page
                    .next_token()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    return Ok(arns);
                }
            }
        }
    }

    fn list_pending_certificates(
        &self,
        ca_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send {
        let ca_id = ca_id.to_string();
        async move {
            let mut ids = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let page = self
                    .client
                    .list_certificates_by_ca()
                    .ca_certificate_id(&ca_id)
                    .page_size(250)
                    .set_marker(marker.clone())
                    .send()
                    .await
                    .map_err(|e| self.err(e))?;
                for c in page.certificates() {
                    if c.status() == Some(&CertificateStatus::PendingActivation) {
                        ids.extend(c.certificate_id().map(str::to_string));
                    }
                }
                marker = page
                    .next_marker()
                    .filter(|m| !m.is_empty())
                    .map(str::to_string);
                if marker.is_none() {
                    return Ok(ids);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_the_api_names_reads_back_as_itself() {
        for status in CertificateStatus::values() {
            let ours = CertStatus::parse(status);
            assert!(!matches!(ours, CertStatus::Unknown(_)), "{status} is known");
            assert_eq!(ours.as_str(), *status);
            assert_eq!(
                CertStatus::from_sdk(&CertificateStatus::from(*status)),
                ours
            );
        }
        // One AWS adds later is kept by name, never refused.
        let later = CertStatus::parse("PENDING_SOMETHING");
        assert_eq!(later, CertStatus::Unknown("PENDING_SOMETHING".into()));
        assert_eq!(later.to_string(), "PENDING_SOMETHING");
        assert_eq!(serde_json::to_value(CertStatus::Active).unwrap(), "ACTIVE");
    }

    #[test]
    fn a_description_is_read_once_with_its_status() {
        let d = CertificateDescription::builder()
            .certificate_arn("arn:aws:iot:eu-west-1:1:cert/ab")
            .status(CertificateStatus::PendingActivation)
            .ca_certificate_id("ca")
            .certificate_pem("PEM")
            .creation_date(aws_sdk_iot::primitives::DateTime::from_millis(
                1_700_000_000_123,
            ))
            .build();
        let got = Described::from_description(&d);
        assert_eq!(got.status, CertStatus::PendingActivation);
        assert_eq!(got.certificate_arn, "arn:aws:iot:eu-west-1:1:cert/ab");
        assert_eq!(got.ca_certificate_id.as_deref(), Some("ca"));
        assert_eq!(got.certificate_pem, "PEM");
        assert_eq!(got.created_ms, Some(1_700_000_000_123));
        let bare = Described::from_description(&CertificateDescription::builder().build());
        assert_eq!(bare.status, CertStatus::Unknown(String::new()));
        assert_eq!(bare.created_ms, None);
    }
}
