//! What the fuzz targets share: the provisioning configuration, a stand-in
//! for AWS IoT that answers without a network, and a fixed signing key.

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::OnceLock;

use aws_sdk_iot::types::CertificateStatus;
use jitr_core::aws::AwsError;
use jitr_core::config::Config;
use jitr_core::iot::{Described, IotApi};

/// The Lambda's configuration with only the required setting.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_lookup(|name| (name == "JITR_POLICY_NAME").then(|| "jitr-device".into()))
            .expect("minimal configuration")
    })
}

/// AWS IoT that knows no certificate: every provisioning attempt fails at
/// DescribeCertificate, so every parsed record ends as a batch item failure.
/// Counts the calls, so a target can check that malformed input made none.
#[derive(Default)]
pub struct NoCertificates {
    pub describes: std::sync::atomic::AtomicUsize,
}

impl IotApi for NoCertificates {
    fn describe_certificate(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Described, AwsError>> + Send {
        self.describes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ready(Err(AwsError::NotFound(id.to_string())))
    }
    fn create_thing(
        &self,
        _: &str,
        _: Option<&str>,
        _: &HashMap<String, String>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        ready(unreachable_call("CreateThing"))
    }
    fn attach_policy(&self, _: &str, _: &str) -> impl Future<Output = Result<(), AwsError>> + Send {
        ready(unreachable_call("AttachPolicy"))
    }
    fn attach_thing_principal(
        &self,
        _: &str,
        _: &str,
        _: bool,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        ready(unreachable_call("AttachThingPrincipal"))
    }
    fn add_thing_to_thing_group(
        &self,
        _: &str,
        _: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        ready(unreachable_call("AddThingToThingGroup"))
    }
    fn update_certificate(
        &self,
        _: &str,
        _: CertificateStatus,
    ) -> impl Future<Output = Result<(), AwsError>> + Send {
        ready(unreachable_call("UpdateCertificate"))
    }
    fn list_pending_certificates(
        &self,
        _: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send {
        ready(Ok(Vec::new()))
    }
    fn list_thing_principals(
        &self,
        _: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send {
        ready(Ok(Vec::new()))
    }
}

/// No certificate exists, so no mutation may follow DescribeCertificate.
fn unreachable_call(name: &str) -> Result<(), AwsError> {
    panic!("{name} called although DescribeCertificate found nothing")
}

/// Signs certificates for targets that read them back but never verify the
/// signature: the real P-256 public key, a fixed signature (signing each
/// input would measure aws-lc, not our encoders and parsers).
pub struct FixedSigner(rcgen::KeyPair);

impl rcgen::PublicKeyData for FixedSigner {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl rcgen::SigningKey for FixedSigner {
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01])
    }
}

/// The one [`FixedSigner`].
pub fn signer() -> &'static FixedSigner {
    static KEY: OnceLock<FixedSigner> = OnceLock::new();
    KEY.get_or_init(|| FixedSigner(rcgen::KeyPair::generate().expect("P-256 key")))
}
