//! `jitr endpoint`: the account's ATS data endpoint, where devices connect.

use crate::args::Global;
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::report::Output;

/// DescribeEndpoint(iot:Data-ATS): the address and the region it is in.
pub fn describe(global: &Global) -> Result<(String, String), CliError> {
    let cloud = Cloud::connect(&global.aws())?;
    let answer = cloud
        .block_on(
            cloud
                .iot
                .describe_endpoint()
                .endpoint_type("iot:Data-ATS")
                .send(),
        )
        .map_err(|e| CliError::aws("describing the iot:Data-ATS endpoint", cloud.error(e)))?;
    let address = answer.endpoint_address().unwrap_or_default().to_string();
    Ok((address, cloud.region.clone()))
}

pub fn endpoint(global: &Global, out: &Output) -> Result<(), CliError> {
    let (address, region) = describe(global)?;
    let report =
        serde_json::json!({ "endpoint": address, "type": "iot:Data-ATS", "region": region });
    out.result(&report, || format!("{address}\n"));
    Ok(())
}
