//! What `jitr device revoke` does to one certificate, decided from what AWS
//! IoT holds: set it REVOKED (unless it is), detach its policies and its
//! things, and with `--delete-thing` delete each thing left without
//! principals. A second run finds nothing to change: "already revoked".

use jitr_core::iot::CertStatus;
use serde::Serialize;

/// How a command-line item names a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A certificate file (PEM or DER; the first certificate counts).
    File,
    /// A certificate id: 64 hex digits.
    Id,
    /// A device name in `--out OUTDIR`.
    Name,
}

/// Classifies an item: an existing file first (a file may be named like an
/// id), then an id, else a device name.
pub fn target(item: &str, is_file: bool) -> Target {
    if is_file {
        Target::File
    } else if jitr_core::rules::is_certificate_id(item) {
        Target::Id
    } else {
        Target::Name
    }
}

/// A certificate as AWS IoT holds it, and the things it may leave empty.
#[derive(Debug, Clone)]
pub struct Found {
    pub status: CertStatus,
    pub arn: String,
    /// Things the certificate is attached to.
    pub things: Vec<String>,
    pub policies: Vec<String>,
    /// With `--delete-thing`: each candidate thing (its attached things and
    /// the thing named by its CN) that exists, with its principals.
    pub thing_principals: Vec<(String, Vec<String>)>,
}

/// The changes for one certificate, in the order they are made.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub set_revoked: bool,
    pub detach_policies: Vec<String>,
    pub detach_things: Vec<String>,
    /// Things that have no principal left once this certificate is detached.
    pub delete_things: Vec<String>,
    /// Things kept because other principals remain (name, how many).
    pub kept_things: Vec<(String, usize)>,
}

impl Plan {
    /// Whether the certificate is already revoked and detached.
    pub fn changes_nothing(&self) -> bool {
        !self.set_revoked
            && self.detach_policies.is_empty()
            && self.detach_things.is_empty()
            && self.delete_things.is_empty()
    }
}

/// Decides the changes for a certificate AWS IoT holds as `found`.
pub fn plan(found: &Found, delete_thing: bool) -> Plan {
    let mut plan = Plan {
        set_revoked: found.status != CertStatus::Revoked,
        detach_policies: found.policies.clone(),
        detach_things: found.things.clone(),
        ..Plan::default()
    };
    if delete_thing {
        for (thing, principals) in &found.thing_principals {
            let others = principals.iter().filter(|p| **p != found.arn).count();
            if others == 0 {
                plan.delete_things.push(thing.clone());
            } else {
                plan.kept_things.push((thing.clone(), others));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_files_ids_or_names() {
        let id = "ab".repeat(32);
        let cases = [
            ("robot-1", false, Target::Name),
            (id.as_str(), false, Target::Id),
            (id.as_str(), true, Target::File),
            ("robot-1/device.crt", true, Target::File),
            ("abc", false, Target::Name),
        ];
        for (item, is_file, expected) in cases {
            assert_eq!(target(item, is_file), expected, "{item} {is_file}");
        }
    }

    #[test]
    fn revoking_changes_only_what_is_left_to_change() {
        let arn = "arn:cert/1".to_string();
        let found =
            |status: &str, things: &[&str], policies: &[&str], tp: &[(&str, &[&str])]| Found {
                status: status.into(),
                arn: arn.clone(),
                things: things.iter().map(|s| s.to_string()).collect(),
                policies: policies.iter().map(|s| s.to_string()).collect(),
                thing_principals: tp
                    .iter()
                    .map(|(t, p)| (t.to_string(), p.iter().map(|s| s.to_string()).collect()))
                    .collect(),
            };
        // An active, attached certificate: everything, the thing deleted when asked.
        let f = found("ACTIVE", &["t"], &["p"], &[("t", &["arn:cert/1"])]);
        let p = plan(&f, false);
        assert!(p.set_revoked && p.detach_policies == ["p"] && p.detach_things == ["t"]);
        assert!(p.delete_things.is_empty());
        assert_eq!(plan(&f, true).delete_things, ["t"]);
        // A second run: nothing left.
        let f = found("REVOKED", &[], &[], &[]);
        assert!(plan(&f, true).changes_nothing());
        // Revoked, but a run died before detaching: finish the job.
        let f = found("REVOKED", &[], &["p"], &[]);
        let p = plan(&f, false);
        assert!(!p.set_revoked && !p.changes_nothing());
        // --delete-thing after a plain revoke: the CN's thing, now empty, goes.
        let f = found("REVOKED", &[], &[], &[("t", &[])]);
        assert_eq!(plan(&f, true).delete_things, ["t"]);
        // A rotated device: the successor keeps the thing.
        let f = found(
            "ACTIVE",
            &["t"],
            &[],
            &[("t", &["arn:cert/1", "arn:cert/2"])],
        );
        let p = plan(&f, true);
        assert!(p.delete_things.is_empty());
        assert_eq!(p.kept_things, [("t".to_string(), 1)]);
        // PENDING_ACTIVATION and INACTIVE are revoked too.
        for status in ["PENDING_ACTIVATION", "INACTIVE"] {
            assert!(plan(&found(status, &[], &[], &[]), false).set_revoked);
        }
    }
}
