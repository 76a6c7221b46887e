//! The allow-list (`JITR_ADMISSION=allow-list`): certificates jitr issued
//! and `jitr device allow` listed, by certificate id. Looking one up is the
//! only I/O; what the answer means is [`crate::plan`]'s decision. A list
//! that cannot be read fails the record (it comes back), never admits it.

use std::collections::BTreeMap;
use std::future::Future;

/// An allow-list entry: what the manifest said about the device, which
/// wins over what the function would derive from the subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub thing_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

/// What the allow-list said about a certificate: a fact for the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Not looked up: `JITR_ADMISSION=any`, or nothing to admit.
    NotAsked,
    Listed(Entry),
    NotListed,
}

/// Why the allow-list could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("allow-list {table}: {reason}")]
pub struct AllowListError {
    pub table: String,
    pub reason: String,
}

/// The allow-list store (a DynamoDB table in the deployed function).
pub trait AllowList: Sync {
    /// The entry of `certificate_id`, or that it has none.
    fn lookup(
        &self,
        certificate_id: &str,
    ) -> impl Future<Output = Result<Listing, AllowListError>> + Send;
}

/// No store configured: every lookup fails, so under
/// `JITR_ADMISSION=allow-list` nothing is admitted (nor revoked).
pub struct NoAllowList;

impl AllowList for NoAllowList {
    async fn lookup(&self, _: &str) -> Result<Listing, AllowListError> {
        Err(AllowListError {
            table: "(none)".into(),
            reason: "JITR_ADMISSION is allow-list but JITR_ALLOW_LIST_TABLE is not set".into(),
        })
    }
}

/// A store, or none configured (then as [`NoAllowList`]).
impl<L: AllowList> AllowList for Option<L> {
    async fn lookup(&self, certificate_id: &str) -> Result<Listing, AllowListError> {
        match self {
            Some(list) => list.lookup(certificate_id).await,
            None => NoAllowList.lookup(certificate_id).await,
        }
    }
}
