//! The provisioning decision, without I/O: what AWS IoT said about a
//! certificate + the configuration -> activate, skip or reject. Here the
//! plan and the decision; the new thing's name, attributes and groups in
//! `thing`; the verifier hook's say in `verdict`; the thing's other
//! principals (whose the thing is, which certificates a rotation retires)
//! in `principals`.

mod principals;
#[cfg(test)]
mod tests;
mod thing;
mod verdict;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::admission::Listing;
use crate::config::{Admission, Config, OnReject};
use crate::facts::CertFacts;
use crate::iot::CertStatus;
use crate::outcome::Kind;
use crate::rules;

pub use self::principals::{
    certificate_id_of, finish_rotation, may_take, rotation, rotation_thing, still_to_retire,
    Principal, Rotation,
};
pub use self::thing::named_by;
use self::thing::{attributes_of, checked_name, groups, thing_name_of};
pub use self::verdict::{needs_verdict, verified};

/// What DescribeCertificate told us.
#[derive(Debug, Clone)]
pub struct Observed {
    pub certificate_id: String,
    pub certificate_arn: String,
    /// ACTIVE, INACTIVE, REVOKED, PENDING_ACTIVATION, ...
    pub status: CertStatus,
    pub ca_certificate_id: Option<String>,
    /// Parsed from the certificate PEM AWS holds; why not, when AWS holds
    /// something we cannot parse (refused like any bad certificate).
    pub facts: Result<CertFacts, String>,
    /// When AWS registered it (epoch milliseconds): under JITR, the device's
    /// first connect with it. Orders a thing's certificates for rotation.
    pub created_ms: Option<i64>,
}

/// What to do with one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Plan {
    /// Create the thing, join its groups (the device group's policy is the
    /// device's) and attach the principal, then activate.
    Activate(Activation),
    /// Nothing to do (already active, or deliberately inactive or revoked);
    /// `outcome` names which.
    Skip {
        status: CertStatus,
        reason: String,
        outcome: Kind,
    },
    /// Refuse admission; `revoke` sets the certificate REVOKED.
    Reject { reason: String, revoke: bool },
    /// An ACTIVE certificate whose rotation was cut short after its
    /// activation (JITR_ON_ROTATION=retire-previous): set the older
    /// certificates in `retire`, still ACTIVE on `thing_name`, INACTIVE.
    /// `reason` and `outcome` are its skip's ([`finish_rotation`]).
    FinishRotation {
        status: CertStatus,
        thing_name: String,
        retire: Vec<String>,
        reason: String,
        outcome: Kind,
    },
}

/// The provisioning steps' parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    pub thing_name: String,
    pub attributes: BTreeMap<String, String>,
    pub thing_type: Option<String>,
    /// The groups the thing joins: the device group (JITR_DEVICE_GROUP)
    /// first, whose policy is the device's, then JITR_THING_GROUPS.
    pub thing_groups: Vec<String>,
    /// The policy to attach to the certificate: only without a device
    /// group (then whoever provisions may attach any policy of the account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// The thing's older ACTIVE certificates to set INACTIVE once this one
    /// is ACTIVE (JITR_ON_ROTATION=retire-previous; filled by [`may_take`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retire: Vec<String>,
}

/// Whether the decision needs the allow-list's answer (see [`decide`]).
pub fn needs_listing(observed: &Observed, config: &Config) -> bool {
    config.admission == Admission::AllowList && observed.status == CertStatus::PendingActivation
}

/// Decides what to do with a certificate; `now` is Unix seconds; `listing`
/// is the allow-list's answer when [`needs_listing`] (under
/// `JITR_ADMISSION=allow-list` anything but `Listed` is refused).
pub fn decide(observed: &Observed, listing: &Listing, config: &Config, now: i64) -> Plan {
    let skip = |outcome: Kind, reason: String| Plan::Skip {
        status: observed.status.clone(),
        reason,
        outcome,
    };
    match &observed.status {
        CertStatus::PendingActivation => {}
        CertStatus::Active => return skip(Kind::AlreadyActive, "already active".into()),
        CertStatus::Revoked => return skip(Kind::Skipped, "revoked: never reactivated".into()),
        CertStatus::Inactive => {
            return skip(
                Kind::Inactive,
                "inactive (retired by a rotation or by an administrator): left alone".into(),
            )
        }
        other => return skip(Kind::Skipped, format!("status {other}: not ours to change")),
    }
    match admit(observed, listing, config, now) {
        Ok(activation) => Plan::Activate(activation),
        Err(reason) => Plan::Reject {
            reason,
            revoke: config.on_reject == OnReject::Revoke,
        },
    }
}

fn admit(
    observed: &Observed,
    listing: &Listing,
    config: &Config,
    now: i64,
) -> Result<Activation, String> {
    let entry = match (config.admission, listing) {
        (Admission::Any, _) => None,
        (Admission::AllowList, Listing::Listed(entry)) => Some(entry),
        (Admission::AllowList, _) => return Err("not on the allow-list".into()),
    };
    let facts = observed
        .facts
        .as_ref()
        .map_err(|e| format!("certificate cannot be parsed: {e}"))?;
    if !config.allowed_ca_ids.is_empty() {
        match &observed.ca_certificate_id {
            Some(ca) if config.allowed_ca_ids.contains(&ca.to_ascii_lowercase()) => {}
            Some(ca) => return Err(format!("CA {ca} is not in JITR_ALLOWED_CA_IDS")),
            None => return Err("certificate has no CA and JITR_ALLOWED_CA_IDS is set".into()),
        }
    }
    if facts.is_ca() {
        return Err("certificate is a CA certificate, not a device".into());
    }
    if let Some(reason) = not_yet_valid(facts.not_before, now, config.clock_skew_seconds) {
        return Err(reason);
    }
    if now > facts.not_after {
        return Err(format!(
            "expired at {}",
            crate::facts::rfc3339(facts.not_after)
        ));
    }
    if let Some(problem) = rules::key_problem(&facts.key) {
        return Err(problem);
    }
    let listed_name = entry.and_then(|e| e.thing_name.as_deref());
    let thing_name = checked_name(
        thing_name_of(&observed.certificate_id, facts, config, listed_name)?,
        config,
    )?;
    let attributes = attributes_of(&observed.certificate_id, facts, config, entry)?;
    Ok(Activation {
        thing_name,
        attributes,
        thing_type: config.thing_type.clone(),
        thing_groups: groups(config),
        policy_name: config
            .device_group
            .is_none()
            .then(|| config.policy_name.clone()),
        retire: Vec::new(),
    })
}

/// Why a certificate whose validity starts at `not_before` is not admitted
/// at `now`, if it is not: a factory clock ahead of AWS by up to `skew`
/// seconds is normal and admitted; more is a rejection with the reason.
fn not_yet_valid(not_before: i64, now: i64, skew: i64) -> Option<String> {
    let ahead = not_before - now;
    (ahead > skew).then(|| {
        format!(
            "not valid before {} ({ahead} s from now, more than the {skew} s of JITR_CLOCK_SKEW_SECONDS)",
            crate::facts::rfc3339(not_before)
        )
    })
}
