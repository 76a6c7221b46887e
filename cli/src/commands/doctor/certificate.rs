//! `jitr doctor`'s device certificate in AWS IoT: its check (pure, in
//! `crate::doctor::certificate`), with what it is judged by read here, and
//! its fix completed with the commands doctor knows in full.

use jitr_core::iot::CertStatus;
use jitr_core::CertFacts;

use super::deployment::Deployed;
use super::device::{recorded_revocation, Device, Named};
use super::issuer::Issuer;
use crate::cloud::Cloud;
use crate::doctor::certificate::{certificate_check, LogReading};
use crate::doctor::fixes::Known;
use crate::doctor::function::point_pending_at;
use crate::doctor::Check;
use crate::error::CliError;

/// What the certificate's check is judged and fixed with.
pub(super) struct Around<'a> {
    pub cloud: &'a Cloud,
    pub known: &'a Known,
    pub dev: Option<&'a Device>,
    pub issuer: Option<&'a Issuer>,
    pub deployed: &'a Deployed,
    pub named: &'a Named<'a>,
    /// `--stranded-after`, seconds.
    pub stranded_after: i64,
}

/// The device certificate's check, after any warnings about revocation
/// lists that could not be read.
pub(super) fn certificate_lines(
    leaf: &CertFacts,
    around: &Around,
    now: i64,
) -> Result<Vec<Check>, CliError> {
    let Around {
        cloud,
        known,
        dev,
        issuer,
        deployed,
        named,
        stranded_after,
    } = around;
    let id = &leaf.certificate_id;
    let view = cloud
        .describe_certificate(id)
        .map_err(|e| CliError::aws("describing the device certificate", e))?;
    let logs = match (&view, &deployed.function) {
        (Some(v), Some(f)) if v.status == CertStatus::Revoked => {
            Some(function_logs(cloud, &f.log_group, id))
        }
        _ => None,
    };
    let target = issuer.map_or("CA_DIR|ID", |i| i.target.as_str());
    let (recorded, mut checks) = match &view {
        Some(v) if v.status == CertStatus::Revoked => recorded_revocation(
            named,
            issuer.and_then(|i| i.dir.as_ref()),
            dev.and_then(|d| d.ders.first()).map(Vec::as_slice),
            id,
        ),
        _ => (None, Vec::new()),
    };
    let mut check = certificate_check(
        id,
        target,
        view.as_ref(),
        now,
        *stranded_after,
        logs.as_ref(),
        recorded.as_ref(),
    );
    // certificate.rs names the commands; their complete forms are known here.
    if check.fix.as_deref() == Some(format!("jitr reconcile --ca {target}").as_str()) {
        check.fix = Some(deployed.reconcile.clone());
    }
    if let Some(fix) = check.fix.as_mut() {
        *fix = fix.replace("jitr connect DEVICE_DIR", &named.connect());
    }
    // provision leaves an INACTIVE certificate alone (it may be retired on purpose).
    if view
        .as_ref()
        .is_some_and(|v| v.status == CertStatus::Inactive)
    {
        check.fix = Some(format!(
            "unless it was retired on purpose (a rotation retires the old certificate): {}",
            known.aws(&format!(
                "iot update-certificate --certificate-id {id} --new-status ACTIVE"
            ))
        ));
    }
    let unattached = view
        .as_ref()
        .is_some_and(|v| v.status == CertStatus::Active && v.things.is_empty());
    if unattached {
        check.fix = thing_fix(cloud, known, id, leaf).or(check.fix);
    }
    point_pending_at(
        &mut check,
        view.as_ref().map(|v| &v.status),
        deployed.function_failure.as_deref(),
    );
    checks.push(check);
    Ok(checks)
}

/// What the function logged about a certificate (read only when it is REVOKED).
fn function_logs(cloud: &Cloud, group: &str, id: &str) -> LogReading {
    match cloud.log_lines(group, id) {
        Ok(Some(lines)) => LogReading::Lines {
            group: group.to_string(),
            lines,
        },
        Ok(None) => LogReading::NoGroup(group.to_string()),
        Err(e) => LogReading::Unreadable(e.to_string()),
    }
}

/// The fix of an ACTIVE certificate attached to no thing: attach it to its
/// thing (the certificate's CN), made first when missing.
fn thing_fix(cloud: &Cloud, known: &Known, id: &str, leaf: &CertFacts) -> Option<String> {
    let thing = leaf.common_name()?;
    let arn = cloud.device_certificate(id).ok()??.certificate_arn;
    let attach = known.aws(&format!(
        "iot attach-thing-principal --thing-name {thing} --principal {arn}"
    ));
    Some(match cloud.thing_principals(thing) {
        Ok(Some(_)) => attach,
        _ => format!(
            "create the thing ({}), then: {attach}",
            known.aws(&format!("iot create-thing --thing-name {thing}"))
        ),
    })
}
