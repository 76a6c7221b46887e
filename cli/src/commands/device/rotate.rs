//! `jitr device rotate --ca DIR --out OUTDIR (--name | --names | --all) [--csr]`:
//! a successor certificate per device. Each successor is built whole in the
//! run's staging directory with the predecessor's files copied into its
//! `previous/`, then swapped in with one `RENAME_EXCHANGE`: after a crash or
//! `kill -9` a device is either all old or all new. The run holds OUTDIR's
//! lock throughout, so rotations of one OUTDIR happen one run after another;
//! the manifest is rewritten as devices are swapped in, and a run that does
//! not finish is in `rotation-journal.json` until running it again finishes it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jitr_core::aws::AwsOptions;
use serde::Serialize;

use crate::error::CliError;
use crate::files::{self, DirLock};
use crate::flags::UnlockArgs;
use crate::issue::csr::{self, CsrKey};
use crate::issue::layout::Layout;
use crate::issue::manifest::{self, Role, Row, PREVIOUS_DIR};
use crate::issue::names;
use crate::issue::staging::{Staging, DEVICE_DIR_MODE};
use crate::lifecycle::journal;
use crate::lifecycle::rotation::{self, OnDisk, Selection};
use crate::pki::ca_dir::CaDir;
use crate::pki::keys::KeyAlg;
use crate::pki::profile;
use crate::pki::subject::{self, Attribute};
use crate::report::Output;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["name", "names", "all"]))]
pub(crate) struct Args {
    /// The CA directory that signs the successors (and issued the devices).
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: PathBuf,
    /// The output directory of `jitr device issue` that holds the devices.
    #[arg(long, value_name = "OUTDIR")]
    pub(crate) out: PathBuf,
    /// One device.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Devices, one name per line (or CSV with a `name` column).
    #[arg(long, value_name = "FILE")]
    pub(crate) names: Option<PathBuf>,
    /// Every device in OUTDIR issued by the CA.
    #[arg(long)]
    pub(crate) all: bool,
    /// Sign this device-generated CSR as the successor (with --name); no key is written.
    // `requires` alone accepts any member of the group "which" (clap #4707).
    #[arg(long, value_name = "FILE", requires = "name", conflicts_with_all = ["names", "all"])]
    pub(crate) csr: Option<PathBuf>,
    /// Key type of the new keys (default: the predecessor's).
    #[arg(long, value_enum, conflicts_with = "csr")]
    pub(crate) key: Option<KeyAlg>,
    /// Validity in days (never beyond the CA's own expiry).
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) days: u32,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Rotate a device that still holds a predecessor in previous/ (that one is dropped).
    #[arg(long)]
    pub(crate) force: bool,
}

impl Args {
    /// The flags' one conversion: the devices `--name`, `--names` or `--all`
    /// select (a CSR holds one device's key: `--csr` goes with `--name`).
    fn selection(&self) -> Result<Selection, CliError> {
        if self.csr.is_some() && self.name.is_none() {
            return Err(CliError::invalid(
                "--csr",
                "a CSR holds one device's key: give it with --name NAME (not with --names or --all)",
            ));
        }
        if self.all {
            return Ok(Selection::All);
        }
        if let Some(path) = &self.names {
            let names = names::from_file(path)?
                .into_iter()
                .map(|s| s.name)
                .collect();
            return Ok(Selection::Names {
                names,
                flag: format!("--names {}", path.display()),
            });
        }
        let name = self.name.clone().expect("clap requires one of them");
        names::check_name(&name, "--name")?;
        Ok(Selection::Names {
            names: vec![name],
            flag: "--name".into(),
        })
    }
}

/// One device's rotation.
#[derive(Debug, Clone, Serialize)]
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
    /// Devices a run that did not finish had rotated: not rotated again.
    finished_earlier: Vec<String>,
    /// --all: devices of another CA, left alone.
    other_ca: Vec<String>,
    /// Runs still unfinished after this one (see `rotation-journal.json`).
    unfinished_runs: usize,
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

