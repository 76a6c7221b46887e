//! `OUTDIR/manifest.csv`: one row per device directory on disk. It is
//! rebuilt after every run from the disk alone (each row read from the
//! device's certificate), so it matches the disk even after a crash, a
//! killed `--force` run or concurrent runs: the disk is the truth.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::files::{self, NewFile};
use crate::issue::layout::Layout;

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
}

/// Rewrites the manifest of `out` atomically from the device directories
/// on disk; returns the number of rows written. Callers hold the lock on
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
        .filter_map(|name| row_from_disk(out, name))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
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
            ])
            .map_err(|e| CliError::write(&path, std::io::Error::other(e)))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| CliError::write(&path, std::io::Error::other(e.to_string())))?;
    files::write_all(&[NewFile::public(path, bytes)], true)?;
    Ok(rows.len())
}

/// Reads a manifest; an unreadable one is treated as empty (it is rebuilt from disk).
pub fn read(path: &Path) -> Vec<Row> {
    match csv::Reader::from_path(path) {
        Ok(mut r) => r.deserialize().filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

/// The row of a device directory, read from its certificate (`None` when
/// it holds no readable certificate: not a device).
pub fn row_from_disk(out: &Path, name: &str) -> Option<Row> {
    let dir = out.join(name);
    Layout::all().into_iter().find_map(|layout| {
        let f = layout.files();
        let bytes = files::read_limited(&dir.join(f.cert), files::MAX_PEM).ok()?;
        let facts = jitr_core::CertFacts::from_pem(&bytes).ok()?;
        let rel = |file: &str| format!("{name}/{file}");
        Some(Row {
            name: name.to_string(),
            certificate_id: facts.certificate_id.clone(),
            serial: facts.serial_hex.clone(),
            not_after: jitr_core::facts::rfc3339(facts.not_after),
            key_path: if dir.join(f.key).exists() {
                rel(f.key)
            } else {
                String::new()
            },
            cert_path: rel(f.cert),
            bundle_path: rel(f.bundle),
        })
    })
}
