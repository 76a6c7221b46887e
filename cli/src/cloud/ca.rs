//! CA certificates in AWS IoT: describe, list, register, update, delete;
//! and a registered CA's state as the `ca` commands report and record it.

use std::path::Path;

use aws_sdk_iot::types::{AutoRegistrationStatus, CaCertificateStatus, CertificateMode};
use jitr_core::aws::AwsError;
use serde::{Deserialize, Serialize};

use super::Cloud;
use crate::error::CliError;
use crate::pki::ca_write;

/// A CA certificate as AWS IoT describes it.
#[derive(Debug, Clone)]
pub struct CaView {
    pub certificate_id: String,
    pub arn: String,
    pub status: CaCertificateStatus,
    /// `None` when AWS IoT does not say.
    pub auto_registration: Option<AutoRegistrationStatus>,
    pub mode: CertificateMode,
    /// The CA's PEM, as registered.
    pub pem: String,
}

/// One row of ListCACertificates.
#[derive(Debug, Clone)]
pub struct CaSummary {
    pub certificate_id: String,
    pub arn: String,
    pub status: String,
    /// When it was registered, as AWS IoT formats it.
    pub created: String,
}

/// What RegisterCACertificate is asked to do.
pub struct CaRegistration<'a> {
    pub pem: &'a str,
    /// The proof of possession; `None` registers in SNI_ONLY mode.
    pub verification: Option<String>,
    pub active: bool,
    pub auto_registration: bool,
}

/// A registration's outcome: new, or there already (registering twice is no error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    New,
    Already,
}

/// AWS IoT's name of a CA status.
pub fn status_name(active: bool) -> &'static str {
    if active {
        CaCertificateStatus::Active.as_str()
    } else {
        CaCertificateStatus::Inactive.as_str()
    }
}

/// AWS IoT's name of an auto-registration setting.
pub fn auto_registration_name(enable: bool) -> &'static str {
    if enable {
        AutoRegistrationStatus::Enable.as_str()
    } else {
        AutoRegistrationStatus::Disable.as_str()
    }
}

impl Cloud {
    /// DescribeCACertificate; `None` when the CA is not registered here.
    pub fn describe_ca(&self, id: &str) -> Result<Option<CaView>, AwsError> {
        let answer = self.block_on(self.iot.describe_ca_certificate().certificate_id(id).send());
        let Some(d) = self
            .found(answer)?
            .and_then(|out| out.certificate_description)
        else {
            return Ok(None);
        };
        let name = |s: Option<&str>| s.unwrap_or_default().to_string();
        Ok(Some(CaView {
            certificate_id: d.certificate_id().unwrap_or(id).to_string(),
            arn: name(d.certificate_arn()),
            status: CaCertificateStatus::from(d.status().map_or("", |s| s.as_str())),
            auto_registration: d.auto_registration_status().cloned(),
            mode: d
                .certificate_mode()
                .cloned()
                .unwrap_or(CertificateMode::Default),
            pem: name(d.certificate_pem()),
        }))
    }

    /// ListCACertificates, every page.
    pub fn list_cas(&self) -> Result<Vec<CaSummary>, AwsError> {
        self.all_pages(|marker| async move {
            let page = self
                .iot
                .list_ca_certificates()
                .set_marker(marker)
                .page_size(100)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let rows = page
                .certificates()
                .iter()
                .map(|c| CaSummary {
                    certificate_id: c.certificate_id().unwrap_or_default().to_string(),
                    arn: c.certificate_arn().unwrap_or_default().to_string(),
                    status: c
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    created: c.creation_date().map(|d| d.to_string()).unwrap_or_default(),
                })
                .collect();
            Ok((rows, page.next_marker().map(str::to_string)))
        })
    }

    /// GetRegistrationCode: the common name a proof of possession must carry.
    pub fn registration_code(&self) -> Result<String, AwsError> {
        let out = self
            .block_on(self.iot.get_registration_code().send())
            .map_err(|e| self.error(e))?;
        Ok(out.registration_code().unwrap_or_default().to_string())
    }

    /// RegisterCACertificate; a CA registered meanwhile (by another run) is `Already`.
    pub fn register_ca(&self, r: &CaRegistration) -> Result<Registered, AwsError> {
        let call = self
            .iot
            .register_ca_certificate()
            .ca_certificate(r.pem)
            .set_as_active(r.active)
            .allow_auto_registration(r.auto_registration);
        let call = match &r.verification {
            Some(proof) => call
                .verification_certificate(proof)
                .certificate_mode(CertificateMode::Default),
            None => call.certificate_mode(CertificateMode::SniOnly),
        };
        match self.block_on(call.send()).map_err(|e| self.error(e)) {
            Ok(_) => Ok(Registered::New),
            Err(AwsError::AlreadyExists { .. }) => Ok(Registered::Already),
            Err(e) => Err(e),
        }
    }

