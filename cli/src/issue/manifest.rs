//! `OUTDIR/manifest.csv`: one row per device directory on disk. It is
//! rebuilt after every run from the disk alone (each row read from the
//! device's certificate), so it matches the disk even after a crash, a
//! killed `--force` run or concurrent runs: the disk is the truth.
//! `jitr device rotate` also rewrites it as devices change ([`Pending`]),
//! so a killed rotation leaves it showing what was rotated.
//! A rotated device has two rows: its current certificate and its
//! predecessor in `NAME/previous/`; revocations come from `OUTDIR/revoked.json`.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::files::{self, NewFile};
use crate::issue::layout::{Files, Layout};
use crate::pki::revoked;

/// The subdirectory of a device that holds its predecessor after `jitr device rotate`.
pub const PREVIOUS_DIR: &str = "previous";

/// Which of a device's certificates a row is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The files in `NAME/`: what the device is flashed with.
    #[default]
    Current,
    /// The predecessor in `NAME/previous/`, kept while the device may still use it.
    Previous,
}

pub const FILE: &str = "manifest.csv";

/// One issued device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    /// What AWS IoT will call the certificate: lowercase hex SHA-256 of its DER.
    pub certificate_id: String,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// Paths relative to OUTDIR; `key_path` is empty when the key stayed on the device.
    pub key_path: String,
    pub cert_path: String,
    pub bundle_path: String,
    /// current, or previous (the predecessor after a rotation).
    #[serde(default)]
    pub role: Role,
    /// When it was revoked through `jitr device revoke` (RFC 3339); empty if not.
    #[serde(default)]
    pub revoked_at: String,
}

impl Row {
    /// The one place a manifest row is built: device `name`, its files in
    /// `rel_dir` (relative to OUTDIR), named by `files`, read as `facts`.
    pub fn new(
        name: &str,
        rel_dir: &str,
        facts: &jitr_core::CertFacts,
        files: &Files,
        has_key: bool,
        role: Role,
    ) -> Row {
        let rel = |file: &str| format!("{rel_dir}/{file}");
        Row {
            name: name.to_string(),
            certificate_id: facts.certificate_id.clone(),
            serial: facts.serial_hex.clone(),
            not_after: jitr_core::facts::rfc3339(facts.not_after),
            key_path: if has_key {
                rel(files.key)
            } else {
                String::new()
            },
            cert_path: rel(files.cert),
            bundle_path: rel(files.bundle),
            role,
            revoked_at: String::new(),
        }
    }
}

/// Rewrites the manifest of `out` atomically from the device directories
/// on disk; returns the number of devices (rows of current certificates). Callers hold the lock on
/// `out`, so concurrent runs write it one after the other.
pub fn update(out: &Path) -> Result<usize, CliError> {
    let rows = rows(out)?;
    let path = out.join(FILE);
    files::write_all(
        &[NewFile::public(path.clone(), encode(&rows, &path)?)],
        true,
    )?;
    Ok(rows.iter().filter(|r| r.role == Role::Current).count())
}

/// The rows of every device directory of `out`, as [`update`] writes them.
pub fn rows(out: &Path) -> Result<Vec<Row>, CliError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|e| CliError::read(out, e))? {
        let entry = entry.map_err(|e| CliError::read(out, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        names.push(name);
    }
    let mut rows: Vec<Row> = names
        .par_iter()
        .flat_map_iter(|name| {
            let previous = format!("{name}/{PREVIOUS_DIR}");
            let current = row_from_disk(out, name, name, Role::Current);
            let before = current
                .as_ref()
                .and_then(|_| row_from_disk(out, name, &previous, Role::Previous));
            current.into_iter().chain(before)
        })
        .collect();
    rows.sort_by(|a, b| (&a.name, a.role as u8).cmp(&(&b.name, b.role as u8)));
    let revoked = revoked::read(&out.join(revoked::FILE))?;
    mark_revoked(&mut rows, &revoked);
    Ok(rows)
}

/// The CSV text of `rows`; `path` names the manifest in errors.
fn encode(rows: &[Row], path: &Path) -> Result<Vec<u8>, CliError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(row)
            .map_err(|e| CliError::write(path, std::io::Error::other(e)))?;
    }
    if rows.is_empty() {
        writer
            .write_record([
                "name",
                "certificate_id",
                "serial",
                "not_after",
                "key_path",
                "cert_path",
                "bundle_path",
                "role",
                "revoked_at",
            ])
            .map_err(|e| CliError::write(path, std::io::Error::other(e)))?;
    }
    writer
        .into_inner()
        .map_err(|e| CliError::write(path, std::io::Error::other(e.to_string())))
}

/// A manifest written beside `OUTDIR/manifest.csv`, put in its place by
/// [`Pending::replace`]: written before a change, renamed over the old one
/// right after it, so a kill leaves at most that change unrecorded. Not
/// synced (the run's final [`update`] is); a leftover is removed by the next run.
pub(crate) struct Pending {
    file: tempfile::NamedTempFile,
    path: std::path::PathBuf,
}

