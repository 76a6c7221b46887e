//! `jitr ca list`: the CA certificates registered in the account.

use jitr_core::aws::AwsOptions;
use jitr_core::ratelimit::RateLimiter;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::report::Output;

/// `jitr ca list`: ListCACertificates, then DescribeCACertificate per CA
/// for what the list lacks (auto-registration, mode).
pub(crate) fn run(aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let cloud = Cloud::connect(aws)?;
    let listed = cloud
        .list_cas()
        .map_err(|e| CliError::aws("listing CA certificates", e))?;
    // DescribeCACertificate allows 10 requests per second per account.
    let pacer = RateLimiter::new(10);
    let mut rows = Vec::with_capacity(listed.len());
    for c in listed {
        pacer.wait();
        // A CA deregistered since the listing has nothing more to say.
        let state = cloud.ca_state(&c.certificate_id)?;
        let (auto, mode) = state.map_or((String::new(), String::new()), |s| {
            (s.auto_registration, s.mode)
        });
        rows.push(serde_json::json!({
            "certificate_id": c.certificate_id,
            "certificate_arn": c.arn,
            "status": c.status,
            "auto_registration": auto,
            "mode": mode,
            "created": c.created,
        }));
    }
    out.result(&rows, || {
        let mut text = format!("{} CA certificate(s) in {}\n", rows.len(), cloud.region);
        if !rows.is_empty() {
            text += &format!(
                "  {:<64}  {:<8}  {:<17}  {:<8}  CREATED\n",
                "CERTIFICATE ID", "STATUS", "AUTO-REGISTRATION", "MODE"
            );
        }
        for r in &rows {
            let field = |k: &str| r[k].as_str().unwrap_or("").to_string();
            text += &format!(
                "  {:<64}  {:<8}  {:<17}  {:<8}  {}\n",
                field("certificate_id"),
                field("status"),
                field("auto_registration"),
                field("mode"),
                field("created")
            );
        }
        text
    });
    Ok(())
}
