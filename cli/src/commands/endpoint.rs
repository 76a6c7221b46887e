//! `jitr endpoint`: the account's ATS data endpoint, where devices connect.

use jitr_core::aws::AwsOptions;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::report::Output;

/// `jitr endpoint`: DescribeEndpoint(iot:Data-ATS), with the region it is in.
pub(crate) fn run(aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let cloud = Cloud::connect(aws)?;
    let address = cloud
        .data_endpoint()
        .map_err(|e| CliError::aws("describing the iot:Data-ATS endpoint", e))?;
    let region = cloud.region.clone();
    let report =
        serde_json::json!({ "endpoint": address, "type": "iot:Data-ATS", "region": region });
    out.result(&report, || format!("{address}\n"));
    Ok(())
}
