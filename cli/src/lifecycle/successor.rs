//! A device's successor certificate, built whole in the run's staging
//! directory with the predecessor's files copied into its `previous/`, then
//! swapped in with one `RENAME_EXCHANGE` (`jitr device rotate`): after a
//! crash or `kill -9` a device is either all old or all new. The manifest
//! is rewritten as groups of devices are swapped in.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::CliError;
use crate::files;
use crate::issue::csr::CsrKey;
use crate::issue::layout::Layout;
use crate::issue::manifest::{self, Role, Row, PREVIOUS_DIR};
use crate::issue::staging::{Staging, DEVICE_DIR_MODE};
use crate::lifecycle::journal;
use crate::lifecycle::rotation::{self, OnDisk, Selection};
use crate::pki::ca_dir::CaDir;
use crate::pki::keys::KeyAlg;
use crate::pki::profile;
use crate::pki::subject::{self, Attribute};

/// What builds a run's successors: where the devices are, what signs, and
/// the new certificates' settings.
pub(crate) struct Successors<'a> {
    /// OUTDIR, the devices' directory.
    pub(crate) out: &'a Path,
    pub(crate) ca: &'a CaDir,
    pub(crate) staging: &'a Staging,
    /// A device-generated CSR whose key the successor takes (one device).
    pub(crate) csr: Option<&'a CsrKey>,
    /// The new keys' type (default: the predecessor's).
    pub(crate) key: Option<KeyAlg>,
    pub(crate) days: u32,
    /// The run's id, marked in each predecessor's `previous/`.
    pub(crate) run: &'a str,
}

/// One device's rotation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rotated {
    pub(crate) name: String,
    pub(crate) previous_certificate_id: String,
    pub(crate) certificate_id: String,
    pub(crate) serial: String,
    pub(crate) not_after: String,
    /// With --force: the older predecessor dropped from previous/.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dropped_certificate_id: Option<String>,
}

/// A device's current files, as read from its directory.
struct Current {
    layout: Layout,
    der: Vec<u8>,
    facts: jitr_core::CertFacts,
}

fn read_current(dir: &Path) -> Option<Current> {
    let (layout, der, facts) = manifest::read_device(dir)?;
    Some(Current { layout, der, facts })
}

/// The devices of OUTDIR the selection concerns, read from disk.
pub(crate) fn on_disk(
    out: &Path,
    selection: &Selection,
    ca_der: &[u8],
) -> Result<Vec<OnDisk>, CliError> {
    let names: Vec<String> = match selection {
        Selection::Names { names, .. } => names.clone(),
        Selection::All => {
            let mut all = Vec::new();
            for entry in fs::read_dir(out).map_err(|e| CliError::read(out, e))? {
                let entry = entry.map_err(|e| CliError::read(out, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    all.push(name);
                }
            }
            all.sort();
            all
        }
    };
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let dir = out.join(&name);
            let current = read_current(&dir)?;
            let previous = dir.join(PREVIOUS_DIR);
            Some(OnDisk {
                has_previous: previous.exists(),
                rotated_by: journal::rotated_by(&previous),
                ours: jitr_core::facts::verify_issued_by(&current.der, ca_der).is_ok(),
                name,
            })
        })
        .collect())
}

/// Rewriting the manifest costs all its rows, so it is rewritten once per
/// group of devices, one device per this many rows: about as many rows'
/// worth per device, whatever the size of OUTDIR.
const ROWS_PER_DEVICE_WRITE: usize = 250;

/// What can refuse a device (no readable certificate, a key type jitr does
/// not generate), checked for all of `names` before the first changes.
pub(crate) fn refuse_early(
    out: &Path,
    names: &[String],
    key: Option<KeyAlg>,
) -> Result<(), CliError> {
    for name in names {
        let dir = out.join(name);
        let old = read_current(&dir).ok_or_else(|| {
            CliError::invalid(dir.display(), "holds no readable device certificate")
        })?;
        successor_key(key, &dir, &old.facts.key)?;
    }
    Ok(())
}

