//! What `jitr device allow` and `disallow` put on (or take off) a stack's
//! allow-list, decided without I/O: the certificates the inputs name (a
//! manifest's rows, or certificate files' facts), those refused and why,
//! and, against what the list already holds, what to write.

use std::collections::HashMap;

use serde::Serialize;

use crate::issue::manifest::Row;

/// One allow-list entry: a certificate and the thing name its manifest gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub certificate_id: String,
    /// The manifest's device name (None for a bare certificate file: the
    /// function names the thing from the subject).
    pub thing_name: Option<String>,
}

/// An input left off the list, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The manifest row (its device name) or the file.
    pub item: String,
    pub reason: String,
}

/// The inputs sorted: certificates to list, and those refused.
#[derive(Debug, Default)]
pub struct Sorted {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<Refused>,
}

impl Sorted {
    /// Adds a candidate unless its certificate is already in (same entry:
    /// dropped; another name: refused, the first one stays).
    fn push(&mut self, item: String, candidate: Candidate) {
        match self
            .candidates
            .iter()
            .find(|c| c.certificate_id == candidate.certificate_id)
        {
            Some(c) if c == &candidate => {}
            Some(c) => self.refused.push(Refused {
                item,
                reason: format!(
                    "certificate {} is listed already under {}",
                    c.certificate_id,
                    c.thing_name.as_deref().unwrap_or("its subject's name")
                ),
            }),
            None => self.candidates.push(candidate),
        }
    }

    /// Sorts a manifest's rows: every row of a certificate not revoked,
    /// current or previous (a rotated device may still connect with either),
    /// named by its device.
    pub fn add_rows(&mut self, rows: &[Row]) {
        for row in rows {
            let id = row.certificate_id.to_ascii_lowercase();
            let refuse = if !jitr_core::rules::is_certificate_id(&id) {
                Some(format!(
                    "certificate_id \"{}\" is not 64 hex digits",
                    row.certificate_id
                ))
            } else if !row.revoked_at.is_empty() {
                Some(format!("revoked at {}", row.revoked_at))
            } else if !jitr_core::rules::is_thing_name(&row.name) {
                Some(format!(
                    "name \"{}\" is not a thing name (1-128 of a-z A-Z 0-9 : _ -)",
                    row.name
                ))
            } else {
                None
            };
            match refuse {
                Some(reason) => self.refused.push(Refused {
                    item: row.name.clone(),
                    reason,
                }),
                None => self.push(
                    row.name.clone(),
                    Candidate {
                        certificate_id: id,
                        thing_name: Some(row.name.clone()),
                    },
                ),
            }
        }
    }

    /// Sorts a certificate file's facts (`item` names the file), at `now`.
    pub fn add_certificate(&mut self, item: String, facts: &jitr_core::CertFacts, now: i64) {
        let reason = if facts.is_ca() {
            Some("a CA certificate, not a device's".to_string())
        } else if now > facts.not_after {
            Some(format!(
                "expired at {}",
                jitr_core::facts::rfc3339(facts.not_after)
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => self.refused.push(Refused { item, reason }),
            None => self.push(
                item,
                Candidate {
                    certificate_id: facts.certificate_id.clone(),
                    thing_name: None,
                },
            ),
        }
    }
}

/// What the list holds for a certificate: the entry's thing name.
pub type Held = HashMap<String, Option<String>>;

/// The writes of an `allow` run, against what the list holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Writes {
    /// Not on the list: to add.
    pub add: Vec<Candidate>,
    /// On the list under another name: to rewrite.
    pub update: Vec<Candidate>,
    /// On the list as given: nothing to do.
    pub already_there: usize,
}

/// Sorts `candidates` by what `held` says (idempotent: a second run writes nothing).
pub fn writes(candidates: Vec<Candidate>, held: &Held) -> Writes {
    let mut w = Writes::default();
    for c in candidates {
        match held.get(&c.certificate_id) {
            None => w.add.push(c),
            Some(name) if *name == c.thing_name => w.already_there += 1,
            Some(_) => w.update.push(c),
        }
    }
    w
}

/// An `allow` run's result.
#[derive(Debug, Serialize)]
pub struct AllowSummary {
    pub table: String,
    pub added: usize,
    pub updated: usize,
    pub already_there: usize,
    pub refused: Vec<Refused>,
}

/// A `disallow` run's result.
#[derive(Debug, Serialize)]
pub struct DisallowSummary {
    pub table: String,
    pub removed: usize,
    pub not_there: usize,
    pub refused: Vec<Refused>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::manifest::Role;

    fn row(name: &str, id: &str, revoked_at: &str) -> Row {
        Row {
            name: name.into(),
            certificate_id: id.into(),
            serial: "01".into(),
            not_after: "2030-01-01T00:00:00Z".into(),
            key_path: String::new(),
            cert_path: format!("{name}/device.crt"),
            bundle_path: format!("{name}/bundle.crt"),
            role: Role::Current,
            revoked_at: revoked_at.into(),
        }
    }

    #[test]
    fn manifest_rows_are_sorted_into_entries_and_refusals() {
        let (a, b, c) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let mut s = Sorted::default();
        s.add_rows(&[
            row("robot-1", &a.to_uppercase(), ""),
            row("robot-2", &b, "2026-01-01T00:00:00Z"),
            row("robot 3", &c, ""),
            row("robot-4", "xyz", ""),
            // The same certificate twice: once listed; under another name: refused.
            row("robot-1", &a, ""),
            row("robot-9", &a, ""),
        ]);
        assert_eq!(
            s.candidates,
            [Candidate {
                certificate_id: a.clone(),
                thing_name: Some("robot-1".into())
            }]
        );
        let reasons: Vec<(&str, &str)> = s
            .refused
            .iter()
            .map(|r| (r.item.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert_eq!(reasons[0], ("robot-2", "revoked at 2026-01-01T00:00:00Z"));
        assert!(reasons[1].1.contains("not a thing name"), "{reasons:?}");
        assert!(reasons[2].1.contains("not 64 hex digits"), "{reasons:?}");
        assert!(reasons[3].1.contains("listed already under robot-1"));
    }

    #[test]
    fn writes_are_idempotent() {
        let c = |id: &str, name: Option<&str>| Candidate {
            certificate_id: id.into(),
            thing_name: name.map(str::to_string),
        };
        let held: Held = [
            ("a".to_string(), Some("robot-1".to_string())),
            ("b".to_string(), Some("old".to_string())),
            ("d".to_string(), None),
        ]
        .into();
        let w = writes(
            vec![
                c("a", Some("robot-1")),
                c("b", Some("robot-2")),
                c("c", Some("robot-3")),
                c("d", None),
            ],
            &held,
        );
        assert_eq!(w.add, [c("c", Some("robot-3"))]);
        assert_eq!(w.update, [c("b", Some("robot-2"))]);
        assert_eq!(w.already_there, 2);
        // Once written, nothing is left to write.
        let mut after = held.clone();
        for x in w.add.iter().chain(&w.update) {
            after.insert(x.certificate_id.clone(), x.thing_name.clone());
        }
        let again = writes(
            vec![
                c("a", Some("robot-1")),
                c("b", Some("robot-2")),
                c("c", Some("robot-3")),
            ],
            &after,
        );
        assert!(again.add.is_empty() && again.update.is_empty());
        assert_eq!(again.already_there, 3);
    }
}
