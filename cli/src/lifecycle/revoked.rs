//! `revoked.json`: the certificates revoked through `jitr device revoke`.
//! The CA directory's copy is what `jitr ca crl` signs (written under the CA
//! directory's lock, [`crate::pki::ca_write::record_revoked`]); OUTDIR's copy
//! is what `manifest.csv` shows. Records are only ever added: revoking is
//! forever, and the first time a certificate was revoked is kept.

use std::path::Path;

use serde::{Deserialize, Serialize};

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
            serial: format!("5e{id}"),
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
        assert_eq!(add_to(dir.path(), &[r("a", "t1")]).unwrap(), 1);
        assert_eq!(add_to(dir.path(), &[r("a", "t2")]).unwrap(), 0);
        assert_eq!(read(&dir.path().join(FILE)).unwrap(), vec![r("a", "t1")]);
        std::fs::write(dir.path().join(FILE), "[1,2]").unwrap();
        let err = read(&dir.path().join(FILE)).unwrap_err().to_string();
        assert!(err.contains("revoked.json: not a revocation list"), "{err}");
    }
}
