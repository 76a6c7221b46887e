//! The thing's other principals: whether the thing may take a
//! certificate (only of its CA), and which of its certificates a rotation
//! retires or finishes retiring.

use super::thing::thing_name;
use super::{Activation, Observed, Plan};
use crate::config::{Config, OnReject, OnRotation};
use crate::iot::CertStatus;
use crate::outcome::Kind;
use crate::rules;

/// A principal attached to the thing a certificate would be attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub arn: String,
    /// The certificate's id when the principal is an X.509 certificate.
    pub certificate_id: Option<String>,
    /// The CA that issued that certificate (None: registered without a CA,
    /// or not a certificate).
    pub ca_certificate_id: Option<String>,
    /// That certificate's status (None: not a certificate).
    pub status: Option<CertStatus>,
    /// When AWS registered that certificate, epoch milliseconds.
    pub created_ms: Option<i64>,
}

/// The certificate id in a certificate ARN (`arn:...:cert/<id>`).
pub fn certificate_id_of(arn: &str) -> Option<&str> {
    let (_, id) = arn.rsplit_once(":cert/")?;
    rules::is_certificate_id(id).then_some(id)
}

/// Whether the thing may take this certificate: only when every certificate
/// already attached was issued by the same CA (or there is none, or it is
/// this one, attached by an earlier attempt). Otherwise a device of another
/// CA with the same name would share the thing's identity and policy.
pub fn may_take(
    observed: &Observed,
    mut activation: Activation,
    principals: &[Principal],
    config: &Config,
) -> Plan {
    if let Some(owner) = foreign_owner(observed, principals) {
        return Plan::Reject {
            reason: format!("thing {} belongs to {owner}", activation.thing_name),
            revoke: config.on_reject == OnReject::Revoke,
        };
    }
    match rotation(observed, principals, config.on_rotation) {
        Rotation::Retire(ids) => {
            activation.retire = ids;
            Plan::Activate(activation)
        }
        Rotation::SupersededBy(newer) => Plan::Skip {
            status: observed.status.clone(),
            reason: format!(
                "superseded: certificate {newer}, registered later, is ACTIVE on thing {} \
                 (JITR_ON_ROTATION=retire-previous): left pending",
                activation.thing_name
            ),
            outcome: Kind::Superseded,
        },
    }
}

/// What a certificate means for the thing's other certificates of its CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// These (older, ACTIVE) go INACTIVE once this one is ACTIVE; none under `keep`.
    Retire(Vec<String>),
    /// A certificate registered later is ACTIVE: this one is a predecessor.
    SupersededBy(String),
}

/// The rotation decision. Under `retire-previous`, a certificate retires
/// the thing's ACTIVE certificates of its CA registered before it, and is
/// itself superseded by one registered after it. Order is AWS's
/// registration time (the device's first connect with that certificate);
/// when it cannot tell (equal or unknown), neither retires the other. So a
/// replayed event of a predecessor never retires its successor, and the
/// successor's event may be replayed at will.
pub fn rotation(
    observed: &Observed,
    principals: &[Principal],
    on_rotation: OnRotation,
) -> Rotation {
    if on_rotation == OnRotation::Keep {
        return Rotation::Retire(Vec::new());
    }
    let ours = observed
        .ca_certificate_id
        .as_deref()
        .map(str::to_ascii_lowercase);
    let mut retire = Vec::new();
    for p in principals {
        let Some(id) = &p.certificate_id else {
            continue;
        };
        let same_ca =
            ours.is_some() && p.ca_certificate_id.as_deref().map(str::to_ascii_lowercase) == ours;
        if id.eq_ignore_ascii_case(&observed.certificate_id)
            || !same_ca
            || p.status != Some(CertStatus::Active)
        {
            continue;
        }
        match (p.created_ms, observed.created_ms) {
            (Some(theirs), Some(mine)) if theirs < mine => retire.push(id.clone()),
            (Some(theirs), Some(mine)) if theirs > mine => {
                return Rotation::SupersededBy(id.clone())
            }
            _ => {}
        }
    }
    Rotation::Retire(retire)
}

/// The thing whose older certificates an ACTIVE certificate's event may
/// still have to retire (a rotation interrupted after the activation, then
/// retried): only under `retire-previous`, for a readable certificate that
/// names a thing. None: nothing to look at.
pub fn rotation_thing(observed: &Observed, config: &Config) -> Option<String> {
    if config.on_rotation != OnRotation::RetirePrevious || observed.status != CertStatus::Active {
        return None;
    }
    let facts = observed.facts.as_ref().ok()?;
    thing_name(&observed.certificate_id, facts, config).ok()
}

/// The plan for a certificate [`decide`] skipped, once the principals of
/// the thing [`rotation_thing`] names are known: finishing its rotation
/// when older certificates are still to retire ([`still_to_retire`]), the
/// skip otherwise.
pub fn finish_rotation(
    skip: Plan,
    observed: &Observed,
    thing_name: String,
    principals: &[Principal],
    config: &Config,
) -> Plan {
    let retire = still_to_retire(observed, principals, config);
    match skip {
        Plan::Skip {
            status,
            reason,
            outcome,
        } if !retire.is_empty() => Plan::FinishRotation {
            status,
            thing_name,
            retire,
            reason,
            outcome,
        },
        other => other,
    }
}

/// For an ACTIVE certificate attached to the thing (see [`rotation_thing`]):
/// the older certificates still to retire. Not attached: nothing (it is
/// not the thing's certificate, whatever its name says).
pub fn still_to_retire(
    observed: &Observed,
    principals: &[Principal],
    config: &Config,
) -> Vec<String> {
    let attached = principals.iter().any(|p| {
        p.certificate_id
            .as_deref()
            .is_some_and(|id| id.eq_ignore_ascii_case(&observed.certificate_id))
    });
    match rotation(observed, principals, config.on_rotation) {
        Rotation::Retire(ids) if attached => ids,
        _ => Vec::new(),
    }
}

/// Who else owns the thing, as the reason names it.
fn foreign_owner(observed: &Observed, principals: &[Principal]) -> Option<String> {
    let ours = observed
        .ca_certificate_id
        .as_deref()
        .map(str::to_ascii_lowercase);
    principals.iter().find_map(|p| {
        let theirs = p.ca_certificate_id.as_deref().map(str::to_ascii_lowercase);
        match (&p.certificate_id, theirs) {
            (Some(id), _) if id.eq_ignore_ascii_case(&observed.certificate_id) => None,
            (Some(_), Some(ca)) if Some(&ca) == ours.as_ref() => None,
            (Some(_), Some(ca)) => Some(format!("CA {ca}")),
            (Some(id), None) => Some(format!("certificate {id}, registered without a CA")),
            (None, _) => Some(format!("principal {}", p.arn)),
        }
    })
}