    /// UpdateCACertificate with whichever of status and auto-registration is given.
    pub fn update_ca(
        &self,
        id: &str,
        active: Option<bool>,
        auto_registration: Option<bool>,
    ) -> Result<(), AwsError> {
        let call = self
            .iot
            .update_ca_certificate()
            .certificate_id(id)
            .set_new_status(active.map(|a| status_name(a).into()))
            .set_new_auto_registration_status(
                auto_registration.map(|a| auto_registration_name(a).into()),
            );
        self.block_on(call.send())
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// DeleteCACertificate; `false` when it was not registered.
    pub fn delete_ca(&self, id: &str) -> Result<bool, AwsError> {
        let answer = self.block_on(self.iot.delete_ca_certificate().certificate_id(id).send());
        Ok(self.found(answer)?.is_some())
    }
}

/// A registered CA as AWS IoT describes it (and as `aws.json` records it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaState {
    pub certificate_id: String,
    pub certificate_arn: String,
    pub status: String,
    pub auto_registration: String,
    pub mode: String,
    pub region: String,
    pub account: String,
}

impl CaState {
    /// Writes `DIR/aws.json` (replacing an older record) under the CA
    /// directory's lock, if DIR still holds this CA.
    pub fn record(&self, dir: &Path) -> Result<(), CliError> {
        let json = serde_json::to_string_pretty(self).expect("serialisable") + "\n";
        ca_write::record(dir, &self.certificate_id, Some(json.into_bytes()))
    }

    /// The state, one field a line.
    pub fn text(&self) -> String {
        format!(
            "  certificate id:    {}\n  arn:               {}\n  status:            {}\n  auto-registration: {}\n  mode:              {}\n",
            self.certificate_id, self.certificate_arn, self.status, self.auto_registration, self.mode
        )
    }

    /// What `ca activate|deactivate|auto-registration` print: whether the
    /// CA `id` had to change (`updated`), and its state now.
    pub fn change_text(&self, id: &str, updated: bool) -> String {
        let done = if updated {
            "updated"
        } else {
            "already in that state"
        };
        format!("CA {id} {done}\n{}", self.text())
    }
}

/// The account id inside an ARN (`arn:aws:iot:REGION:ACCOUNT:...`).
fn account_of(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or_default().to_string()
}

impl Cloud {
    /// DescribeCACertificate as a [`CaState`]; `None` when the CA is not registered.
    pub fn ca_state(&self, id: &str) -> Result<Option<CaState>, CliError> {
        let view = self
            .describe_ca(id)
            .map_err(|e| CliError::aws(format!("describing CA {id}"), e))?;
        Ok(view.map(|v| CaState {
            account: account_of(&v.arn),
            certificate_id: v.certificate_id,
            certificate_arn: v.arn,
            status: v.status.as_str().to_string(),
            auto_registration: v
                .auto_registration
                .as_ref()
                .map_or("", |a| a.as_str())
                .to_string(),
            mode: v.mode.as_str().to_string(),
            region: self.region.clone(),
        }))
    }

    /// The state of a CA that must be registered in this account and region.
    pub fn registered_ca(&self, id: &str) -> Result<CaState, CliError> {
        self.ca_state(id)?.ok_or_else(|| {
            CliError::invalid(
                format!("CA {id}"),
                format!(
                    "not registered in this account and region ({})",
                    self.region
                ),
            )
        })
    }

    /// UpdateCACertificate with whichever of status (active?) and
    /// auto-registration is given, its failure named for the `ca` commands.
    pub fn set_ca(
        &self,
        id: &str,
        active: Option<bool>,
        auto: Option<bool>,
    ) -> Result<(), CliError> {
        self.update_ca(id, active, auto)
            .map_err(|e| CliError::aws(format!("updating CA {id}"), e))
    }

    /// Brings a registered CA to the status (active?) and auto-registration
    /// given, changing only what differs; the state read back, and whether
    /// anything had to change. A CA directory `dir` that records the CA
    /// (`aws.json`) gets the new state recorded.
    pub fn change_ca(
        &self,
        id: &str,
        dir: Option<&Path>,
        active: Option<bool>,
        auto: Option<bool>,
    ) -> Result<(CaState, bool), CliError> {
        let before = self.registered_ca(id)?;
        let differs = active.is_some_and(|a| status_name(a) != before.status)
            || auto.is_some_and(|a| auto_registration_name(a) != before.auto_registration);
        if differs {
            self.set_ca(id, active, auto)?;
        }
        let after = self.registered_ca(id)?;
        if let Some(dir) = dir.filter(|d| d.join(crate::pki::ca_files::AWS_FILE).exists()) {
            after.record(dir)?;
        }
        Ok((after, differs))
    }
}
