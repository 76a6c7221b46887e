//! `revoked.json`: the certificates revoked through `jitr device revoke`.
//! The CA directory's copy is what `jitr ca crl` signs (written under the CA
//! directory's lock, [`crate::pki::ca_write::record_revoked`]); OUTDIR's copy
//! is what `manifest.csv` shows. Records are only ever added: revoking is
//! forever, and the first time a certificate was revoked is kept.

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::CliError;
use crate::files;

pub const FILE: &str = "revoked.json";

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub certificate_id: String,
    /// Serial number, lowercase hex (what a CRL lists).
    pub serial: String,
    /// The device (thing) name, its CN.
    #[serde(default)]
    pub name: String,
    /// When jitr revoked it, RFC 3339 UTC.
    pub revoked_at: String,
}

impl Revoked {
    /// The serial number's bytes, what a CRL lists; `Err` says what is
    /// wrong with `serial` (an empty or all-zero one would be listed as
    /// serial 0, which RFC 5280 forbids, as it does more than 20 octets).
    pub fn serial_bytes(&self) -> Result<Vec<u8>, String> {
        let s = &self.serial;
        if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "serial \"{s}\" is not a serial number (expected hex digits, two per byte, as `jitr device revoke` records, e.g. \"5e01ab\")"
            ));
        }
        let bytes = hex::decode(s).map_err(|e| format!("serial \"{s}\" is not hex: {e}"))?;
        // RFC 5280 4.1.2.2: positive, at most 20 octets as DER encodes it
        // (leading zero octets aside, plus one when the top bit is set).
        let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
        let Some(first) = significant.first() else {
            return Err(format!(
                "serial \"{s}\" is zero (RFC 5280 requires a positive serial number)"
            ));
        };
        let encoded = significant.len() + usize::from(*first >= 0x80);
        if encoded > 20 {
            return Err(format!(
                "serial \"{s}\" is longer than 20 octets ({encoded} as DER encodes it; RFC 5280 allows at most 20)"
            ));
        }
        Ok(bytes)
    }

    /// When it was revoked; `Err` says what is wrong with `revoked_at`.
    pub fn revoked_time(&self) -> Result<OffsetDateTime, String> {
        OffsetDateTime::parse(&self.revoked_at, &Rfc3339).map_err(|e| {
            format!(
                "revoked_at \"{}\" is not an RFC 3339 time ({e}; expected e.g. \"2026-11-23T05:00:00Z\")",
                self.revoked_at
            )
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct List {
    revoked: Vec<Revoked>,
}

/// Adds the records of `new` whose certificate `list` does not hold yet;
/// returns how many were added. A certificate revoked again keeps its first time.
pub fn merge(list: &mut Vec<Revoked>, new: &[Revoked]) -> usize {
    let mut added = 0;
    for r in new {
        if !list.iter().any(|k| k.certificate_id == r.certificate_id) {
            list.push(r.clone());
            added += 1;
        }
    }
    added
}

/// Reads a `revoked.json`; a missing file is an empty list.
pub fn read(path: &Path) -> Result<Vec<Revoked>, CliError> {
    match path.try_exists() {
        Ok(false) => return Ok(Vec::new()),
        Err(e) => return Err(CliError::read(path, e)),
        Ok(true) => {}
    }
    let bytes = files::read(path)?;
    let list: List = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::invalid(
            path.display(),
            format!("not a revocation list ({e}); expected {{\"revoked\": [...]}} as `jitr device revoke` writes"),
        )
    })?;
    for (i, r) in list.revoked.iter().enumerate() {
        if let Some(problem) = r.serial_bytes().err().or(r.revoked_time().err()) {
            return Err(CliError::invalid(
                path.display(),
                format!(
                    "entry {} (certificate {}): {problem}",
                    i + 1,
                    r.certificate_id
                ),
            ));
        }
    }
    Ok(list.revoked)
}

/// The file's bytes for `list`.
pub fn encode(list: &[Revoked]) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(&List {
        revoked: list.to_vec(),
    })
    .expect("revocations serialize");
    text.push('\n');
    text.into_bytes()
}