impl Pending {
    /// Writes `rows` as the next manifest of `out`.
    pub(crate) fn write(out: &Path, rows: &[Row]) -> Result<Pending, CliError> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let path = out.join(FILE);
        let bytes = encode(rows, &path)?;
        let mut file = tempfile::Builder::new()
            .prefix(files::TEMP_PREFIX)
            .permissions(std::fs::Permissions::from_mode(files::PUBLIC))
            .tempfile_in(out)
            .map_err(|e| CliError::write(&path, e))?;
        file.write_all(&bytes)
            .map_err(|e| CliError::write(&path, e))?;
        Ok(Pending { file, path })
    }

    /// Renames it over the manifest.
    pub(crate) fn replace(self) -> Result<(), CliError> {
        self.file
            .persist(&self.path)
            .map(drop)
            .map_err(|e| CliError::write(&self.path, e.error))
    }
}

/// Replaces the rows of device `name` in `rows` (sorted as [`rows`] sorts
/// them) by `new`, which keep the revocation time of a certificate they share.
pub(crate) fn replace_device(rows: &mut Vec<Row>, name: &str, mut new: Vec<Row>) {
    let start = rows.partition_point(|r| r.name.as_str() < name);
    let end = start + rows[start..].iter().take_while(|r| r.name == name).count();
    for row in &mut new {
        if let Some(old) = rows[start..end]
            .iter()
            .find(|o| o.certificate_id == row.certificate_id)
        {
            row.revoked_at = old.revoked_at.clone();
        }
    }
    new.sort_by_key(|r| r.role as u8);
    rows.splice(start..end, new);
}

/// Fills `revoked_at` of the rows whose certificate `revoked` lists.
fn mark_revoked(rows: &mut [Row], revoked: &[revoked::Revoked]) {
    for row in rows {
        if let Some(r) = revoked
            .iter()
            .find(|r| r.certificate_id == row.certificate_id)
        {
            row.revoked_at = r.revoked_at.clone();
        }
    }
}

/// The row of device `name` whose files are in `OUTDIR/rel_dir`, read from
/// its certificate (`None` when it holds no readable certificate: not a device).
pub fn row_from_disk(out: &Path, name: &str, rel_dir: &str, role: Role) -> Option<Row> {
    let dir = out.join(rel_dir);
    let (layout, _, facts) = read_device(&dir)?;
    let f = layout.files();
    Some(Row::new(
        name,
        rel_dir,
        &facts,
        &f,
        dir.join(f.key).exists(),
        role,
    ))
}

/// The layout, certificate (DER) and its facts of the device files in
/// `dir` (`None`: no readable device certificate there).
pub fn read_device(dir: &Path) -> Option<(Layout, Vec<u8>, jitr_core::CertFacts)> {
    Layout::all().into_iter().find_map(|layout| {
        let bytes = files::read_limited(&dir.join(layout.files().cert), files::MAX_PEM).ok()?;
        let der = jitr_core::pem::certificates(&bytes)
            .ok()?
            .into_iter()
            .next()?;
        let facts = jitr_core::CertFacts::from_der(&der).ok()?;
        Some((layout, der, facts))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, id: &str, role: Role, revoked_at: &str) -> Row {
        Row {
            name: name.into(),
            certificate_id: id.into(),
            serial: String::new(),
            not_after: String::new(),
            key_path: String::new(),
            cert_path: String::new(),
            bundle_path: String::new(),
            role,
            revoked_at: revoked_at.into(),
        }
    }

    fn shown(rows: &[Row]) -> Vec<(&str, &str, Role, &str)> {
        rows.iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.certificate_id.as_str(),
                    r.role,
                    r.revoked_at.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn a_rotated_device_gets_two_rows_in_its_place() {
        use Role::{Current, Previous};
        let mut rows = vec![
            row("a", "a1", Current, ""),
            row("b", "b1", Current, "t1"),
            row("b", "b0", Previous, "t0"),
            row("c", "c1", Current, ""),
        ];
        // b rotated again: b1 becomes the predecessor and keeps its revocation.
        replace_device(
            &mut rows,
            "b",
            vec![row("b", "b1", Previous, ""), row("b", "b2", Current, "")],
        );
        replace_device(
            &mut rows,
            "c",
            vec![row("c", "c2", Current, ""), row("c", "c1", Previous, "")],
        );
        // A device the rows did not hold yet.
        replace_device(&mut rows, "bb", vec![row("bb", "n", Current, "")]);
        assert_eq!(
            shown(&rows),
            [
                ("a", "a1", Current, ""),
                ("b", "b2", Current, ""),
                ("b", "b1", Previous, "t1"),
                ("bb", "n", Current, ""),
                ("c", "c2", Current, ""),
                ("c", "c1", Previous, ""),
            ]
        );
    }

    #[test]
    fn a_pending_manifest_replaces_the_old_one_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::write(out.join(FILE), "old").unwrap();
        let pending = Pending::write(out, &[row("a", "a1", Role::Current, "")]).unwrap();
        assert_eq!(std::fs::read_to_string(out.join(FILE)).unwrap(), "old");
        pending.replace().unwrap();
        let text = std::fs::read_to_string(out.join(FILE)).unwrap();
        assert!(text.starts_with("name,certificate_id,"), "{text}");
        assert!(text.contains("\na,a1,"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, crate::files::PUBLIC);
    }
}
