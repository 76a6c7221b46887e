//! `jitr provision ID`: the Lambda's provisioning (jitr-core) of one
//! auto-registered certificate, run from an administrator's machine.

use jitr_core::allow_list_table::AllowListTable;
use jitr_core::aws::AwsOptions;
use jitr_core::provision::{self, Gates};

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::flags::ProvisioningSettings;
use crate::report::{provisioned, Output};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The certificate id (64 hex digits).
    pub(crate) certificate_id: String,
    #[command(flatten)]
    pub(crate) settings: ProvisioningSettings,
}

/// `jitr provision CERTIFICATE_ID`.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let id = a.certificate_id.to_ascii_lowercase();
    if !jitr_core::rules::is_certificate_id(&id) {
        return Err(CliError::invalid(
            "CERTIFICATE_ID",
            format!(
                "\"{}\" is not a certificate id (64 hex digits)",
                a.certificate_id
            ),
        ));
    }
    let config = a.settings.config(|name| std::env::var(name).ok())?;
    let cloud = Cloud::connect(aws)?;
    // Under JITR_ADMISSION=allow-list the stack's list decides, as in the function.
    let list = AllowListTable::for_config(cloud.config(), &config);
    let outcome = cloud.block_on(provision::provision(
        &cloud.provisioning_api(),
        Gates::none().with_list(&list),
        &config,
        &id,
        jitr_core::clock::unix_seconds(),
    ));
    out.result(&outcome, || provisioned(&outcome));
    if outcome.failed() {
        return Err(CliError::Partial(format!(
            "provisioning {id} failed: {}",
            outcome.reason.unwrap_or_default()
        )));
    }
    Ok(())
}
