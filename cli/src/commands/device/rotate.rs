//! `jitr device rotate --ca DIR --out OUTDIR (--name | --names | --all) [--csr]`:
//! a successor certificate per device. Each successor is built whole in the
//! run's staging directory with the predecessor's files copied into its
//! `previous/`, then swapped in with one `RENAME_EXCHANGE`: after a crash or
//! `kill -9` a device is either all old or all new. The run holds OUTDIR's
//! lock throughout, so rotations of one OUTDIR happen one run after another;
//! the manifest is rewritten as devices are swapped in, and a run that does
//! not finish is in `rotation-journal.json` until running it again finishes it.

use std::path::{Path, PathBuf};

use jitr_core::aws::AwsOptions;
use serde::Serialize;

use crate::error::CliError;
use crate::files::DirLock;
use crate::flags::UnlockArgs;
use crate::issue::csr;
use crate::issue::manifest::{self, PREVIOUS_DIR};
use crate::issue::names;
use crate::issue::staging::Staging;
use crate::lifecycle::journal;
use crate::lifecycle::rotation::{self, Selection};
use crate::lifecycle::successor::{self, on_disk, Rotated, Successors};
use crate::pki::ca_dir::CaDir;
use crate::pki::keys::KeyAlg;
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
        successor::refuse_early(&a.out, &plan.rotate, a.key)?;
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
    let successors = Successors {
        out: &a.out,
        ca: &ca,
        staging: &staging,
        csr: csr.as_ref(),
        key: a.key,
        days: a.days,
        run: &run.run,
    };
    let result = successors.rotate_all(&plan.rotate, &bar);
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
