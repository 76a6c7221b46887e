//! `jitr device issue`: device certificates, one, a numbered run, a list,
//! or from a CSR, signed by a CA directory.

use std::path::PathBuf;

use jitr_core::aws::AwsOptions;

use crate::error::CliError;
use crate::flags::UnlockArgs;
use crate::issue::batch::{Batch, KeySource, Outcome};
use crate::issue::csr;
use crate::issue::layout::Layout;
use crate::issue::names::{self, DeviceSpec, Template};
use crate::pki::ca_dir::CaDir;
use crate::pki::keys::KeyAlg;
use crate::pki::store::StoreKind;
use crate::pki::subject::{self, Attribute};
use crate::report::Output;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["name", "count", "names"]))]
pub(crate) struct Args {
    /// The CA directory that signs.
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: PathBuf,
    /// Output directory: one subdirectory per device, plus manifest.csv.
    #[arg(long, value_name = "OUTDIR")]
    pub(crate) out: PathBuf,
    /// One device (the subject CN and future thing name).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// A numbered run of N devices named by --name-template.
    #[arg(long, value_name = "N", requires = "name_template", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(crate) count: Option<u64>,
    /// Name template for --count: one {n}, or {n:0W} for numbers zero-padded to W
    /// digits, e.g. 'robot-{n:05}'.
    #[arg(long, value_name = "TEMPLATE")]
    pub(crate) name_template: Option<String>,
    /// First number for --count.
    #[arg(long, default_value_t = 1)]
    pub(crate) start: u64,
    /// Names, one per line, or CSV with a `name` column and optional subject columns.
    #[arg(long, value_name = "FILE", conflicts_with = "csr")]
    pub(crate) names: Option<PathBuf>,
    /// Sign a device-generated CSR (with --name); the key never leaves the device.
    // `requires` alone accepts any member of the group "source" (clap #4707).
    #[arg(long, value_name = "FILE", requires = "name", conflicts_with_all = ["count", "names"])]
    pub(crate) csr: Option<PathBuf>,
    /// Key type of generated device keys.
    #[arg(long, value_enum, default_value_t = KeyAlg::EcP256)]
    pub(crate) key: KeyAlg,
    /// Validity in days (never beyond the CA's own expiry).
    #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) days: u32,
    /// Subject attributes added to every device, e.g. "O=Acme,OU=Line 3".
    #[arg(long, value_name = "SUBJECT")]
    pub(crate) subject_extra: Option<String>,
    /// File names written per device.
    #[arg(long, value_enum, default_value_t = Layout::Default)]
    pub(crate) layout: Layout,
    /// Worker threads (default: all cores; with a kms CA, enough to reach --sign-rate).
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// CA signatures per second at most (default: the store's limit, 300/s for
    /// ECC and 500/s for RSA keys in KMS; none for file and pkcs11).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) sign_rate: Option<u32>,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Re-issue devices that already exist.
    #[arg(long)]
    pub(crate) force: bool,
}

/// What the flags ask for, checked before any file is read or written.
struct Asked {
    specs: Vec<DeviceSpec>,
    subject_extra: Vec<Attribute>,
    keys: KeySource,
}

impl Args {
    /// The flags' one conversion: the devices, the subject attributes they
    /// all get, and where their keys come from (generated, or a CSR's).
    fn asked(&self) -> Result<Asked, CliError> {
        let subject_extra = match &self.subject_extra {
            Some(text) => {
                subject::parse(text).map_err(|e| CliError::invalid("--subject-extra", e))?
            }
            None => Vec::new(),
        };
        if subject_extra.iter().any(|attr| attr.name == "CN") {
            return Err(CliError::invalid(
                "--subject-extra",
                "CN is the device name; give it with --name",
            ));
        }
        if self.csr.is_some() && self.name.is_none() {
            return Err(CliError::invalid(
                "--csr",
                "a CSR holds one device's key: give it with --name NAME (not with --count or --names)",
            ));
        }
        let specs = device_specs(self)?;
        let keys = match &self.csr {
            Some(path) => KeySource::Csr(csr::read(path)?),
            None => KeySource::Generate(self.key),
        };
        Ok(Asked {
            specs,
            subject_extra,
            keys,
        })
    }
}

/// `jitr device issue --ca DIR --out OUTDIR (--name | --count | --names | --csr)`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    // Everything is validated before the first file is written.
    let Asked {
        specs,
        subject_extra,
        keys,
    } = a.asked()?;
    let ca = CaDir::load(&a.ca, "--ca", &a.unlock.unlock(aws))?;
    ca.check_valid_now("--ca")?;
    let sign_rate = a.sign_rate.or(ca.issuer.key().default_sign_rate());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = jobs(a.jobs, ca.issuer.key().store(), sign_rate, cores)?;
    let batch = Batch {
        ca: &ca,
        out: &a.out,
        keys,
        days: a.days,
        subject_extra,
        layout: a.layout,
        force: a.force,
        jobs,
        progress: out.chatty(),
        sign_rate,
    };
    let outcome = batch.run(specs)?;
    out.result(&outcome, || text(&outcome));
    if outcome.interrupted {
        return Err(CliError::Interrupted);
    }
    Ok(())
}

