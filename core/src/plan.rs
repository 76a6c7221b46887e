//! The provisioning decision, without I/O: what AWS IoT said about a
//! certificate + the configuration -> activate, skip or reject.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::admission::Listing;
use crate::config::{Admission, Config, OnReject, OnRotation};
use crate::facts::CertFacts;
use crate::iot::CertStatus;
use crate::naming::{self, NameTemplate};
use crate::outcome::Kind;
// Re-exported at its old path for callers not yet moved to `outcome`.
use crate::rules;
use crate::verifier::Verdict;

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

/// Subject fields copied into thing attributes without
/// JITR_THING_ATTRIBUTES, in priority order: a thing without a thing type
/// may carry only three attributes.
const ATTRIBUTES: [(&str, &str); 5] = [
    ("serialNumber", "serialNumber"),
    ("O", "organization"),
    ("OU", "organizationalUnit"),
    ("C", "country"),
    ("dnQualifier", "dnQualifier"),
];

/// An attribute value AWS IoT accepts: `[a-zA-Z0-9_.,@/:#-]`, at most 800
/// characters; anything else becomes `_`.
fn attribute_value(value: &str) -> String {
    value
        .chars()
        .take(800)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
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
    let thing_name = checked_name(thing_name_of(observed, facts, config, listed_name)?, config)?;
    let attributes = attributes_of(observed, facts, config, entry)?;
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

/// The thing's attributes: the allow-list entry's win, key by key, over
/// JITR_THING_ATTRIBUTES' (a value it would render outside AWS's pattern
/// refuses the certificate, as a name outside the pattern does) or, without
/// it, over the subject's, which give way within the thing's limit.
fn attributes_of(
    observed: &Observed,
    facts: &CertFacts,
    config: &Config,
    entry: Option<&crate::admission::Entry>,
) -> Result<BTreeMap<String, String>, String> {
    let limit = naming::max_attributes(config.thing_type.is_some());
    let mut attributes = BTreeMap::new();
    for (name, value) in entry.iter().flat_map(|e| &e.attributes) {
        if !naming::is_attribute_name(name) {
            return Err(format!(
                "allow-list entry: attribute name \"{name}\" is not valid (1-128 of a-z A-Z 0-9 _ . , @ / : # -)"
            ));
        }
        attributes.insert(name.clone(), attribute_value(value));
    }
    if let Some(templates) = &config.thing_attributes {
        attributes = templates.render(facts, &observed.certificate_id, attributes)?;
    } else {
        let subject = ATTRIBUTES.iter().filter_map(|(field, attribute)| {
            facts
                .subject_attr(field)
                .map(|v| (attribute.to_string(), attribute_value(v)))
        });
        for (name, value) in subject {
            if attributes.len() >= limit {
                break;
            }
            attributes.entry(name).or_insert(value);
        }
    }
    if attributes.len() > limit {
        return Err(format!(
            "allow-list entry{}: {} attributes, more than the {limit} a thing {} may carry",
            if config.thing_attributes.is_some() {
                " with JITR_THING_ATTRIBUTES"
            } else {
                ""
            },
            attributes.len(),
            if config.thing_type.is_some() {
                "of a thing type"
            } else {
                "without a thing type"
            }
        ));
    }
    Ok(attributes)
}

/// The groups a new thing joins: the device group first (its policy is
/// what the device may do), then the configured ones, each once.
fn groups(config: &Config) -> Vec<String> {
    let mut groups: Vec<String> = config.device_group.iter().cloned().collect();
    for g in &config.thing_groups {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    groups
}

/// Whether the verifier hook is asked (see [`verified`]): when one is
/// configured, about activations only, i.e. certificates that passed the
/// function's own checks.
pub fn needs_verdict(config: &Config) -> bool {
    config.verifier_function.is_some()
}

/// The activation the function's own checks chose, as the verifier hook's
/// `verdict` (a fact: [`crate::verifier`]) leaves it. A refusal is a
/// rejection (REVOKED unless JITR_ON_REJECT=ignore) with the hook's reason.
/// An admission may choose the thing's name (held to
/// JITR_THING_NAME_PATTERN and AWS's rules), attributes (winning over the
/// function's, within the thing's limit) and groups (among
/// JITR_THING_GROUPS; the device group is always joined). Err: the hook was
/// not asked, or its answer breaks those rules: the hook's fault, not the
/// device's, so the record fails (it comes back), never admitted or revoked.
pub fn verified(
    activation: Activation,
    verdict: &Verdict,
    config: &Config,
) -> Result<Plan, String> {
    let choices = match verdict {
        Verdict::NotAsked if !needs_verdict(config) => return Ok(Plan::Activate(activation)),
        Verdict::NotAsked => return Err("the verifier hook was not asked".into()),
        Verdict::Reject(reason) => {
            let reason = Some(reason.trim())
                .filter(|r| !r.is_empty())
                .unwrap_or("(no reason given)");
            return Ok(Plan::Reject {
                reason: format!("rejected by the verifier hook: {reason}"),
                revoke: config.on_reject == OnReject::Revoke,
            });
        }
        Verdict::Admit(choices) => choices,
    };
    let mut a = activation;
    if let Some(name) = &choices.thing_name {
        a.thing_name = checked_name(name.clone(), config)?;
    }
    if let Some(chosen) = &choices.thing_groups {
        let configured =
            |g: &String| config.thing_groups.contains(g) || config.device_group.as_ref() == Some(g);
        if let Some(bad) = chosen.iter().find(|g| !configured(g)) {
            return Err(format!(
                "thing group \"{bad}\" is not one of JITR_THING_GROUPS ({})",
                if config.thing_groups.is_empty() {
                    "none configured".to_string()
                } else {
                    config.thing_groups.join(", ")
                }
            ));
        }
        a.thing_groups = config.device_group.iter().cloned().collect();
        for g in chosen {
            if !a.thing_groups.contains(g) {
                a.thing_groups.push(g.clone());
            }
        }
    }
    if !choices.attributes.is_empty() {
        let limit = naming::max_attributes(config.thing_type.is_some());
        if choices.attributes.len() > limit {
            return Err(format!(
                "{} attributes, more than the {limit} a thing {} may carry",
                choices.attributes.len(),
                if config.thing_type.is_some() {
                    "of a thing type"
                } else {
                    "without a thing type"
                }
            ));
        }
        let mut attributes = choices.attributes.clone();
        for (name, value) in &a.attributes {
            if attributes.len() >= limit {
                break;
            }
            attributes
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        a.attributes = attributes;
    }
    Ok(Plan::Activate(a))
}

/// The thing a certificate belongs to: the allow-list entry's name when it
/// has one, else by JITR_THING_NAME_TEMPLATE; unchecked.
fn thing_name_of(
    observed: &Observed,
    facts: &CertFacts,
    config: &Config,
    listed: Option<&str>,
) -> Result<String, String> {
    match listed {
        Some(name) => Ok(name.to_string()),
        None => named_by(&config.thing_name, facts, &observed.certificate_id),
    }
}

/// The thing a certificate names by JITR_THING_NAME_TEMPLATE, checked
/// against JITR_THING_NAME_PATTERN and AWS's rules.
fn thing_name(observed: &Observed, facts: &CertFacts, config: &Config) -> Result<String, String> {
    checked_name(thing_name_of(observed, facts, config, None)?, config)
}

/// `thing_name`, if JITR_THING_NAME_PATTERN and AWS's rules accept it.
fn checked_name(thing_name: String, config: &Config) -> Result<String, String> {
    if !config.thing_name_pattern.is_match(&thing_name) {
        return Err(format!(
            "thing name \"{thing_name}\" does not match JITR_THING_NAME_PATTERN {}",
            config.thing_name_pattern.as_str()
        ));
    }
    if !rules::is_thing_name(&thing_name) {
        return Err(format!(
            "\"{thing_name}\" is not a valid thing name (1-128 of a-z A-Z 0-9 : _ -)"
        ));
    }
    Ok(thing_name)
}

/// The thing name `template` gives a certificate (`certificate_id` is
/// its id), unchecked; `jitr connect` uses it too, so its client id is the
/// name the function gives the thing.
pub fn named_by(
    template: &NameTemplate,
    facts: &CertFacts,
    certificate_id: &str,
) -> Result<String, String> {
    template.render(facts, certificate_id)
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
    thing_name(observed, facts, config).ok()
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

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair};

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const CA: &str = "cafecafecafecafecafecafecafecafecafecafecafecafecafecafecafecafe";

    /// A device certificate with `subject` valid from `nb` to `na`, with key `key`.
    fn facts(subject: &[(DnType, &str)], window: (i64, i64), key: &KeyPair) -> CertFacts {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in subject {
            p.distinguished_name.push(t.clone(), *v);
        }
        p.not_before = time::OffsetDateTime::from_unix_timestamp(window.0).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(window.1).unwrap();
        CertFacts::from_der(p.self_signed(key).unwrap().der()).unwrap()
    }

    fn observed(status: &str, facts: CertFacts) -> Observed {
        Observed {
            certificate_id: "ab".repeat(32),
            certificate_arn: "arn".into(),
            status: status.into(),
            ca_certificate_id: Some(CA.into()),
            facts: Ok(facts),
            created_ms: Some(NOW * 1000),
        }
    }

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut vars: Vec<(String, String)> =
            vec![("JITR_POLICY_NAME".into(), "jitr-device".into())];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::from_lookup(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap()
    }

    /// The decision without the allow-list (JITR_ADMISSION=any).
    fn decide(observed: &Observed, config: &Config, now: i64) -> Plan {
        super::decide(observed, &Listing::NotAsked, config, now)
    }

    fn short(plan: &Plan) -> String {
        match plan {
            Plan::Activate(a) => format!("activate {}", a.thing_name),
            Plan::Skip { reason, .. } => format!("skip: {reason}"),
            Plan::Reject { reason, revoke } => {
                format!("{}: {reason}", if *revoke { "revoke" } else { "reject" })
            }
            Plan::FinishRotation { reason, retire, .. } => {
                format!("finish rotation: {reason}; retire {}", retire.join(", "))
            }
        }
    }

    #[test]
    fn decision_table() {
        let p256 = KeyPair::generate().unwrap();
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let ok = (NOW - 60, NOW + 60);
        let cn = |name: &'static str| vec![(DnType::CommonName, name)];
        let other_ca = "0".repeat(64);
        let by_id = format!("activate {}", "ab".repeat(32));
        let by_tpl = format!("activate dev:x_{}", "ab".repeat(32));
        #[rustfmt::skip]
        type Row<'a> = (&'a str, Vec<(DnType, &'a str)>, (i64, i64), &'a KeyPair, Vec<(&'a str, &'a str)>, &'a str);
        let table: Vec<Row> = vec![
            // status, subject, validity, key, config, expected
            ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![], "activate robot-1"),
            ("PENDING_ACTIVATION", cn("robot-1"), ok, &p384, vec![], "activate robot-1"),
            ("ACTIVE", cn("robot-1"), ok, &p256, vec![], "skip: already active"),
            ("REVOKED", cn("robot-1"), ok, &p256, vec![], "skip: revoked: never reactivated"),
            ("INACTIVE", cn("robot-1"), ok, &p256, vec![], "skip: inactive (retired by a rotation or by an administrator): left alone"),
            ("PENDING_TRANSFER", cn("robot-1"), ok, &p256, vec![], "skip: status PENDING_TRANSFER: not ours to change"),
            ("PENDING_ACTIVATION", cn("robot 1"), ok, &p256, vec![], "revoke: thing name \"robot 1\" does not match"),
            ("PENDING_ACTIVATION", vec![(DnType::OrganizationName, "Acme")], ok, &p256, vec![], "revoke: subject has no CN"),
            ("PENDING_ACTIVATION", cn("robot-1"), (NOW - 60, NOW - 1), &p256, vec![], "revoke: expired at"),
            // A factory clock ahead by less than JITR_CLOCK_SKEW_SECONDS (default 300) is admitted.
            ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 10, NOW + 600), &p256, vec![], "activate robot-1"),
            ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 300, NOW + 600), &p256, vec![], "activate robot-1"),
            ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 301, NOW + 600), &p256, vec![], "revoke: not valid before 2027-01-15T08:05:01Z (301 s from now, more than the 300 s"),
            ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 10, NOW + 600), &p256, vec![("JITR_CLOCK_SKEW_SECONDS", "0")], "revoke: not valid before"),
            ("PENDING_ACTIVATION", cn("robot-1"), (NOW + 900, NOW + 1800), &p256, vec![("JITR_CLOCK_SKEW_SECONDS", "1000")], "activate robot-1"),
            ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_ALLOWED_CA_IDS", &other_ca)], "revoke: CA cafecafe"),
            ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_ALLOWED_CA_IDS", CA)], "activate robot-1"),
            ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_THING_NAME_PATTERN", "sensor-[0-9]+")], "revoke: thing name \"robot-1\" does not match"),
            ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_ON_REJECT", "ignore"), ("JITR_THING_NAME_PATTERN", "x")], "reject: thing name"),
            ("PENDING_ACTIVATION", vec![(DnType::CommonName, "x"), (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-42")], ok, &p256,
                vec![("JITR_THING_NAME_SOURCE", "serial-number")], "activate SN-42"),
            ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_SOURCE", "serial-number")], "revoke: subject has no serialNumber"),
            ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_SOURCE", "certificate-id")], &by_id),
            // Naming templates (JITR_THING_NAME_TEMPLATE) over the subject's fields.
            ("PENDING_ACTIVATION", vec![(DnType::CommonName, "x"), (DnType::CustomDnType(vec![2, 5, 4, 5]), "42")], ok, &p256,
                vec![("JITR_THING_NAME_TEMPLATE", "robot-{serialNumber}")], "activate robot-42"),
            ("PENDING_ACTIVATION", vec![(DnType::CommonName, "robot-1"), (DnType::OrganizationName, "Acme")], ok, &p256,
                vec![("JITR_THING_NAME_TEMPLATE", "{O}-{CN}")], "activate Acme-robot-1"),
            ("PENDING_ACTIVATION", cn("robot-1"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "{O}-{CN}")], "revoke: subject has no O to name the thing"),
            ("PENDING_ACTIVATION", cn("robot 1"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "x-{CN}")], "revoke: thing name \"x-robot 1\" does not match"),
            ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "{certificateId}")], &by_id),
            ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_TEMPLATE", "dev:{CN}_{certificateId}")], &by_tpl),
            // The template wins over JITR_THING_NAME_SOURCE.
            ("PENDING_ACTIVATION", cn("x"), ok, &p256, vec![("JITR_THING_NAME_SOURCE", "certificate-id"), ("JITR_THING_NAME_TEMPLATE", "robot-{CN}")], "activate robot-x"),
        ];
        for (status, subject, window, key, vars, expected) in table {
            let plan = decide(
                &observed(status, facts(&subject, window, key)),
                &config(&vars),
                NOW,
            );
            assert!(
                short(&plan).starts_with(expected),
                "{status} {subject:?} {vars:?}: {plan:?}"
            );
        }
    }

    /// JITR_ADMISSION: the allow-list's answer (a fact) against the mode.
    #[test]
    fn allow_list_table() {
        let f = facts(
            &[
                (DnType::CommonName, "robot-1"),
                (DnType::OrganizationName, "Acme"),
            ],
            (NOW - 1, NOW + 1),
            &KeyPair::generate().unwrap(),
        );
        let entry = |name: Option<&str>, attributes: &[(&str, &str)]| {
            Listing::Listed(crate::admission::Entry {
                thing_name: name.map(str::to_string),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
        };
        let table = ("JITR_ALLOW_LIST_TABLE", "t");
        let allow = [("JITR_ADMISSION", "allow-list"), table];
        let allow_ignore = [
            ("JITR_ADMISSION", "allow-list"),
            table,
            ("JITR_ON_REJECT", "ignore"),
        ];
        let allow_pattern = [
            ("JITR_ADMISSION", "allow-list"),
            table,
            ("JITR_THING_NAME_PATTERN", "robot-[0-9]+"),
        ];
        #[rustfmt::skip]
        type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], Listing, &'a str);
        let table: Vec<Row> = vec![
            // status, config, what the list said, expected
            (
                "PENDING_ACTIVATION",
                &[],
                Listing::NotAsked,
                "activate robot-1",
            ),
            // Under `any` the list is not consulted, whatever it would say.
            (
                "PENDING_ACTIVATION",
                &[],
                Listing::NotListed,
                "activate robot-1",
            ),
            (
                "PENDING_ACTIVATION",
                &allow,
                Listing::NotListed,
                "revoke: not on the allow-list",
            ),
            (
                "PENDING_ACTIVATION",
                &allow_ignore,
                Listing::NotListed,
                "reject: not on the allow-list",
            ),
            // Not looked up under allow-list: never admitted.
            (
                "PENDING_ACTIVATION",
                &allow,
                Listing::NotAsked,
                "revoke: not on the allow-list",
            ),
            (
                "PENDING_ACTIVATION",
                &allow,
                entry(None, &[]),
                "activate robot-1",
            ),
            // The manifest's name wins over the subject's.
            (
                "PENDING_ACTIVATION",
                &allow,
                entry(Some("robot-7"), &[]),
                "activate robot-7",
            ),
            // ... and is held to the same rules.
            (
                "PENDING_ACTIVATION",
                &allow_pattern,
                entry(Some("sensor-7"), &[]),
                "revoke: thing name \"sensor-7\" does not match",
            ),
            (
                "PENDING_ACTIVATION",
                &allow,
                entry(Some("robot 7"), &[]),
                "revoke: thing name \"robot 7\" does not match",
            ),
            (
                "PENDING_ACTIVATION",
                &allow,
                entry(None, &[("batch", "A 1")]),
                "activate robot-1",
            ),
            (
                "PENDING_ACTIVATION",
                &allow,
                entry(None, &[("bad name", "x")]),
                "revoke: allow-list entry: attribute name \"bad name\"",
            ),
            (
                "PENDING_ACTIVATION",
                &allow,
                entry(None, &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]),
                "revoke: allow-list entry: 4 attributes, more than the 3",
            ),
            // Listed or not, other checks still apply; other statuses are not admissions.
            ("ACTIVE", &allow, Listing::NotAsked, "skip: already active"),
            ("REVOKED", &allow, Listing::NotAsked, "skip: revoked"),
        ];
        for (status, vars, listing, expected) in table {
            let o = observed(status, f.clone());
            let config = config(vars);
            assert_eq!(
                needs_listing(&o, &config),
                status == "PENDING_ACTIVATION" && vars.contains(&("JITR_ADMISSION", "allow-list")),
                "{status} {vars:?}"
            );
            let plan = super::decide(&o, &listing, &config, NOW);
            assert!(
                short(&plan).starts_with(expected),
                "{status} {vars:?} {listing:?}: {plan:?}"
            );
        }
        // The entry's attributes win over the subject's, within the limit.
        let listing = entry(None, &[("organization", "Other"), ("batch", "A 1")]);
        let Plan::Activate(a) = super::decide(
            &observed("PENDING_ACTIVATION", f),
            &listing,
            &config(&allow),
            NOW,
        ) else {
            panic!()
        };
        assert_eq!(a.attributes["organization"], "Other");
        assert_eq!(a.attributes["batch"], "A_1");
        assert_eq!(a.attributes.len(), 2);
    }

    /// The verifier hook's verdict (a fact) on an activation the function's
    /// own checks chose: a refusal is a rejection with its reason; an
    /// admission's choices are held to the function's rules, and an answer
    /// breaking them (or no answer) is Err: the record fails.
    #[test]
    fn verifier_table() {
        use crate::verifier::{Choices, Verdict};
        let f = facts(
            &[
                (DnType::CommonName, "robot-1"),
                (DnType::OrganizationName, "Acme"),
            ],
            (NOW - 1, NOW + 1),
            &KeyPair::generate().unwrap(),
        );
        const HOOK: (&str, &str) = (
            "JITR_VERIFIER_FUNCTION",
            "arn:aws:lambda:eu-west-1:123456789012:function:verify",
        );
        let groups = [
            HOOK,
            ("JITR_DEVICE_GROUP", "jitr-devices"),
            ("JITR_THING_GROUPS", "fleet,line-4"),
        ];
        let pattern = [HOOK, ("JITR_THING_NAME_PATTERN", "robot-[0-9]+")];
        let ignore = [HOOK, ("JITR_ON_REJECT", "ignore")];
        let admit = |name: Option<&str>, attributes: &[(&str, &str)], groups: Option<&[&str]>| {
            Verdict::Admit(Choices {
                thing_name: name.map(str::to_string),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                thing_groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
            })
        };
        let long = "r".repeat(129);
        let four = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
        #[rustfmt::skip]
        type Row<'a> = (&'a [(&'a str, &'a str)], Verdict, Result<&'a str, &'a str>);
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            // config, the hook's verdict, expected (Err: the record fails)
            (&[], Verdict::NotAsked, Ok("activate robot-1 [] {organization=Acme}")),
            (&[HOOK], Verdict::NotAsked, Err("the verifier hook was not asked")),
            (&[HOOK], Verdict::Reject("not in the asset library".into()), Ok("revoke: rejected by the verifier hook: not in the asset library")),
            (&ignore, Verdict::Reject("not in the asset library".into()), Ok("reject: rejected by the verifier hook: not in the asset library")),
            (&[HOOK], Verdict::Reject(" ".into()), Ok("revoke: rejected by the verifier hook: (no reason given)")),
            (&[HOOK], admit(None, &[], None), Ok("activate robot-1 [] {organization=Acme}")),
            (&[HOOK], admit(Some("line4-robot-1"), &[], None), Ok("activate line4-robot-1 [] {organization=Acme}")),
            // The hook's name is held to the pattern and AWS's rules.
            (&[HOOK], admit(Some("robot 1"), &[], None), Err("thing name \"robot 1\" does not match JITR_THING_NAME_PATTERN")),
            (&pattern, admit(Some("sensor-1"), &[], None), Err("thing name \"sensor-1\" does not match JITR_THING_NAME_PATTERN ^(?:robot-[0-9]+)$")),
            (&pattern, admit(Some("robot-7"), &[], None), Ok("activate robot-7 [] {organization=Acme}")),
            (&[HOOK, ("JITR_THING_NAME_PATTERN", ".*")], admit(Some(long.as_str()), &[], None), Err("is not a valid thing name (1-128 of a-z A-Z 0-9 : _ -)")),
            (&[HOOK, ("JITR_THING_NAME_PATTERN", ".*")], admit(Some(""), &[], None), Err("\"\" is not a valid thing name")),
            // Groups: among the configured ones; the device group always, first.
            (&groups, admit(None, &[], None), Ok("activate robot-1 [jitr-devices,fleet,line-4] {organization=Acme}")),
            (&groups, admit(None, &[], Some(&["line-4"])), Ok("activate robot-1 [jitr-devices,line-4] {organization=Acme}")),
            (&groups, admit(None, &[], Some(&[])), Ok("activate robot-1 [jitr-devices] {organization=Acme}")),
            (&groups, admit(None, &[], Some(&["jitr-devices", "fleet", "fleet"])), Ok("activate robot-1 [jitr-devices,fleet] {organization=Acme}")),
            (&groups, admit(None, &[], Some(&["other"])), Err("thing group \"other\" is not one of JITR_THING_GROUPS (fleet, line-4)")),
            (&[HOOK], admit(None, &[], Some(&["fleet"])), Err("thing group \"fleet\" is not one of JITR_THING_GROUPS (none configured)")),
            // Attributes: the hook's win, the function's fill up to the limit.
            (&[HOOK], admit(None, &[("organization", "Other"), ("batch", "B7")], None), Ok("activate robot-1 [] {batch=B7,organization=Other}")),
            (&[HOOK], admit(None, &[("a", "1"), ("b", "2"), ("c", "3")], None), Ok("activate robot-1 [] {a=1,b=2,c=3}")),
            (&[HOOK], admit(None, &four, None), Err("4 attributes, more than the 3 a thing without a thing type may carry")),
            (&[HOOK, ("JITR_THING_TYPE", "robot")], admit(None, &four, None), Ok("activate robot-1 [] {a=1,b=2,c=3,d=4,organization=Acme}")),
        ];
        let shown = |plan: &Plan| match plan {
            Plan::Activate(a) => format!(
                "activate {} [{}] {{{}}}",
                a.thing_name,
                a.thing_groups.join(","),
                a.attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => short(other),
        };
        for (vars, verdict, expected) in table {
            let config = config(vars);
            assert_eq!(needs_verdict(&config), vars.contains(&HOOK), "{vars:?}");
            let o = observed("PENDING_ACTIVATION", f.clone());
            let Plan::Activate(a) = decide(&o, &config, NOW) else {
                panic!("{vars:?}: the function's own checks admit it")
            };
            match (verified(a, &verdict, &config), expected) {
                (Ok(plan), Ok(want)) => assert_eq!(shown(&plan), want, "{vars:?} {verdict:?}"),
                (Err(e), Err(want)) => assert!(e.contains(want), "{vars:?} {verdict:?}: {e}"),
                (got, want) => panic!("{vars:?} {verdict:?}: {got:?}, expected {want:?}"),
            }
        }
    }

    /// Every outcome the decision alone reaches, named by the plan (not
    /// worked out by the caller from the status).
    #[test]
    fn the_plan_names_its_outcome() {
        let f = facts(
            &[(DnType::CommonName, "robot-1")],
            (NOW - 1, NOW + 1),
            &KeyPair::generate().unwrap(),
        );
        for (status, expected) in [
            ("ACTIVE", Kind::AlreadyActive),
            ("INACTIVE", Kind::Inactive),
            ("REVOKED", Kind::Skipped),
            ("PENDING_TRANSFER", Kind::Skipped),
        ] {
            let plan = decide(&observed(status, f.clone()), &config(&[]), NOW);
            let Plan::Skip { outcome, .. } = plan else {
                panic!("{status}: {plan:?}")
            };
            assert_eq!(outcome, expected, "{status}");
        }
        // AWS holds something we cannot parse: refused like any bad certificate.
        let mut garbage = observed("PENDING_ACTIVATION", f);
        garbage.facts = Err("not a DER X.509 certificate: junk".into());
        let plan = decide(&garbage, &config(&[]), NOW);
        assert_eq!(
            short(&plan),
            "revoke: certificate cannot be parsed: not a DER X.509 certificate: junk"
        );
        let plan = decide(&garbage, &config(&[("JITR_ON_REJECT", "ignore")]), NOW);
        assert!(short(&plan).starts_with("reject: certificate cannot be parsed"));
    }

    /// Metric names are a wire format: these strings never change.
    #[test]
    fn outcome_names_are_pinned() {
        let names: Vec<&str> = [
            Kind::Activated,
            Kind::AlreadyActive,
            Kind::Skipped,
            Kind::Inactive,
            Kind::Superseded,
            Kind::Rejected,
            Kind::Failed,
            Kind::Unfinished,
            Kind::Duplicate,
            Kind::ClaimedElsewhere,
            Kind::Deferred,
        ]
        .into_iter()
        .map(Kind::name)
        .collect();
        assert_eq!(
            names,
            [
                "Activated",
                "AlreadyActive",
                "Skipped",
                "Inactive",
                "Superseded",
                "Rejected",
                "Failed",
                "Unfinished",
                "Duplicate",
                "ClaimedElsewhere",
                "Deferred"
            ]
        );
        // The JSON response spells them the same way.
        assert_eq!(
            serde_json::to_value(Kind::AlreadyActive).unwrap(),
            "AlreadyActive"
        );
    }

    #[test]
    fn weak_keys_are_rejected() {
        // rcgen cannot make RSA-1024; the rule is shared with `jitr check`.
        let mut f = facts(
            &[(DnType::CommonName, "robot-1")],
            (NOW - 1, NOW + 1),
            &KeyPair::generate().unwrap(),
        );
        f.key = crate::facts::KeyKind::Rsa { bits: 1024 };
        let plan = decide(&observed("PENDING_ACTIVATION", f), &config(&[]), NOW);
        assert!(short(&plan).contains("RSA key of 1024 bits"), "{plan:?}");
    }

    /// JITR_THING_ATTRIBUTES per certificate, with and without an
    /// allow-list entry: the attributes the thing gets, or the rejection.
    /// A value AWS IoT would refuse rejects the certificate (REVOKED by
    /// default), as a name outside the pattern does: the certificate never
    /// changes, so failing (and retrying) could never succeed.
    #[test]
    fn thing_attributes_from_templates_and_entries() {
        let key = KeyPair::generate().unwrap();
        let acme = facts(
            &[
                (DnType::CommonName, "robot-1"),
                (DnType::OrganizationName, "Acme"),
                (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-1"),
            ],
            (NOW - 1, NOW + 1),
            &key,
        );
        let spaced = facts(
            &[
                (DnType::CommonName, "robot-2"),
                (DnType::OrganizationName, "Acme Inc"),
            ],
            (NOW - 1, NOW + 1),
            &key,
        );
        let bare = facts(&[(DnType::CommonName, "robot-3")], (NOW - 1, NOW + 1), &key);
        let id = "ab".repeat(32);
        let id = id.as_str();
        let entry = |attributes: &[(&str, &str)]| {
            Listing::Listed(crate::admission::Entry {
                thing_name: None,
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            })
        };
        let templated = [("JITR_THING_ATTRIBUTES", "model={O},cert={certificateId}")];
        let listed = [
            ("JITR_THING_ATTRIBUTES", "model={O},cert={certificateId}"),
            ("JITR_ADMISSION", "allow-list"),
            ("JITR_ALLOW_LIST_TABLE", "t"),
        ];
        let listed_ignore = [
            ("JITR_THING_ATTRIBUTES", "model={O},cert={certificateId}"),
            ("JITR_ADMISSION", "allow-list"),
            ("JITR_ALLOW_LIST_TABLE", "t"),
            ("JITR_ON_REJECT", "ignore"),
        ];
        let listed_typed = [
            ("JITR_ADMISSION", "allow-list"),
            ("JITR_ALLOW_LIST_TABLE", "t"),
            ("JITR_THING_TYPE", "robot"),
        ];
        let six: Vec<(String, String)> =
            (1..=6).map(|i| (format!("a{i}"), i.to_string())).collect();
        let six: Vec<(&str, &str)> = six.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        #[rustfmt::skip]
        type Row<'a> = (&'a [(&'a str, &'a str)], &'a CertFacts, Listing, Result<Vec<(&'a str, &'a str)>, &'a str>);
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            // The templates replace the subject's defaults (no serialNumber, organization).
            (&templated, &acme, Listing::NotAsked, Ok(vec![("cert", id), ("model", "Acme")])),
            // A value AWS refuses, a missing field: rejected like a bad name.
            (&templated, &spaced, Listing::NotAsked,
                Err("revoke: attribute model: \"Acme Inc\" has ' ', which AWS IoT refuses")),
            (&templated, &bare, Listing::NotAsked, Err("revoke: subject has no O for attribute model")),
            (&listed_ignore, &spaced, entry(&[]), Err("reject: attribute model: \"Acme Inc\"")),
            // The entry wins key by key; a key it gives is not rendered.
            (&listed, &acme, entry(&[("model", "M-7")]), Ok(vec![("cert", id), ("model", "M-7")])),
            (&listed, &spaced, entry(&[("model", "M-7")]), Ok(vec![("cert", id), ("model", "M-7")])),
            (&listed, &bare, entry(&[("model", "M-7"), ("batch", "B1")]),
                Ok(vec![("batch", "B1"), ("cert", id), ("model", "M-7")])),
            (&listed, &acme, entry(&[("a", "1"), ("b", "2")]),
                Err("revoke: allow-list entry with JITR_THING_ATTRIBUTES: 4 attributes, more than the 3 a thing without a thing type may carry")),
            // With a thing type, AWS's 50.
            (&listed_typed, &acme, entry(&six),
                Ok([six.clone(), vec![("organization", "Acme"), ("serialNumber", "SN-1")]].concat())),
        ];
        for (vars, f, listing, expected) in table {
            let plan = super::decide(
                &observed("PENDING_ACTIVATION", f.clone()),
                &listing,
                &config(vars),
                NOW,
            );
            match (&plan, expected) {
                (Plan::Activate(a), Ok(want)) => {
                    let want: BTreeMap<String, String> = want
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    assert_eq!(a.attributes, want, "{vars:?} {listing:?}");
                }
                (_, Err(reason)) => assert!(
                    short(&plan).starts_with(reason),
                    "{vars:?} {listing:?}: {plan:?}"
                ),
                (plan, _) => panic!("{vars:?} {listing:?}: {plan:?}"),
            }
        }
    }

    #[test]
    fn attributes_come_from_the_subject_within_aws_limits() {
        let key = KeyPair::generate().unwrap();
        let subject = vec![
            (DnType::CommonName, "robot-1"),
            (DnType::OrganizationName, "Acme, Inc."),
            (DnType::OrganizationalUnitName, "Line 4"),
            (DnType::CountryName, "DE"),
            (DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-1"),
        ];
        let f = facts(&subject, (NOW - 1, NOW + 1), &key);
        let Plan::Activate(a) = decide(
            &observed("PENDING_ACTIVATION", f.clone()),
            &config(&[]),
            NOW,
        ) else {
            panic!()
        };
        // Without a thing type: three attributes, serialNumber first; values made acceptable.
        assert_eq!(a.attributes.len(), 3);
        assert_eq!(a.attributes["serialNumber"], "SN-1");
        assert_eq!(a.attributes["organization"], "Acme,_Inc.");
        assert_eq!(a.attributes["organizationalUnit"], "Line_4");
        // Without a device group the certificate gets the policy itself.
        assert_eq!(a.policy_name.as_deref(), Some("jitr-device"));
        assert!(a.thing_groups.is_empty());
        let Plan::Activate(a) = decide(
            &observed("PENDING_ACTIVATION", f),
            &config(&[("JITR_THING_TYPE", "robot"), ("JITR_THING_GROUPS", "g1,g2")]),
            NOW,
        ) else {
            panic!()
        };
        assert_eq!(a.attributes.len(), 4);
        assert_eq!(a.attributes["country"], "DE");
        assert_eq!(a.thing_type.as_deref(), Some("robot"));
        assert_eq!(a.thing_groups, ["g1", "g2"]);
    }

    /// With a device group (the templates), the thing joins it, first and
    /// once, and no policy is attached to the certificate: the function's
    /// role holds no iot:AttachPolicy.
    #[test]
    fn a_device_group_replaces_the_policy_attachment() {
        let f = facts(
            &[(DnType::CommonName, "robot-1")],
            (NOW - 1, NOW + 1),
            &KeyPair::generate().unwrap(),
        );
        for (groups, expected) in [
            ("", vec!["jitr-devices"]),
            ("fleet,line-4", vec!["jitr-devices", "fleet", "line-4"]),
            ("fleet,jitr-devices", vec!["jitr-devices", "fleet"]),
        ] {
            let config = config(&[
                ("JITR_DEVICE_GROUP", "jitr-devices"),
                ("JITR_THING_GROUPS", groups),
            ]);
            let Plan::Activate(a) =
                decide(&observed("PENDING_ACTIVATION", f.clone()), &config, NOW)
            else {
                panic!()
            };
            assert_eq!(a.thing_groups, expected, "{groups}");
            assert_eq!(a.policy_name, None, "{groups}");
            let json = serde_json::to_value(Plan::Activate(a)).unwrap();
            assert!(json.get("policy_name").is_none(), "{json}");
        }
    }

    #[test]
    fn a_thing_takes_only_certificates_of_its_ca() {
        let key = KeyPair::generate().unwrap();
        let f = facts(&[(DnType::CommonName, "robot-1")], (NOW - 1, NOW + 1), &key);
        let ours = observed("PENDING_ACTIVATION", f);
        let other_ca = "0".repeat(64);
        let (mine, theirs, own) = (
            "c1".repeat(32),
            "c2".repeat(32),
            ours.certificate_id.clone(),
        );
        let cert = |id: &str, ca: Option<&str>| Principal {
            arn: format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
            certificate_id: Some(id.to_string()),
            ca_certificate_id: ca.map(str::to_string),
            status: Some("ACTIVE".into()),
            created_ms: Some(NOW * 1000 - 1),
        };
        let cognito = Principal {
            arn: "eu-west-1:1234-abcd".into(),
            certificate_id: None,
            ca_certificate_id: None,
            status: None,
            created_ms: None,
        };
        let upper = CA.to_uppercase();
        #[rustfmt::skip]
        // principals, config, expected
        type Row<'a> = (Vec<Principal>, Vec<(&'a str, &'a str)>, String);
        let table: Vec<Row> = vec![
            // principals already on the thing, config, expected
            (vec![], vec![], "activate robot-1".into()),
            (vec![cert(&mine, Some(CA))], vec![], "activate robot-1".into()),
            (vec![cert(&mine, Some(&upper))], vec![], "activate robot-1".into()),
            // This very certificate, attached by an interrupted earlier attempt.
            (vec![cert(&own, Some(CA))], vec![], "activate robot-1".into()),
            (vec![cert(&theirs, Some(&other_ca))], vec![], format!("revoke: thing robot-1 belongs to CA {other_ca}")),
            (vec![cert(&mine, Some(CA)), cert(&theirs, Some(&other_ca))], vec![], format!("revoke: thing robot-1 belongs to CA {other_ca}")),
            (vec![cert(&theirs, Some(&other_ca))], vec![("JITR_ON_REJECT", "ignore")], format!("reject: thing robot-1 belongs to CA {other_ca}")),
            (vec![cert(&theirs, None)], vec![], format!("revoke: thing robot-1 belongs to certificate {theirs}, registered without a CA")),
            (vec![cognito], vec![], "revoke: thing robot-1 belongs to principal eu-west-1:1234-abcd".into()),
        ];
        for (principals, vars, expected) in table {
            let config = config(&vars);
            let Plan::Activate(a) = decide(&ours, &config, NOW) else {
                panic!()
            };
            let plan = may_take(&ours, a, &principals, &config);
            assert_eq!(short(&plan), expected, "{principals:?} {vars:?}");
        }
        // A certificate without a CA never joins a thing that has certificates.
        let mut no_ca = ours.clone();
        no_ca.ca_certificate_id = None;
        let Plan::Activate(a) = decide(&no_ca, &config(&[]), NOW) else {
            panic!()
        };
        let plan = may_take(&no_ca, a, &[cert(&mine, Some(CA))], &config(&[]));
        assert_eq!(
            short(&plan),
            format!("revoke: thing robot-1 belongs to CA {CA}")
        );
    }

    /// A thing's certificate of CA `ca`, in `status`, registered at `created` ms.
    fn principal(id: &str, ca: &str, status: &str, created: Option<i64>) -> Principal {
        Principal {
            arn: format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
            certificate_id: Some(id.to_string()),
            ca_certificate_id: Some(ca.to_string()),
            status: Some(status.into()),
            created_ms: created,
        }
    }

    /// A certificate of robot-1 registered at `created` ms, in `status`.
    fn robot(status: &str, created: Option<i64>) -> Observed {
        let f = facts(
            &[(DnType::CommonName, "robot-1")],
            (NOW - 1, NOW + 1),
            &KeyPair::generate().unwrap(),
        );
        let mut o = observed(status, f);
        o.created_ms = created;
        o
    }

    /// The rotation decision for a new (pending) certificate registered at
    /// T, against the thing's other certificates.
    #[test]
    fn rotation_table() {
        const T: i64 = NOW * 1000;
        let (old, older, newer) = ("01".repeat(32), "02".repeat(32), "03".repeat(32));
        let own = "ab".repeat(32);
        let other_ca = "0".repeat(64);
        let retire =
            |ids: &[&String]| Rotation::Retire(ids.iter().map(|s| s.to_string()).collect());
        #[rustfmt::skip]
        let table: Vec<(OnRotation, Vec<Principal>, Rotation)> = vec![
            // on_rotation, the thing's certificates, expected
            (OnRotation::Keep, vec![principal(&old, CA, "ACTIVE", Some(T - 5))], retire(&[])),
            (OnRotation::RetirePrevious, vec![], retire(&[])),
            (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T - 5))], retire(&[&old])),
            // Upper-case CA ids are the same CA.
            (OnRotation::RetirePrevious, vec![principal(&old, &CA.to_uppercase(), "ACTIVE", Some(T - 5))], retire(&[&old])),
            (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T - 5)), principal(&older, CA, "ACTIVE", Some(T - 9))], retire(&[&old, &older])),
            // Only ACTIVE ones are retired: INACTIVE, REVOKED and pending ones are left alone.
            (OnRotation::RetirePrevious, vec![principal(&old, CA, "INACTIVE", Some(T - 5)), principal(&older, CA, "REVOKED", Some(T - 9))], retire(&[])),
            (OnRotation::RetirePrevious, vec![principal(&old, CA, "PENDING_ACTIVATION", Some(T - 5))], retire(&[])),
            // This very certificate (attached by an interrupted attempt) is never retired.
            (OnRotation::RetirePrevious, vec![principal(&own, CA, "ACTIVE", Some(T))], retire(&[])),
            // Another CA's certificate is not ours to retire (may_take refuses such a thing anyway).
            (OnRotation::RetirePrevious, vec![principal(&old, &other_ca, "ACTIVE", Some(T - 5))], retire(&[])),
            // Registered later and ACTIVE: this one is the predecessor (a replayed old event).
            (OnRotation::RetirePrevious, vec![principal(&newer, CA, "ACTIVE", Some(T + 5))], Rotation::SupersededBy(newer.clone())),
            (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T - 5)), principal(&newer, CA, "ACTIVE", Some(T + 5))], Rotation::SupersededBy(newer.clone())),
            // Registered later but not ACTIVE: no successor yet.
            (OnRotation::RetirePrevious, vec![principal(&newer, CA, "PENDING_ACTIVATION", Some(T + 5))], retire(&[])),
            // Order unknown or equal: neither retires the other.
            (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", Some(T))], retire(&[])),
            (OnRotation::RetirePrevious, vec![principal(&old, CA, "ACTIVE", None)], retire(&[])),
        ];
        let ours = robot("PENDING_ACTIVATION", Some(T));
        for (on_rotation, principals, expected) in table {
            assert_eq!(
                rotation(&ours, &principals, on_rotation),
                expected,
                "{on_rotation:?} {principals:?}"
            );
        }
        let mut unknown = ours.clone();
        unknown.created_ms = None;
        let principals = [principal(&old, CA, "ACTIVE", Some(T - 5))];
        assert_eq!(
            rotation(&unknown, &principals, OnRotation::RetirePrevious),
            retire(&[])
        );
    }

    /// The whole decision for each event a rotation produces, replayed:
    /// old certificate A (registered at T) and its successor B (T + 5 s).
    #[test]
    fn a_rotation_replayed_changes_nothing_twice() {
        const T: i64 = NOW * 1000;
        let (a, b) = ("0a".repeat(32), "0b".repeat(32));
        let retire = config(&[("JITR_ON_ROTATION", "retire-previous")]);
        let keep = config(&[]);
        let event = |id: &str, status: &str, created: i64| {
            let mut o = robot(status, Some(created));
            o.certificate_id = id.to_string();
            o
        };
        // B's first event, A ACTIVE on the thing: B activates and retires A.
        let b_pending = event(&b, "PENDING_ACTIVATION", T + 5000);
        let before = [principal(&a, CA, "ACTIVE", Some(T))];
        let Plan::Activate(activation) = decide(&b_pending, &retire, NOW) else {
            panic!()
        };
        let Plan::Activate(planned) = may_take(&b_pending, activation.clone(), &before, &retire)
        else {
            panic!()
        };
        assert_eq!(planned.retire, std::slice::from_ref(&a));
        // Under keep, B joins A.
        let Plan::Activate(kept) = may_take(&b_pending, activation, &before, &keep) else {
            panic!()
        };
        assert!(kept.retire.is_empty());

        // After: A INACTIVE, B ACTIVE, both attached.
        let after = [
            principal(&a, CA, "INACTIVE", Some(T)),
            principal(&b, CA, "ACTIVE", Some(T + 5000)),
        ];
        // B replayed: already active, nothing left to retire.
        let b_active = event(&b, "ACTIVE", T + 5000);
        let plan = decide(&b_active, &retire, NOW);
        assert!(
            matches!(
                plan,
                Plan::Skip {
                    outcome: Kind::AlreadyActive,
                    ..
                }
            ),
            "{plan:?}"
        );
        assert_eq!(
            rotation_thing(&b_active, &retire).as_deref(),
            Some("robot-1")
        );
        assert!(still_to_retire(&b_active, &after, &retire).is_empty());
        // A replayed: INACTIVE is a no-op with its own name, never reactivated.
        let a_inactive = event(&a, "INACTIVE", T);
        let plan = decide(&a_inactive, &retire, NOW);
        assert!(
            matches!(
                plan,
                Plan::Skip {
                    outcome: Kind::Inactive,
                    ..
                }
            ),
            "{plan:?}"
        );
        assert_eq!(rotation_thing(&a_inactive, &retire), None);

        // Interrupted after B's activation (A still ACTIVE): B's retried
        // event finishes the rotation; A's event, were A still ACTIVE,
        // never retires B.
        let interrupted = [
            principal(&a, CA, "ACTIVE", Some(T)),
            principal(&b, CA, "ACTIVE", Some(T + 5000)),
        ];
        assert_eq!(
            still_to_retire(&b_active, &interrupted, &retire),
            std::slice::from_ref(&a)
        );
        let a_active = event(&a, "ACTIVE", T);
        assert!(still_to_retire(&a_active, &interrupted, &retire).is_empty());
        // Under keep, an ACTIVE certificate's event looks at nothing.
        assert_eq!(rotation_thing(&b_active, &keep), None);
        // An ACTIVE certificate not attached to the thing its name gives retires nothing.
        let stranger = event(&"0c".repeat(32), "ACTIVE", T + 9000);
        assert!(still_to_retire(&stranger, &interrupted, &retire).is_empty());

        // A's first event arriving late (A still pending, B ACTIVE): A is
        // superseded, left pending, and B stays.
        let a_pending = event(&a, "PENDING_ACTIVATION", T);
        let Plan::Activate(activation) = decide(&a_pending, &retire, NOW) else {
            panic!()
        };
        let plan = may_take(
            &a_pending,
            activation,
            &[principal(&b, CA, "ACTIVE", Some(T + 5000))],
            &retire,
        );
        let Plan::Skip {
            outcome, reason, ..
        } = plan
        else {
            panic!("{plan:?}")
        };
        assert_eq!(outcome, Kind::Superseded);
        assert!(reason.contains(&b), "{reason}");
    }

    /// A rotation cut short (both ACTIVE on the thing): the successor's
    /// event plans the retirement; with nothing left to retire it is a skip.
    #[test]
    fn finishing_a_rotation_is_a_plan_of_its_own() {
        const T: i64 = NOW * 1000;
        let (a, b) = ("0a".repeat(32), "0b".repeat(32));
        let retire = config(&[("JITR_ON_ROTATION", "retire-previous")]);
        let mut b_active = robot("ACTIVE", Some(T + 5000));
        b_active.certificate_id = b.clone();
        let skip = decide(&b_active, &retire, NOW);
        let interrupted = [
            principal(&a, CA, "ACTIVE", Some(T)),
            principal(&b, CA, "ACTIVE", Some(T + 5000)),
        ];
        let plan = finish_rotation(
            skip.clone(),
            &b_active,
            "robot-1".into(),
            &interrupted,
            &retire,
        );
        assert_eq!(
            short(&plan),
            format!("finish rotation: already active; retire {a}")
        );
        let done = [
            principal(&a, CA, "INACTIVE", Some(T)),
            principal(&b, CA, "ACTIVE", Some(T + 5000)),
        ];
        let plan = finish_rotation(skip.clone(), &b_active, "robot-1".into(), &done, &retire);
        assert_eq!(plan, skip);
    }

    #[test]
    fn certificate_ids_are_read_from_arns() {
        let id = "ab".repeat(32);
        for (arn, expected) in [
            (
                format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"),
                Some(id.as_str()),
            ),
            (
                "arn:aws:iot:eu-west-1:123456789012:cert/xyz".to_string(),
                None,
            ),
            ("eu-west-1:1234-abcd".to_string(), None),
        ] {
            assert_eq!(certificate_id_of(&arn), expected, "{arn}");
        }
    }
}
