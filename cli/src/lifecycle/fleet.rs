//! `jitr fleet status`: a CA's device certificates in AWS IoT sorted into
//! what needs a hand, each with the command that fixes it.

use std::collections::BTreeMap;

use jitr_core::iot::CertStatus;
use serde::Serialize;

/// One device certificate of the CA, as AWS IoT describes it.
#[derive(Debug, Clone)]
pub struct Cert {
    pub certificate_id: String,
    pub status: CertStatus,
    /// When AWS IoT registered it, seconds since the epoch.
    pub created: i64,
    /// Its notAfter (from its PEM), seconds since the epoch.
    pub not_after: Option<i64>,
    /// Its CN: the thing jitr's function names after it.
    pub thing: Option<String>,
}

/// Something that needs a hand, and the command that gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing: Option<String>,
    pub detail: String,
    pub fix: String,
}

/// The thresholds and how the fixes name the CA.
pub struct Window {
    pub now: i64,
    pub expiring_within_days: u32,
    pub pending_older_than_minutes: u32,
    /// The CA as the user named it (directory or id), for the fixes.
    pub ca: String,
}

/// The classified fleet.
#[derive(Debug, Serialize)]
pub struct Status {
    pub ca_certificate_id: String,
    pub certificates: usize,
    /// Certificates per status (ACTIVE, INACTIVE, REVOKED, PENDING_ACTIVATION, ...).
    pub by_status: BTreeMap<String, usize>,
    pub expiring: Vec<Finding>,
    pub pending: Vec<Finding>,
    pub things_without_certificates: Vec<Finding>,
}

/// Sorts `certs` into the report; `things` are the things named by their
/// CNs that exist, with how many principals each has.
pub fn classify(ca_id: &str, certs: &[Cert], things: &[(String, usize)], w: &Window) -> Status {
    let mut by_status = BTreeMap::new();
    for c in certs {
        *by_status.entry(c.status.to_string()).or_insert(0) += 1;
    }
    let horizon = w.now + i64::from(w.expiring_within_days) * 86_400;
    let rotate = |thing: &Option<String>| {
        format!(
            "jitr device rotate --ca {} --out OUTDIR --name {}",
            w.ca,
            thing.as_deref().unwrap_or("NAME")
        )
    };
    let expiring = certs
        .iter()
        .filter(|c| c.status == CertStatus::Active)
        .filter_map(|c| {
            let at = c.not_after?;
            (at <= horizon).then(|| Finding {
                certificate_id: Some(c.certificate_id.clone()),
                thing: c.thing.clone(),
                detail: if at <= w.now {
                    format!("expired {}", jitr_core::facts::rfc3339(at))
                } else {
                    format!(
                        "expires {} (in {} days)",
                        jitr_core::facts::rfc3339(at),
                        (at - w.now) / 86_400
                    )
                },
                fix: rotate(&c.thing),
            })
        })
        .collect();
    let stranded = w.now - i64::from(w.pending_older_than_minutes) * 60;
    let pending = certs
        .iter()
        .filter(|c| c.status == CertStatus::PendingActivation && c.created <= stranded)
        .map(|c| Finding {
            certificate_id: Some(c.certificate_id.clone()),
            thing: c.thing.clone(),
            detail: format!(
                "PENDING_ACTIVATION for {} minutes",
                (w.now - c.created).max(0) / 60
            ),
            fix: format!("jitr reconcile --ca {}", w.ca),
        })
        .collect();
    let things_without_certificates = things
        .iter()
        .filter(|(_, principals)| *principals == 0)
        .map(|(thing, _)| Finding {
            certificate_id: None,
            thing: Some(thing.clone()),
            detail: "thing has no certificate attached".into(),
            fix: format!(
                "{} (a new certificate), or jitr device revoke {thing} --ca {} --out OUTDIR --delete-thing (no device any more)",
                rotate(&Some(thing.clone())),
                w.ca
            ),
        })
        .collect();
    Status {
        ca_certificate_id: ca_id.to_string(),
        certificates: certs.len(),
        by_status,
        expiring,
        pending,
        things_without_certificates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_000 * DAY;

    fn cert(id: &str, status: &str, created: i64, not_after: i64) -> Cert {
        Cert {
            certificate_id: id.into(),
            status: status.into(),
            created,
            not_after: Some(not_after),
            thing: Some(format!("t-{id}")),
        }
    }

    #[test]
    fn the_fleet_is_sorted_into_what_needs_a_hand() {
        let certs = [
            cert("fine", "ACTIVE", NOW - DAY, NOW + 400 * DAY),
            cert("soon", "ACTIVE", NOW - DAY, NOW + 10 * DAY),
            cert("edge", "ACTIVE", NOW - DAY, NOW + 30 * DAY),
            cert("gone", "ACTIVE", NOW - DAY, NOW - DAY),
            // Revoked and inactive certificates need no rotation.
            cert("rev", "REVOKED", NOW - DAY, NOW + DAY),
            cert("off", "INACTIVE", NOW - DAY, NOW + DAY),
            cert("new", "PENDING_ACTIVATION", NOW - 60, NOW + 400 * DAY),
            cert("old", "PENDING_ACTIVATION", NOW - 3600, NOW + 400 * DAY),
        ];
        let things = [("t-fine".to_string(), 1), ("t-rev".to_string(), 0)];
        let w = Window {
            now: NOW,
            expiring_within_days: 30,
            pending_older_than_minutes: 10,
            ca: "my-ca".into(),
        };
        let s = classify("caid", &certs, &things, &w);
        assert_eq!(s.certificates, 8);
        let counts: Vec<(&str, usize)> =
            s.by_status.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            counts,
            [
                ("ACTIVE", 4),
                ("INACTIVE", 1),
                ("PENDING_ACTIVATION", 2),
                ("REVOKED", 1)
            ]
        );
        let ids = |f: &[Finding]| -> Vec<String> {
            f.iter().filter_map(|f| f.certificate_id.clone()).collect()
        };
        assert_eq!(ids(&s.expiring), ["soon", "edge", "gone"]);
        assert!(
            s.expiring[0].detail.contains("in 10 days"),
            "{:?}",
            s.expiring[0]
        );
        assert!(s.expiring[2].detail.starts_with("expired"));
        assert_eq!(
            s.expiring[0].fix,
            "jitr device rotate --ca my-ca --out OUTDIR --name t-soon"
        );
        assert_eq!(ids(&s.pending), ["old"]);
        assert_eq!(s.pending[0].fix, "jitr reconcile --ca my-ca");
        assert_eq!(s.pending[0].detail, "PENDING_ACTIVATION for 60 minutes");
        assert_eq!(s.things_without_certificates.len(), 1);
        let fix = &s.things_without_certificates[0].fix;
        assert!(
            fix.contains("--delete-thing")
                && fix.contains("jitr device revoke")
                && !fix.contains("aws iot"),
            "{fix}"
        );
        assert_eq!(
            s.things_without_certificates[0].thing.as_deref(),
            Some("t-rev")
        );
    }

    #[test]
    fn an_empty_fleet_has_nothing_to_fix() {
        let w = Window {
            now: NOW,
            expiring_within_days: 0,
            pending_older_than_minutes: 0,
            ca: "x".into(),
        };
        let s = classify("caid", &[], &[], &w);
        assert_eq!(s.certificates, 0);
        assert!(s.expiring.is_empty() && s.pending.is_empty());
        assert!(s.by_status.is_empty());
    }
}