/// The report as text.
fn text(outcome: &Outcome) -> String {
    let rate = outcome.issued.len() as f64 / outcome.seconds.max(1e-9);
    let mut text = format!(
        "issued {} device(s) in {:.2} s ({:.0}/s), skipped {} already present",
        outcome.issued.len(),
        outcome.seconds,
        rate,
        outcome.skipped.len()
    );
    if !outcome.skipped.is_empty() {
        text += &format!(" ({}; --force re-issues)", some_names(&outcome.skipped));
    }
    if !outcome.made_by_another_run.is_empty() {
        text += &format!(
            ", skipped {} made meanwhile by another run ({}; theirs were kept)",
            outcome.made_by_another_run.len(),
            some_names(&outcome.made_by_another_run)
        );
    }
    if let Some(limit) = outcome.sign_rate {
        text += &format!(
            "\nsigned in key store {} at {rate:.0} signatures/s ({:.0}% of the {limit}/s limit)",
            outcome.key_store.name(),
            100.0 * rate / f64::from(limit)
        );
    }
    text += &format!(
        "\nmanifest: {} ({} devices)\n",
        outcome.manifest, outcome.manifest_rows
    );
    if outcome.issued.len() == 1 {
        let row = &outcome.issued[0];
        text += &format!("  {}: certificate id {}\n", row.name, row.certificate_id);
    }
    text
}

/// The first few of `names`, and how many more.
fn some_names(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{}, and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Workers per core beyond which more threads only cost memory and time:
/// local signing is CPU-bound.
const JOBS_PER_CORE: usize = 4;

/// Workers for a remote store, where each signature waits on the network.
const MAX_REMOTE_JOBS: usize = 128;

/// `--jobs`: at least 1, at most [`JOBS_PER_CORE`] per core (for KMS, up to
/// [`MAX_REMOTE_JOBS`]); by default [`default_jobs`].
fn jobs(
    requested: Option<usize>,
    store: StoreKind,
    sign_rate: Option<u32>,
    cores: usize,
) -> Result<usize, CliError> {
    let cores = cores.max(1);
    let max = match store {
        StoreKind::Kms => MAX_REMOTE_JOBS.max(JOBS_PER_CORE * cores),
        _ => JOBS_PER_CORE * cores,
    };
    match requested {
        None => Ok(default_jobs(store, sign_rate, cores)),
        Some(0) => Err(CliError::invalid("--jobs", "must be at least 1")),
        Some(n) if n > max => Err(CliError::invalid(
            "--jobs",
            format!("{n} is more than {max} ({JOBS_PER_CORE} per core on this machine's {cores}, {MAX_REMOTE_JOBS} for KMS; more threads only cost time)"),
        )),
        Some(n) => Ok(n),
    }
}

/// Worker threads: one per core for local signing; for a remote store, where
/// each signature waits on the network, enough to keep the rate's worth of
/// requests in flight (up to 200 ms each), capped at [`MAX_REMOTE_JOBS`].
fn default_jobs(store: StoreKind, sign_rate: Option<u32>, cores: usize) -> usize {
    match (store, sign_rate) {
        (StoreKind::Kms, Some(rate)) => (rate as usize / 5).clamp(cores, MAX_REMOTE_JOBS),
        _ => cores,
    }
}

fn device_specs(a: &Args) -> Result<Vec<DeviceSpec>, CliError> {
    if let Some(count) = a.count {
        let template = Template::parse(a.name_template.as_deref().unwrap_or_default())?;
        return names::from_template(&template, a.start, count);
    }
    if let Some(path) = &a.names {
        return names::from_file(path);
    }
    let name = a.name.as_deref().expect("clap requires one source");
    names::check_name(name, "--name")?;
    Ok(vec![DeviceSpec::named(name)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_default_to_the_cores_and_are_capped() {
        let file = StoreKind::File;
        assert_eq!(jobs(None, file, None, 2).unwrap(), 2);
        assert_eq!(jobs(None, file, None, 0).unwrap(), 1);
        assert_eq!(jobs(Some(1), file, None, 2).unwrap(), 1);
        assert_eq!(jobs(Some(8), file, None, 2).unwrap(), 8);
        let err = jobs(Some(9), file, None, 2).unwrap_err().to_string();
        assert!(err.starts_with("--jobs: 9 is more than 8"), "{err}");
        assert!(jobs(Some(5000), file, None, 2).is_err());
        assert!(jobs(Some(0), file, None, 2)
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        assert_eq!(jobs(Some(100), StoreKind::Kms, Some(300), 2).unwrap(), 100);
        assert!(jobs(Some(129), StoreKind::Kms, Some(300), 2).is_err());
    }

    #[test]
    fn workers_follow_the_store() {
        // (store, sign rate, cores, expected workers)
        let cases = [
            (StoreKind::File, None, 2, 2),
            (StoreKind::File, Some(10), 8, 8),
            (StoreKind::Pkcs11, None, 4, 4),
            (StoreKind::Kms, Some(300), 2, 60),
            (StoreKind::Kms, Some(500), 2, 100),
            (StoreKind::Kms, Some(5), 4, 4),
            (StoreKind::Kms, Some(100_000), 2, 128),
        ];
        for (store, rate, cores, expected) in cases {
            assert_eq!(
                default_jobs(store, rate, cores),
                expected,
                "{store:?} {rate:?} {cores}"
            );
        }
    }
}