/// Reads, merges and rewrites `dir/revoked.json` (the caller holds the
/// directory's lock); returns how many records were added.
pub fn add_to(dir: &Path, new: &[Revoked]) -> Result<usize, CliError> {
    let path = dir.join(FILE);
    let mut list = read(&path)?;
    let added = merge(&mut list, new);
    if added > 0 {
        files::write_all(&[files::NewFile::public(path, encode(&list))], true)?;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, at: &str) -> Revoked {
        Revoked {
            certificate_id: id.into(),
            serial: format!("5e{}", hex::encode(id)),
            name: "d".into(),
            revoked_at: at.into(),
        }
    }

    #[test]
    fn merging_keeps_the_first_revocation_of_each_certificate() {
        // (already listed, new, expected ids and times, added)
        type Case = (
            Vec<Revoked>,
            Vec<Revoked>,
            Vec<(&'static str, &'static str)>,
            usize,
        );
        let cases: [Case; 4] = [
            (vec![], vec![r("a", "t1")], vec![("a", "t1")], 1),
            (vec![r("a", "t1")], vec![r("a", "t2")], vec![("a", "t1")], 0),
            (
                vec![r("a", "t1")],
                vec![r("b", "t2"), r("a", "t3")],
                vec![("a", "t1"), ("b", "t2")],
                1,
            ),
            (
                vec![],
                vec![r("a", "t1"), r("a", "t2")],
                vec![("a", "t1")],
                1,
            ),
        ];
        for (mut list, new, expected, added) in cases {
            assert_eq!(merge(&mut list, &new), added);
            let got: Vec<(&str, &str)> = list
                .iter()
                .map(|r| (r.certificate_id.as_str(), r.revoked_at.as_str()))
                .collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn a_missing_file_is_empty_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(&dir.path().join(FILE)).unwrap().is_empty());
        let (t1, t2) = ("2026-11-23T05:00:00Z", "2026-11-24T05:00:00Z");
        assert_eq!(add_to(dir.path(), &[r("a", t1)]).unwrap(), 1);
        assert_eq!(add_to(dir.path(), &[r("a", t2)]).unwrap(), 0);
        assert_eq!(read(&dir.path().join(FILE)).unwrap(), vec![r("a", t1)]);
        std::fs::write(dir.path().join(FILE), "[1,2]").unwrap();
        let err = read(&dir.path().join(FILE)).unwrap_err().to_string();
        assert!(err.contains("revoked.json: not a revocation list"), "{err}");
    }

    #[test]
    fn an_entry_a_crl_could_not_list_is_named_with_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let write = |serial: &str, at: &str| {
            let mut bad = r("b", at);
            bad.serial = serial.into();
            std::fs::write(&path, encode(&[r("a", "2026-11-23T05:00:00Z"), bad])).unwrap();
        };
        let at = "2026-11-23T05:00:00Z";
        for (serial, revoked_at, needle) in [
            ("", at, "serial \"\" is not a serial number"),
            ("zz", at, "serial \"zz\" is not a serial number"),
            ("abc", at, "serial \"abc\" is not a serial number"),
            ("0x01", at, "serial \"0x01\" is not a serial number"),
            ("00", at, "serial \"00\" is zero"),
            ("0000", at, "serial \"0000\" is zero"),
            (
                "800000000000000000000000000000000000000000",
                at,
                "is longer than 20 octets",
            ),
            (
                "01",
                "yesterday",
                "revoked_at \"yesterday\" is not an RFC 3339 time",
            ),
        ] {
            write(serial, revoked_at);
            let err = read(&path).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{}: entry 2 (certificate b): ", path.display()))
                    && err.contains(needle),
                "{err}"
            );
        }
        // 20 octets is the most RFC 5280 allows, leading zero octets aside.
        let most = format!("00{}", "7f".repeat(20));
        write(&most, at);
        assert_eq!(read(&path).unwrap()[1].serial_bytes().unwrap().len(), 21);
        write("00FF", at);
        let list = read(&path).unwrap();
        assert_eq!(list[1].serial_bytes().unwrap(), [0x00, 0xff]);
        assert_eq!(
            list[1].revoked_time().unwrap().unix_timestamp(),
            1_795_410_000
        );
    }
}
