//! `jitr device rotate --ca DIR --out OUTDIR (--name | --names | --all) [--csr]`:
//! a successor certificate per device. Each successor is built whole in the
//! run's staging directory with the predecessor's files copied into its
//! `previous/`, then swapped in with one `RENAME_EXCHANGE`: after a crash or
//! `kill -9` a device is either all old or all new. The run holds OUTDIR's
//! lock throughout, so rotations of one OUTDIR happen one run after another.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use serde::Serialize;

use crate::args::{DeviceRotateArgs, Global};
use crate::error::CliError;
use crate::files::{self, DirLock};
use crate::issue::csr::{self, CsrKey};
use crate::issue::layout::Layout;
use crate::issue::manifest::{self, PREVIOUS_DIR};
use crate::issue::names;
use crate::issue::staging::{Staging, DEVICE_DIR_MODE};
use crate::lifecycle::rotation::{self, OnDisk, Selection};
use crate::pki::ca_dir::CaDir;
use crate::pki::keys::KeyAlg;
use crate::pki::profile;
use crate::pki::subject::{self, Attribute};
use crate::report::Output;

/// One device's rotation.
#[derive(Debug, Serialize)]
struct Rotated {
    name: String,
    previous_certificate_id: String,
    certificate_id: String,
    serial: String,
    not_after: String,
    /// With --force: the older predecessor dropped from previous/.
    #[serde(skip_serializing_if = "Option::is_none")]
    dropped_certificate_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    rotated: Vec<Rotated>,
    /// --all: devices of another CA, left alone.
    other_ca: Vec<String>,
    manifest: String,
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

pub fn rotate(a: &DeviceRotateArgs, g: &Global, out: &Output) -> Result<(), CliError> {
    let selection = selection(a)?;
    let csr = a.csr.as_deref().map(csr::read).transpose()?;
    if !a.out.is_dir() {
        return Err(CliError::invalid(
            format!("--out {}", a.out.display()),
            "is not a directory (expected the OUTDIR of `jitr device issue`)",
        ));
    }
    let ca = CaDir::load(&a.ca, "--ca", &a.unlock.unlock(g))?;
    ca.check_valid_now("--ca")?;

    let staging = Staging::open(&a.out)?;
    let _lock = DirLock::acquire(&a.out)?;
    let disk = on_disk(&a.out, &selection, &ca.cert_der)?;
    let plan = rotation::plan(
        &selection,
        &disk,
        a.force,
        &a.out.display().to_string(),
        &a.ca.display().to_string(),
    )?;
    // What can refuse a device is checked for all of them before the first changes.
    if csr.is_none() {
        for name in &plan.rotate {
            let dir = a.out.join(name);
            let old = read_current(&dir).ok_or_else(|| {
                CliError::invalid(dir.display(), "holds no readable device certificate")
            })?;
            successor_key(a.key, &dir, &old.facts.key)?;
        }
    }
    let mut rotated = Vec::new();
    let mut failed = None;
    for name in &plan.rotate {
        match rotate_one(a, &ca, &staging, name, csr.as_ref()) {
            Ok(r) => rotated.push(r),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(staging);
    // Record what reached the disk, failure or not.
    manifest::update(&a.out)?;
    if let Some(e) = failed {
        return Err(e);
    }
    let report = Report {
        rotated,
        other_ca: plan.other_ca,
        manifest: a.out.join(manifest::FILE).display().to_string(),
    };
    out.result(&report, || {
        let mut text = String::new();
        for r in &report.rotated {
            text += &format!(
                "  {}: {} -> {} (until {}){}\n",
                r.name,
                r.previous_certificate_id,
                r.certificate_id,
                r.not_after,
                r.dropped_certificate_id
                    .as_ref()
                    .map(|d| format!(", dropped older {d}"))
                    .unwrap_or_default()
            );
        }
        text += &format!(
            "rotated {} device(s); predecessors in NAME/{PREVIOUS_DIR}/; manifest: {}\n",
            report.rotated.len(),
            report.manifest
        );
        if !report.other_ca.is_empty() {
            text += &format!(
                "left {} device(s) of another CA alone\n",
                report.other_ca.len()
            );
        }
        text
    });
    Ok(())
}

fn selection(a: &DeviceRotateArgs) -> Result<Selection, CliError> {
    if a.all {
        return Ok(Selection::All);
    }
    if let Some(path) = &a.names {
        let names = names::from_file(path)?
            .into_iter()
            .map(|s| s.name)
            .collect();
        return Ok(Selection::Names {
            names,
            flag: format!("--names {}", path.display()),
        });
    }
    let name = a.name.clone().expect("clap requires one of them");
    names::check_name(&name, "--name")?;
    Ok(Selection::Names {
        names: vec![name],
        flag: "--name".into(),
    })
}

/// The devices of OUTDIR the selection concerns, read from disk.
fn on_disk(out: &Path, selection: &Selection, ca_der: &[u8]) -> Result<Vec<OnDisk>, CliError> {
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
            Some(OnDisk {
                has_previous: dir.join(PREVIOUS_DIR).exists(),
                ours: jitr_core::facts::verify_issued_by(&current.der, ca_der).is_ok(),
                name,
            })
        })
        .collect())
}

fn rotate_one(
    a: &DeviceRotateArgs,
    ca: &CaDir,
    staging: &Staging,
    name: &str,
    csr: Option<&CsrKey>,
) -> Result<Rotated, CliError> {
    let dir = a.out.join(name);
    let old = read_current(&dir)
        .ok_or_else(|| CliError::invalid(dir.display(), "holds no readable device certificate"))?;
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
    let (cert, key_pem) = match csr {
        Some(csr) => {
            let params = profile::device(&subject, a.days, csr.is_rsa, cap);
            (params.signed_by(&csr.spki, &ca.issuer), None)
        }
        None => {
            let alg = successor_key(a.key, &dir, &old.facts.key)?;
            let key = KeyAlg::generate(alg)?;
            let params = profile::device(&subject, a.days, alg.is_rsa(), cap);
            (
                params.signed_by(&key, &ca.issuer),
                Some(key.serialize_pem()),
            )
        }
    };
    let cert = cert.map_err(|e| CliError::signing(name, ca.issuer.key().explain(&e)))?;
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
    let staged = staging.stage(name, &contents)?;
    let dropped = read_current(&dir.join(PREVIOUS_DIR)).map(|c| c.facts.certificate_id);
    if let Err(e) = copy_device_files(&dir, &staged.join(PREVIOUS_DIR)) {
        let _ = fs::remove_dir_all(&staged);
        return Err(e);
    }
    staging.commit(name, &staged, true)?;
    Ok(Rotated {
        name: name.to_string(),
        previous_certificate_id: old.facts.certificate_id,
        certificate_id: facts.certificate_id,
        serial: facts.serial_hex,
        not_after: jitr_core::facts::rfc3339(facts.not_after),
        dropped_certificate_id: dropped,
    })
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
