//! `jitr endpoint`: the account's ATS data endpoint, where devices connect.

use crate::args::Global;
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::report::Output;

/// DescribeEndpoint(iot:Data-ATS).
pub fn endpoint(global: &Global, out: &Output) -> Result<(), CliError> {
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
    let report =
        serde_json::json!({ "endpoint": address, "type": "iot:Data-ATS", "region": cloud.region });
    out.result(&report, || format!("{address}\n"));
    Ok(())
}
