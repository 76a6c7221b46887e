//! `jitr ca auto-registration enable | disable DIR|ID`: JITR on or off for a
//! registered CA.

use clap::ValueEnum;
use jitr_core::aws::AwsOptions;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::flags::CaTarget;
use crate::pki::ca_files;
use crate::report::Output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    Enable,
    Disable,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[arg(value_enum)]
    pub(crate) state: OnOff,
    #[command(flatten)]
    pub(crate) ca: CaTarget,
}

/// `jitr ca auto-registration enable|disable DIR|ID`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let (id, dir) = ca_files::resolve(&a.ca.target)?;
    let cloud = Cloud::connect(aws)?;
    let enable = a.state == OnOff::Enable;
    let (after, updated) = cloud.change_ca(&id, dir.as_deref(), None, Some(enable))?;
    out.result(&after, || after.change_text(&id, updated));
    Ok(())
}
