//! `jitr ca activate | deactivate DIR|ID`: a registered CA set ACTIVE or
//! INACTIVE (one the other's mirror); devices already registered keep working.

use jitr_core::aws::AwsOptions;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::flags::CaTarget;
use crate::pki::ca_files;
use crate::report::Output;

/// `jitr ca activate DIR|ID` (`active`), `jitr ca deactivate DIR|ID`.
pub(crate) fn run(
    t: &CaTarget,
    active: bool,
    aws: &AwsOptions,
    out: &Output,
) -> Result<(), CliError> {
    let (id, dir) = ca_files::resolve(&t.target)?;
    let cloud = Cloud::connect(aws)?;
    let (after, updated) = cloud.change_ca(&id, dir.as_deref(), Some(active), None)?;
    out.result(&after, || after.change_text(&id, updated));
    Ok(())
}
