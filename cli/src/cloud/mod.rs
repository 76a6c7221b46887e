//! The connection to AWS IoT for the commands that talk to AWS: the SDK
//! client, a runtime to drive it, and errors in the user's terms.

use std::future::Future;

use jitr_core::aws::{self, AwsError, AwsOptions};

use crate::error::CliError;

/// An AWS IoT client ready to call, with the runtime that drives it.
pub struct Cloud {
    pub iot: aws_sdk_iot::Client,
    /// Where calls go, for messages.
    pub endpoint: String,
    pub region: String,
    config: aws_config::SdkConfig,
    rt: tokio::runtime::Runtime,
}

pub mod deployment;

impl Cloud {
    /// Resolves region and credentials (one clear sentence if either is
    /// missing) and builds the client.
    pub fn connect(opts: &AwsOptions) -> Result<Self, CliError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| CliError::startup("the async runtime", e))?;
        let config = rt
            .block_on(aws::load(opts))
            .map_err(|e| CliError::aws("AWS configuration", e))?;
        rt.block_on(aws::check_credentials(&config))
            .map_err(|e| CliError::aws("AWS credentials", e))?;
        Ok(Cloud {
            iot: aws::iot_client(&config),
            endpoint: aws::endpoint_of(&config),
            region: config.region().map(|r| r.to_string()).unwrap_or_default(),
            config,
            rt,
        })
    }

    /// Runs `f` to completion.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Classifies an SDK error of the call `action`.
    pub fn error<E>(&self, err: aws_sdk_iot::error::SdkError<E>) -> AwsError
    where
        E: aws_sdk_iot::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        AwsError::from_sdk(err, &self.endpoint)
    }

    /// An SDK answer with "not found" as `None` (a resource AWS IoT does not hold).
    fn found<T, E>(
        &self,
        answer: Result<T, aws_sdk_iot::error::SdkError<E>>,
    ) -> Result<Option<T>, AwsError>
    where
        E: aws_sdk_iot::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match answer.map_err(|e| self.error(e)) {
            Ok(out) => Ok(Some(out)),
            Err(AwsError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A CA certificate as AWS IoT describes it.
#[derive(Debug, Clone)]
pub struct CaView {
    pub certificate_id: String,
    pub arn: String,
    pub status: String,
    pub auto_registration: String,
    pub mode: String,
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

/// A device certificate as AWS IoT describes it, with what is attached to it.
#[derive(Debug, Clone)]
pub struct CertView {
    pub arn: String,
    pub status: String,
    /// Seconds since the epoch AWS IoT registered it.
    pub created: i64,
    pub things: Vec<String>,
    pub policies: Vec<String>,
}

impl Cloud {
    /// The SDK configuration, for the other services' clients.
    pub fn config(&self) -> &aws_config::SdkConfig {
        &self.config
    }

    /// DescribeCACertificate; `None` when the CA is not registered here.
    pub fn describe_ca(&self, id: &str) -> Result<Option<CaView>, AwsError> {
        let answer = self.block_on(self.iot.describe_ca_certificate().certificate_id(id).send());
        let Some(out) = self.found(answer)? else {
            return Ok(None);
        };
        let Some(d) = out.certificate_description() else {
            return Ok(None);
        };
        Ok(Some(CaView {
            certificate_id: d.certificate_id().unwrap_or(id).to_string(),
            arn: d.certificate_arn().unwrap_or_default().to_string(),
            status: d
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            auto_registration: d
                .auto_registration_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            mode: d
                .certificate_mode()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "DEFAULT".into()),
            pem: d.certificate_pem().unwrap_or_default().to_string(),
        }))
    }

    /// ListCACertificates, every page (the one place that pages through them).
    pub fn list_cas(&self) -> Result<Vec<CaSummary>, AwsError> {
        let mut cas = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .block_on(
                    self.iot
                        .list_ca_certificates()
                        .set_marker(marker.clone())
                        .page_size(100)
                        .send(),
                )
                .map_err(|e| self.error(e))?;
            cas.extend(page.certificates().iter().map(|c| {
                CaSummary {
                    certificate_id: c.certificate_id().unwrap_or_default().to_string(),
                    arn: c.certificate_arn().unwrap_or_default().to_string(),
                    status: c
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    created: c.creation_date().map(|d| d.to_string()).unwrap_or_default(),
                }
            }));
            marker = page
                .next_marker()
                .filter(|m| !m.is_empty())
                .map(str::to_string);
            if marker.is_none() {
                return Ok(cas);
            }
        }
    }

    /// DescribeCertificate with its things and policies; `None` when AWS IoT
    /// has never registered it.
    pub fn describe_certificate(&self, id: &str) -> Result<Option<CertView>, AwsError> {
        let answer = self.block_on(self.iot.describe_certificate().certificate_id(id).send());
        let Some(out) = self.found(answer)? else {
            return Ok(None);
        };
        let Some(d) = out.certificate_description() else {
            return Ok(None);
        };
        let arn = d.certificate_arn().unwrap_or_default().to_string();
        let things = self
            .block_on(self.iot.list_principal_things().principal(&arn).send())
            .map_err(|e| self.error(e))?
            .things()
            .to_vec();
        let policies = self
            .block_on(self.iot.list_attached_policies().target(&arn).send())
            .map_err(|e| self.error(e))?
            .policies()
            .iter()
            .filter_map(|p| p.policy_name().map(str::to_string))
            .collect();
        Ok(Some(CertView {
            status: d
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            created: d.creation_date().map(|t| t.secs()).unwrap_or_default(),
            arn,
            things,
            policies,
        }))
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
        match self.block_on(self.iot.get_policy().policy_name(name).send()) {
            Ok(_) => Ok(true),
            Err(e) => match self.error(e) {
                AwsError::NotFound(_) => Ok(false),
                e => Err(e),
            },
        }
    }
}
