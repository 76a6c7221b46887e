//! Device certificates in AWS IoT: register, describe, activate; the data
//! endpoint devices connect to; whether an IoT policy exists.

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::aws::AwsError;
use jitr_core::iot::CertStatus;

use super::ca::Registered;
use super::Cloud;

/// A device certificate as AWS IoT describes it, with what is attached to it.
#[derive(Debug, Clone)]
pub struct CertView {
    pub status: CertStatus,
    /// Seconds since the epoch AWS IoT registered it.
    pub created: i64,
    pub things: Vec<String>,
    /// Its own policies, then those its things hold through their thing
    /// groups (where the stacks attach the device policy), each as
    /// `NAME (thing group GROUP)`.
    pub policies: Vec<String>,
}

/// What RegisterCertificate(WithoutCA) is asked to do.
pub struct DeviceRegistration<'a> {
    pub pem: &'a str,
    /// The issuing CA's PEM; `None` lets AWS IoT find the registered CA.
    pub ca_pem: Option<&'a str>,
    /// RegisterCertificateWithoutCA (multi-account registration).
    pub without_ca: bool,
    pub active: bool,
}

/// AWS IoT's name of a device certificate status.
pub fn certificate_status_name(active: bool) -> &'static str {
    if active {
        CertificateStatus::Active.as_str()
    } else {
        CertificateStatus::Inactive.as_str()
    }
}

impl Cloud {
    /// DescribeCertificate with its things and policies; `None` when AWS IoT
    /// has never registered it.
    pub fn describe_certificate(&self, id: &str) -> Result<Option<CertView>, AwsError> {
        let Some(d) = self.device_certificate(id)? else {
            return Ok(None);
        };
        let (things, mut policies) = self.attachments(&d.certificate_arn)?;
        for thing in &things {
            policies.extend(self.group_policies(thing)?);
        }
        Ok(Some(CertView {
            status: d.status,
            created: d.created_ms.map_or(0, |ms| ms.div_euclid(1000)),
            things,
            policies,
        }))
    }

    /// The policies thing `thing` holds through its groups and their
    /// ancestors (ListThingGroupsForThing, ListAttachedPolicies recursive),
    /// as `NAME (thing group GROUP)`.
    fn group_policies(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        let groups = self.all_pages(|token| async move {
            let page = self
                .iot
                .list_thing_groups_for_thing()
                .thing_name(thing)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let groups = page
                .thing_groups()
                .iter()
                .filter_map(|g| Some((g.group_name()?.to_string(), g.group_arn()?.to_string())))
                .collect();
            Ok((groups, page.next_token().map(str::to_string)))
        })?;
        let mut out = Vec::new();
        for (name, arn) in groups {
            let policies = self.attached_policies(&arn, true)?;
            out.extend(
                policies
                    .into_iter()
                    .map(|p| format!("{p} (thing group {name})")),
            );
        }
        Ok(out)
    }

    /// RegisterCertificate (or RegisterCertificateWithoutCA); one already registered is `Already`. Async: batches run it
    /// under a rate limiter.
    pub async fn register_certificate(
        &self,
        r: &DeviceRegistration<'_>,
    ) -> Result<Registered, AwsError> {
        let status = CertificateStatus::from(certificate_status_name(r.active));
        let answer = if r.without_ca {
            self.iot
                .register_certificate_without_ca()
                .certificate_pem(r.pem)
                .status(status)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.error(e))
        } else {
            self.iot
                .register_certificate()
                .certificate_pem(r.pem)
                .set_ca_certificate_pem(r.ca_pem.map(str::to_string))
                .status(status)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| self.error(e))
        };
        match answer {
            Ok(()) => Ok(Registered::New),
            Err(AwsError::AlreadyExists { .. }) => Ok(Registered::Already),
            Err(e) => Err(e),
        }
    }

    /// UpdateCertificate to ACTIVE.
    pub async fn activate_certificate(&self, id: &str) -> Result<(), AwsError> {
        self.iot
            .update_certificate()
            .certificate_id(id)
            .new_status(CertificateStatus::Active)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// A certificate's status alone (DescribeCertificate, no attachments).
    pub async fn certificate_status(&self, id: &str) -> Result<CertStatus, AwsError> {
        let out = self
            .iot
            .describe_certificate()
            .certificate_id(id)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        Ok(out
            .certificate_description()
            .and_then(|c| c.status())
            .map(CertStatus::from_sdk)
            .unwrap_or_else(|| CertStatus::Unknown(String::new())))
    }

    /// DescribeEndpoint(iot:Data-ATS): where devices connect.
    pub fn data_endpoint(&self) -> Result<String, AwsError> {
        let answer = self
            .block_on(
                self.iot
                    .describe_endpoint()
                    .endpoint_type("iot:Data-ATS")
                    .send(),
            )
            .map_err(|e| self.error(e))?;
        Ok(answer.endpoint_address().unwrap_or_default().to_string())
    }

    /// Whether the IoT policy `name` exists.
    pub fn policy_exists(&self, name: &str) -> Result<bool, AwsError> {
        let answer = self.block_on(self.iot.get_policy().policy_name(name).send());
        Ok(self.found(answer)?.is_some())
    }
}
