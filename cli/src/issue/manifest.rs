//! `OUTDIR/manifest.csv`: one row per device directory on disk. It is
//! rebuilt after every run from the disk alone (each row read from the
//! device's certificate), so it matches the disk even after a crash, a
//! killed `--force` run or concurrent runs: the disk is the truth.
//! A rotated device has two rows: its current certificate and its
//! predecessor in `NAME/previous/`; revocations come from `OUTDIR/revoked.json`.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::files::{self, NewFile};
use crate::issue::layout::{Files, Layout};
use crate::lifecycle::revoked;

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
    let path = out.join(FILE);
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
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in &rows {
        writer
            .serialize(row)
            .map_err(|e| CliError::write(&path, std::io::Error::other(e)))?;
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
            .map_err(|e| CliError::write(&path, std::io::Error::other(e)))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| CliError::write(&path, std::io::Error::other(e.to_string())))?;
    files::write_all(&[NewFile::public(path, bytes)], true)?;
    Ok(rows.iter().filter(|r| r.role == Role::Current).count())
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
