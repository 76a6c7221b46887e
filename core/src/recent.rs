//! Remembering the certificates this instance knows to be ACTIVE (it
//! activated them, or DescribeCertificate said so). Devices retry while
//! their certificate is pending, and every registered event they cause
//! costs a DescribeCertificate, the scarcest quota (10/s per account); the
//! events of one attempt burst often reach the same instance after the
//! certificate was activated (by it or by another instance). An instance
//! that saw a certificate ACTIVE a moment ago knows the answer: the plan
//! skips it. If an administrator changed it since, skipping is still right:
//! the function changes only pending certificates.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_iot::types::CertificateStatus;

use crate::aws::AwsError;
use crate::clock;
use crate::expiring::Expiring;
use crate::iot::{CertStatus, Described, IotApi};

/// How long an activation is remembered: as long as the shared claims
/// remember a certificate done.
const REMEMBER_SECONDS: i64 = crate::claims::REMEMBER_SECONDS;
/// At most this many remembered (what has expired forgotten first, then
/// the oldest).
const CAPACITY: usize = 20_000;

/// An [`IotApi`] that answers DescribeCertificate itself for certificates
/// it saw ACTIVE (activated, or described) within the last ten minutes;
/// every other call goes through.
pub struct Recent<A> {
    inner: A,
    /// Described answers seen, by certificate id, for ten minutes after
    /// they were seen (or the certificate activated here); only the ACTIVE
    /// ones are answered, a pending one is kept for its activation.
    seen: Mutex<Expiring<Described>>,
}

impl<A: IotApi> Recent<A> {
    pub fn new(inner: A) -> Self {
        Recent {
            inner,
            seen: Mutex::new(Expiring::new(CAPACITY)),
        }
    }

    fn remembered(&self, id: &str, now: i64) -> Option<Described> {
        let seen = self.seen.lock().unwrap();
        seen.get(id, now)
            .filter(|d| d.status == CertStatus::Active)
            .cloned()
    }
}

impl<A: IotApi + Send> IotApi for Recent<A> {
    async fn describe_certificate(&self, id: &str) -> Result<Described, AwsError> {
        if let Some(d) = self.remembered(id, clock::unix_seconds()) {
            return Ok(d);
        }
        let d = self.inner.describe_certificate(id).await?;
        let now = clock::unix_seconds();
        let mut seen = self.seen.lock().unwrap();
        seen.insert(id, d.clone(), now + REMEMBER_SECONDS, now);
        Ok(d)
    }
    async fn update_certificate(
        &self,
        id: &str,
        status: CertificateStatus,
    ) -> Result<(), AwsError> {
        let activate = status == CertificateStatus::Active;
        self.inner.update_certificate(id, status).await?;
        let mut seen = self.seen.lock().unwrap();
        // Retired or revoked by this instance: no longer answered ACTIVE.
        let described = seen.remove(id);
        if let Some(mut d) = described.filter(|_| activate) {
            d.status = CertStatus::Active;
            let now = clock::unix_seconds();
            seen.insert(id, d, now + REMEMBER_SECONDS, now);
        }
        Ok(())
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
        principal: &str,
        exclusive: bool,
    ) -> Result<(), AwsError> {
        self.inner
            .attach_thing_principal(thing, principal, exclusive)
            .await
    }
    async fn add_thing_to_thing_group(&self, thing: &str, group: &str) -> Result<(), AwsError> {
        self.inner.add_thing_to_thing_group(thing, group).await
    }
    async fn list_pending_certificates(&self, ca_id: &str) -> Result<Vec<String>, AwsError> {
        self.inner.list_pending_certificates(ca_id).await
    }
    async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, AwsError> {
        self.inner.list_thing_principals(thing).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting_iot::CountingIot;

    #[tokio::test]
    async fn a_certificate_it_activated_is_answered_active_without_a_call() {
        let api = Recent::new(CountingIot::default());
        // Pending, and asked twice before activation: both calls go out.
        assert_eq!(
            api.describe_certificate("a").await.unwrap().status,
            "PENDING_ACTIVATION"
        );
        assert_eq!(
            api.describe_certificate("a").await.unwrap().status,
            "PENDING_ACTIVATION"
        );
        // Revoking is not activating: still asked.
        api.update_certificate("a", CertificateStatus::Revoked)
            .await
            .unwrap();
        api.describe_certificate("a").await.unwrap();
        assert_eq!(api.inner.describes(), 3);
        api.update_certificate("a", CertificateStatus::Active)
            .await
            .unwrap();
        let d = api.describe_certificate("a").await.unwrap();
        assert_eq!(d.status, "ACTIVE");
        assert_eq!(api.inner.describes(), 3, "answered from memory");
        // Another certificate is asked.
        api.describe_certificate("b").await.unwrap();
        assert_eq!(api.inner.describes(), 4);
    }

    /// Full (20,000 remembered), the memory forgets its oldest
    /// certificate, not all of them.
    #[tokio::test]
    async fn a_full_memory_forgets_its_oldest_certificate_not_all() {
        let api = Recent::new(CountingIot::default());
        for i in 0..20_001 {
            api.describe_certificate(&format!("active-{i}"))
                .await
                .unwrap();
        }
        let calls = || api.inner.describes();
        assert_eq!(calls(), 20_001);
        for i in [1, 10_000, 20_000] {
            api.describe_certificate(&format!("active-{i}"))
                .await
                .unwrap();
        }
        assert_eq!(calls(), 20_001, "the newest 20,000 answered from memory");
        api.describe_certificate("active-0").await.unwrap();
        assert_eq!(calls(), 20_002, "the oldest asked again");
    }

    #[tokio::test]
    async fn a_certificate_described_active_is_answered_without_a_second_call() {
        // Activated by another instance: the first duplicate asks, later ones do not.
        let api = Recent::new(CountingIot::default());
        for _ in 0..3 {
            assert_eq!(
                api.describe_certificate("active-1").await.unwrap().status,
                "ACTIVE"
            );
        }
        assert_eq!(api.inner.describes(), 1);
        // A pending one is asked every time.
        api.describe_certificate("p").await.unwrap();
        api.describe_certificate("p").await.unwrap();
        assert_eq!(api.inner.describes(), 3);
    }
}
