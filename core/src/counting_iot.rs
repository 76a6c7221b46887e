//! An AWS IoT for the unit tests of the layers above it ([`crate::recent`],
//! [`crate::handler`]): it answers every call at once and counts them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_iot::types::CertificateStatus;

use crate::aws::AwsError;
use crate::iot::{Described, IotApi};

/// Every certificate is found PENDING_ACTIVATION (ACTIVE if its id starts
/// with "active"), with an unreadable PEM; every other call succeeds.
#[derive(Default)]
pub(crate) struct CountingIot {
    describes: AtomicUsize,
    calls: AtomicUsize,
}

impl CountingIot {
    /// DescribeCertificate calls so far.
    pub(crate) fn describes(&self) -> usize {
        self.describes.load(Ordering::SeqCst)
    }

    /// Calls of any operation so far.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn note<T>(&self, answer: T) -> Result<T, AwsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(answer)
    }
}

impl IotApi for CountingIot {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        self.describes.fetch_add(1, Ordering::SeqCst);
        let status = if id.starts_with("active") {
            "ACTIVE"
        } else {
            "PENDING_ACTIVATION"
        };
        self.note(Described {
            certificate_arn: format!("arn:aws:iot:eu-west-1:1:cert/{id}"),
            status: status.into(),
            ca_certificate_id: None,
            certificate_pem: String::new(),
            created_ms: None,
        })
    }
    async fn create_thing(
        &self,
        _: &str,
        _: Option<&str>,
        _: &HashMap<String, String>,
    ) -> Result<(), AwsError> {
        self.note(())
    }
    async fn attach_policy(&self, _: &str, _: &str) -> Result<(), AwsError> {
        self.note(())
    }
    async fn attach_thing_principal(&self, _: &str, _: &str, _: bool) -> Result<(), AwsError> {
        self.note(())
    }
    async fn add_thing_to_thing_group(&self, _: &str, _: &str) -> Result<(), AwsError> {
        self.note(())
    }
    async fn update_certificate(&self, _: &str, _: CertificateStatus) -> Result<(), AwsError> {
        self.note(())
    }
    async fn list_pending_certificates(&self, _: &str) -> Result<Vec<String>, AwsError> {
        self.note(vec![])
    }
    async fn list_thing_principals(&self, _: &str) -> Result<Vec<String>, AwsError> {
        self.note(vec![])
    }
}