/// `jitr device rotate`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let selection = a.selection()?;
    let csr = a.csr.as_deref().map(csr::read).transpose()?;
    if !a.out.is_dir() {
        return Err(CliError::invalid(
            format!("--out {}", a.out.display()),
            "is not a directory (expected the OUTDIR of `jitr device issue`)",
        ));
    }
    let ca = CaDir::load(&a.ca, "--ca", &a.unlock.unlock(aws))?;
    ca.check_valid_now("--ca")?;

    let staging = Staging::open(&a.out)?;
    let _lock = DirLock::acquire(&a.out)?;
    // Runs in the journal are dead (a live one would hold the lock).
    let unfinished = journal::read(&a.out)?;
    let unfinished_ids: Vec<String> = unfinished.iter().map(|r| r.run.clone()).collect();
    let disk = on_disk(&a.out, &selection, &ca.cert_der)?;
    let plan = rotation::plan(
        &selection,
        &disk,
        a.force,
        &unfinished_ids,
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
    let run = journal::Run::new(
        format!("{}-{}", jitr_core::clock::unix_seconds(), staging.id()),
        a.ca.display().to_string(),
        ca.certificate_id().to_string(),
        &selection,
    );
    let mut runs = unfinished;
    runs.push(run.clone());
    if !plan.rotate.is_empty() {
        journal::write(&a.out, &runs)?;
    }
    let bar = crate::issue::progress::bar(out.chatty(), plan.rotate.len(), "rotating");
    let result = rotate_all(
        a,
        &ca,
        &staging,
        &plan.rotate,
        csr.as_ref(),
        (&run.run, &bar),
    );
    bar.finish_and_clear();
    drop(staging);
    // Record what reached the disk, failure or not.
    manifest::update(&a.out)?;
    let rotated = result?;
    let left = journal::after(&runs, &run);
    journal::write(&a.out, &left)?;
    let report = Report {
        rotated,
        finished_earlier: plan.finished_earlier,
        other_ca: plan.other_ca,
        unfinished_runs: left.len(),
        manifest: a.out.join(manifest::FILE).display().to_string(),
    };
    out.result(&report, || text(&report, &a.out));
    Ok(())
}

/// The report as text.
fn text(report: &Report, outdir: &Path) -> String {
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
    if !report.finished_earlier.is_empty() {
        text += &format!(
            "{} device(s) were rotated by an earlier run that did not finish; not rotated again\n",
            report.finished_earlier.len()
        );
    }
    if !report.other_ca.is_empty() {
        text += &format!(
            "left {} device(s) of another CA alone\n",
            report.other_ca.len()
        );
    }
    if report.unfinished_runs > 0 {
        text += &format!(
            "{} earlier run(s) still unfinished (listed in {}): run them again to finish them\n",
            report.unfinished_runs,
            outdir.join(journal::FILE).display()
        );
    }
    text
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

/// Rotates `names` in order, in groups: each group's successors are built
/// in staging, the manifest showing them is written beside the old one,
/// then they are swapped in and that manifest renamed over the old one.
/// A kill leaves the manifest behind the disk by at most the group being swapped.
fn rotate_all(
    a: &Args,
    ca: &CaDir,
    staging: &Staging,
    names: &[String],
    csr: Option<&CsrKey>,
    (run, bar): (&str, &indicatif::ProgressBar),
) -> Result<Vec<Rotated>, CliError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = manifest::rows(&a.out)?;
    let group = (rows.len() / ROWS_PER_DEVICE_WRITE).max(1);
    let mut rotated = Vec::with_capacity(names.len());
    for chunk in names.chunks(group) {
        let built = chunk
            .iter()
            .map(|name| build(a, ca, staging, name, csr, run))
            .collect::<Result<Vec<_>, _>>()?;
        for b in &built {
            manifest::replace_device(&mut rows, &b.rotated.name, b.rows.clone());
        }
        let pending = manifest::Pending::write(&a.out, &rows)?;
        for b in built {
            staging.commit(&b.rotated.name, &b.staged, true)?;
            rotated.push(b.rotated);
            bar.inc(1);
        }
        pending.replace()?;
    }
    Ok(rotated)
}

/// A successor built in staging, ready to be swapped in.
struct Built {
    staged: PathBuf,
    /// Its manifest rows: the successor and the predecessor.
    rows: Vec<Row>,
    rotated: Rotated,
}

/// Builds device `name`'s successor in staging, the predecessor's files
/// (and the run's id, [`journal::MARKER`]) in its `previous/`.
fn build(
    a: &Args,
    ca: &CaDir,
    staging: &Staging,
    name: &str,
    csr: Option<&CsrKey>,
    run: &str,
) -> Result<Built, CliError> {
    let dir = a.out.join(name);
    let old = read_current(&dir)
        .ok_or_else(|| CliError::invalid(dir.display(), "holds no readable device certificate"))?;
    let (cert, key_pem) = successor(a, ca, &dir, &old, csr)?;
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
    a: &Args,
    ca: &CaDir,
    dir: &Path,
    old: &Current,
    csr: Option<&CsrKey>,
) -> Result<(rcgen::Certificate, Option<String>), CliError> {
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
            let alg = successor_key(a.key, dir, &old.facts.key)?;
            let key = KeyAlg::generate(alg)?;
            let params = profile::device(&subject, a.days, alg.is_rsa(), cap);
            (
                params.signed_by(&key, &ca.issuer),
                Some(key.serialize_pem()),
            )
        }
    };
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let cert = cert.map_err(|e| CliError::signing(name.as_ref(), ca.issuer.key().explain(&e)))?;
    Ok((cert, key_pem))
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