impl Successors<'_> {
    /// Rotates `names` in order, in groups: each group's successors are built
    /// in staging, the manifest showing them is written beside the old one,
    /// then they are swapped in and that manifest renamed over the old one.
    /// A kill leaves the manifest behind the disk by at most the group being swapped.
    pub(crate) fn rotate_all(
        &self,
        names: &[String],
        bar: &indicatif::ProgressBar,
    ) -> Result<Vec<Rotated>, CliError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = manifest::rows(self.out)?;
        let group = (rows.len() / ROWS_PER_DEVICE_WRITE).max(1);
        let mut rotated = Vec::with_capacity(names.len());
        for chunk in names.chunks(group) {
            let built = chunk
                .iter()
                .map(|name| self.build(name))
                .collect::<Result<Vec<_>, _>>()?;
            for b in &built {
                manifest::replace_device(&mut rows, &b.rotated.name, b.rows.clone());
            }
            let pending = manifest::Pending::write(self.out, &rows)?;
            for b in built {
                self.staging.commit(&b.rotated.name, &b.staged, true)?;
                rotated.push(b.rotated);
                bar.inc(1);
            }
            pending.replace()?;
        }
        Ok(rotated)
    }

    /// Builds device `name`'s successor in staging, the predecessor's files
    /// (and the run's id, [`journal::MARKER`]) in its `previous/`.
    fn build(&self, name: &str) -> Result<Built, CliError> {
        let (ca, run) = (self.ca, self.run);
        let dir = self.out.join(name);
        let old = read_current(&dir).ok_or_else(|| {
            CliError::invalid(dir.display(), "holds no readable device certificate")
        })?;
        let (cert, key_pem) = self.successor(&dir, &old)?;
        let facts = jitr_core::CertFacts::from_der(cert.der()).map_err(|e| {
            CliError::signing(
                name,
                format!("the certificate made cannot be read back: {e}"),
            )
        })?;
        let cert_pem = cert.pem();
        let bundle = format!("{cert_pem}{}", ca.chain_pem);
        let f = old.layout.files();
        let server_root = f.server_root.map(|_| crate::pki::amazon::root_ca_1_pem());
        let contents = f.contents(
            key_pem.as_deref(),
            &cert_pem,
            &bundle,
            server_root.as_deref(),
        );
        let staged = self.staging.stage(name, &contents)?;
        let dropped = read_current(&dir.join(PREVIOUS_DIR)).map(|c| c.facts.certificate_id);
        let previous = staged.join(PREVIOUS_DIR);
        let marker = previous.join(journal::MARKER);
        let copied = copy_device_files(&dir, &previous).and_then(|()| {
            files::write_new(&marker, run.as_bytes(), files::PUBLIC)
                .map_err(|e| CliError::write(&marker, e))
        });
        if let Err(e) = copied {
            let _ = fs::remove_dir_all(&staged);
            return Err(e);
        }
        let rel_previous = format!("{name}/{PREVIOUS_DIR}");
        let rows = vec![
            Row::new(name, name, &facts, &f, key_pem.is_some(), Role::Current),
            Row::new(
                name,
                &rel_previous,
                &old.facts,
                &f,
                dir.join(f.key).exists(),
                Role::Previous,
            ),
        ];
        Ok(Built {
            staged,
            rows,
            rotated: Rotated {
                name: name.to_string(),
                previous_certificate_id: old.facts.certificate_id,
                certificate_id: facts.certificate_id,
                serial: facts.serial_hex,
                not_after: jitr_core::facts::rfc3339(facts.not_after),
                dropped_certificate_id: dropped,
            },
        })
    }

    /// The successor certificate (same subject) for the CSR's key, or for a new
    /// key (returned as PEM).
    fn successor(
        &self,
        dir: &Path,
        old: &Current,
    ) -> Result<(rcgen::Certificate, Option<String>), CliError> {
        let (ca, days) = (self.ca, self.days);
        let subject: Vec<Attribute> = old
            .facts
            .subject
            .iter()
            .filter_map(|attr| {
                Some(Attribute {
                    name: subject::canonical_name(&attr.name)?,
                    value: attr.value.clone(),
                })
            })
            .collect();
        let cap = Some(ca.not_after());
        let (cert, key_pem) = match self.csr {
            Some(csr) => {
                let params = profile::device(&subject, days, csr.is_rsa, cap);
                (params.signed_by(&csr.spki, &ca.issuer), None)
            }
            None => {
                let alg = successor_key(self.key, dir, &old.facts.key)?;
                let key = KeyAlg::generate(alg)?;
                let params = profile::device(&subject, days, alg.is_rsa(), cap);
                (
                    params.signed_by(&key, &ca.issuer),
                    Some(key.serialize_pem()),
                )
            }
        };
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let cert =
            cert.map_err(|e| CliError::signing(name.as_ref(), ca.issuer.key().explain(&e)))?;
        Ok((cert, key_pem))
    }
}

/// A successor built in staging, ready to be swapped in.
struct Built {
    staged: PathBuf,
    /// Its manifest rows: the successor and the predecessor.
    rows: Vec<Row>,
    rotated: Rotated,
}

/// Copies the regular files of a device directory (not its `previous/`)
/// into a new directory `to`, each with its mode (keys stay 0600).
fn copy_device_files(from: &Path, to: &Path) -> Result<(), CliError> {
    fs::DirBuilder::new()
        .mode(DEVICE_DIR_MODE)
        .create(to)
        .map_err(|e| CliError::write(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| CliError::read(from, e))? {
        let entry = entry.map_err(|e| CliError::read(from, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| CliError::read(&entry.path(), e))?;
        if !meta.is_file() {
            continue;
        }
        let bytes = files::read_limited(&entry.path(), files::MAX_PEM)?;
        let mode = meta.permissions().mode() & 0o777;
        let target = to.join(entry.file_name());
        files::write_new(&target, &bytes, mode).map_err(|e| CliError::write(&target, e))?;
    }
    Ok(())
}

/// The successor's key type: `--key`, else the predecessor's when jitr
/// generates that kind.
fn successor_key(
    chosen: Option<KeyAlg>,
    dir: &Path,
    old: &jitr_core::facts::KeyKind,
) -> Result<KeyAlg, CliError> {
    match chosen {
        Some(alg) => Ok(alg),
        None => rotation::same_key(old).ok_or_else(|| {
            CliError::invalid(
                dir.display(),
                format!("its key is {old}, which jitr does not generate; choose one with --key"),
            )
        }),
    }
}
