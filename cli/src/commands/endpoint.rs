//! `jitr endpoint`: the account's ATS data endpoint, where devices connect.

use crate::args::Global;
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::report::Output;

/// DescribeEndpoint(iot:Data-ATS): the address and the region it is in.
pub(crate) fn describe(global: &Global) -> Result<(String, String), CliError> {
    let cloud = Cloud::connect(&global.aws())?;
    let address = cloud
        .data_endpoint()
        .map_err(|e| CliError::aws("describing the iot:Data-ATS endpoint", e))?;
    Ok((address, cloud.region.clone()))
}

pub(crate) fn endpoint(global: &Global, out: &Output) -> Result<(), CliError> {
    let (address, region) = describe(global)?;
    let report =
        serde_json::json!({ "endpoint": address, "type": "iot:Data-ATS", "region": region });
    out.result(&report, || format!("{address}\n"));
    Ok(())
}
