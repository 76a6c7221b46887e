//! `jitr ca deregister DIR|ID`: a registered CA deactivated and deleted
//! (device certificates already registered are unaffected); safe to run twice.

use jitr_core::aws::AwsOptions;

use crate::cloud::ca::status_name;
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::flags::CaTarget;
use crate::pki::{ca_files, ca_write};
use crate::report::{outcomes, Output};

outcomes! {
    /// What deregistering did.
    enum Outcome {
        Deregistered => "deregistered",
        NotRegistered => "was not registered",
    }
}

/// `jitr ca deregister DIR|ID`: deactivate, then delete.
pub(crate) fn run(t: &CaTarget, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let (id, dir) = ca_files::resolve(&t.target)?;
    let cloud = Cloud::connect(aws)?;
    let outcome = match cloud.ca_state(&id)? {
        None => Outcome::NotRegistered,
        Some(state) => {
            if state.status == status_name(true) {
                cloud.set_ca(&id, Some(false), None)?;
            }
            match cloud
                .delete_ca(&id)
                .map_err(|e| CliError::aws(format!("deleting CA {id}"), e))?
            {
                true => Outcome::Deregistered,
                false => Outcome::NotRegistered,
            }
        }
    };
    if let Some(dir) = dir {
        // Only this CA's record, under the directory's lock.
        let _ = ca_write::record(&dir, &id, None);
    }
    let report = serde_json::json!({ "certificate_id": id, "outcome": outcome });
    out.result(&report, || {
        format!("CA {id} {outcome} (device certificates already registered are unaffected)\n")
    });
    Ok(())
}
