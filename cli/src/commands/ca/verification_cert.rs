//! `jitr ca verification-cert DIR --code CODE --out FILE`: the proof of
//! possession AWS IoT asks for before it registers a CA.

use std::path::PathBuf;

use jitr_core::aws::AwsOptions;
use serde::Serialize;

use crate::error::CliError;
use crate::files::NewFile;
use crate::flags::UnlockArgs;
use crate::pki::ca_dir::{self, CaDir};
use crate::report::Output;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The CA directory.
    pub(crate) dir: PathBuf,
    /// The account's registration code (aws iot get-registration-code).
    #[arg(long)]
    pub(crate) code: String,
    /// Where to write the verification certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
    /// Replace an existing FILE (never one of a CA directory's own files).
    #[arg(long)]
    pub(crate) force: bool,
}

/// `jitr ca verification-cert DIR --code CODE --out FILE`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    ca_dir::check_output(&a.out, "--out", a.force)?;
    let ca = CaDir::load(&a.dir, "CA directory", &a.unlock.unlock(aws))?;
    ca.check_valid_now("CA directory")?;
    let pem = ca.verification_certificate(&a.code)?;
    ca_dir::write_output(NewFile::public(a.out.clone(), pem), "--out", a.force)?;
    #[derive(Serialize)]
    struct Report<'a> {
        out: String,
        code: &'a str,
        ca_certificate_id: &'a str,
    }
    let report = Report {
        out: a.out.display().to_string(),
        code: &a.code,
        ca_certificate_id: ca.certificate_id(),
    };
    out.result(&report, || {
        format!(
            "wrote verification certificate (CN={}) to {}\n",
            a.code,
            a.out.display()
        )
    });
    Ok(())
}
