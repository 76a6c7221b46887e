//! The AWS IoT verbs of a device certificate's life after registration:
//! describe it and what is attached, revoke and detach it, delete its
//! thing, list a CA's certificates. Each is one call (or one paged list);
//! throttling is retried by the SDK's configuration (`jitr_core::aws`).

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::aws::AwsError;

use super::Cloud;

/// A device certificate as DescribeCertificate answers.
#[derive(Debug, Clone)]
pub struct DeviceCert {
    pub arn: String,
    pub status: String,
    pub pem: String,
    /// Seconds since the epoch AWS IoT registered it.
    pub created: i64,
}

/// One row of ListCertificatesByCA.
#[derive(Debug, Clone)]
pub struct Listed {
    pub certificate_id: String,
    pub status: String,
    pub created: i64,
}

impl Cloud {
    /// DescribeCertificate; `None` when AWS IoT has never registered it.
    pub fn device_certificate(&self, id: &str) -> Result<Option<DeviceCert>, AwsError> {
        let answer = self.block_on(self.iot.describe_certificate().certificate_id(id).send());
        let Some(out) = self.found(answer)? else {
            return Ok(None);
        };
        Ok(out.certificate_description().map(|d| DeviceCert {
            arn: d.certificate_arn().unwrap_or_default().to_string(),
            status: d
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            pem: d.certificate_pem().unwrap_or_default().to_string(),
            created: d.creation_date().map(|t| t.secs()).unwrap_or_default(),
        }))
    }

    /// The things (ListPrincipalThings) and policies (ListAttachedPolicies)
    /// attached to a certificate ARN, every page.
    pub fn attachments(&self, arn: &str) -> Result<(Vec<String>, Vec<String>), AwsError> {
        let things = self.all_pages(|token| async move {
            let page = self
                .iot
                .list_principal_things()
                .principal(arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            Ok((
                page.things().to_vec(),
                page.next_token().map(str::to_string),
            ))
        })?;
        let policies = self.all_pages(|marker| async move {
            let page = self
                .iot
                .list_attached_policies()
                .target(arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let names = page
                .policies()
                .iter()
                .filter_map(|p| p.policy_name().map(str::to_string))
                .collect();
            Ok((names, page.next_marker().map(str::to_string)))
        })?;
        Ok((things, policies))
    }

    /// The principals of a thing, every page; `None` when there is no such thing.
    pub fn thing_principals(&self, thing: &str) -> Result<Option<Vec<String>>, AwsError> {
        let mut principals = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let answer = self.block_on(
                self.iot
                    .list_thing_principals()
                    .thing_name(thing)
                    .set_next_token(token.clone())
                    .send(),
            );
            let Some(page) = self.found(answer)? else {
                return Ok(None);
            };
            principals.extend(page.principals().iter().cloned());
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(Some(principals));
            }
        }
    }

    /// UpdateCertificate to REVOKED: the certificate can never connect again.
    pub fn revoke_certificate(&self, id: &str) -> Result<(), AwsError> {
        self.block_on(
            self.iot
                .update_certificate()
                .certificate_id(id)
                .new_status(CertificateStatus::Revoked)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| self.error(e))
    }

    /// RegisterCertificate as REVOKED: a certificate AWS IoT has never seen,
    /// so that it can never be registered (JITR included) and used later.
    /// One already registered meanwhile is [`AwsError::AlreadyExists`].
    pub fn register_revoked(&self, pem: &str, ca_pem: &str) -> Result<(), AwsError> {
        self.block_on(
            self.iot
                .register_certificate()
                .certificate_pem(pem)
                .ca_certificate_pem(ca_pem)
                .status(CertificateStatus::Revoked)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| self.error(e))
    }

    /// DetachPolicy from a certificate ARN (a policy already gone is fine).
    pub fn detach_policy(&self, policy: &str, arn: &str) -> Result<(), AwsError> {
        let answer = self.block_on(
            self.iot
                .detach_policy()
                .policy_name(policy)
                .target(arn)
                .send(),
        );
        self.found(answer).map(|_| ())
    }

    /// DetachThingPrincipal (a thing already gone is fine).
    pub fn detach_thing(&self, thing: &str, arn: &str) -> Result<(), AwsError> {
        let answer = self.block_on(
            self.iot
                .detach_thing_principal()
                .thing_name(thing)
                .principal(arn)
                .send(),
        );
        self.found(answer).map(|_| ())
    }

    /// DeleteThing (a thing already gone is fine).
    pub fn delete_thing(&self, thing: &str) -> Result<(), AwsError> {
        let answer = self.block_on(self.iot.delete_thing().thing_name(thing).send());
        self.found(answer).map(|_| ())
    }

    /// ListCertificatesByCA, every page, every status.
    pub fn certificates_of_ca(&self, ca_id: &str) -> Result<Vec<Listed>, AwsError> {
        self.all_pages(|marker| async move {
            let page = self
                .iot
                .list_certificates_by_ca()
                .ca_certificate_id(ca_id)
                .set_marker(marker)
                .page_size(250)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let rows = page
                .certificates()
                .iter()
                .map(|c| Listed {
                    certificate_id: c.certificate_id().unwrap_or_default().to_string(),
                    status: c
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    created: c.creation_date().map(|t| t.secs()).unwrap_or_default(),
                })
                .collect();
            Ok((rows, page.next_marker().map(str::to_string)))
        })
    }
}
