//! `jitr ca show DIR|ID`: a registered CA as AWS IoT describes it.

use jitr_core::aws::AwsOptions;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::flags::CaTarget;
use crate::pki::ca_files;
use crate::report::Output;

/// `jitr ca show DIR|ID`.
pub(crate) fn run(t: &CaTarget, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let (id, _) = ca_files::resolve(&t.target)?;
    let cloud = Cloud::connect(aws)?;
    let state = cloud.registered_ca(&id)?;
    out.result(&state, || format!("CA {id}\n{}", state.text()));
    Ok(())
}
