//! `jitr doctor`: why a device did not register. Reads the device's files,
//! the issuing CA and the device's certificate in AWS IoT, the deployed
//! stack and the data endpoint, and prints one line per check (the checks
//! themselves are pure, in `crate::doctor`; the deployment's are gathered
//! in `doctor_deployment.rs`, the TLS probe is `doctor_endpoint.rs`).

use std::path::PathBuf;

use jitr_core::CertFacts;
use rustls::pki_types::CertificateDer;
use serde::Serialize;

use super::doctor_deployment::{self, Deployed};
use super::doctor_endpoint::endpoint_check;
use crate::args::{CaTarget, DoctorArgs, Global};
use crate::cloud::{CaView, Cloud};
use crate::doctor::ca::{ca_checks, CaSeen};
use crate::doctor::certificate::{certificate_check, LogReading};
use crate::doctor::device::{self, issued, DeviceFiles};
use crate::doctor::{Check, Status};
use crate::error::CliError;
use crate::files::read;
use crate::issue::layout::Layout;
use crate::mqtt::BrokerTrust;
use crate::pki::{amazon, ca_dir, keys};
use crate::report::Output;

#[derive(Serialize)]
struct Report {
    checks: Vec<Check>,
    ok: bool,
}

/// The device as read from disk.
pub(super) struct Device {
    pub bundle: String,
    pub chain: Vec<CertFacts>,
    pub ders: Vec<Vec<u8>>,
    pub key: Option<(rcgen::KeyPair, bool)>,
}

/// The issuing CA as found.
struct Issuer {
    id: String,
    /// The `DIR|ID` fixes name.
    target: String,
    validity: Option<(i64, i64)>,
    view: Option<CaView>,
    /// The CA directory, when --ca named one.
    dir: Option<PathBuf>,
}

/// The bundle and key paths from DEVICE_DIR or --cert/--key.
fn device_paths(a: &DoctorArgs) -> Result<Option<(PathBuf, Option<PathBuf>)>, CliError> {
    if let Some(cert) = &a.cert {
        return Ok(Some((cert.clone(), a.key.clone())));
    }
    let Some(dir) = &a.device else {
        return Ok(None);
    };
    Layout::all()
        .into_iter()
        .map(|l| l.files())
        .map(|f| (dir.join(f.bundle), dir.join(f.key)))
        .find(|(bundle, _)| bundle.is_file())
        .map(|(bundle, key)| Some((bundle, key.is_file().then_some(key))))
        .ok_or_else(|| {
            CliError::invalid(
                dir.display(),
                "no device certificate bundle (expected device-and-ca.crt or certificate.pem.crt)",
            )
        })
}

fn read_device(a: &DoctorArgs) -> Result<Option<Device>, CliError> {
    let Some((bundle, key)) = device_paths(a)? else {
        return Ok(None);
    };
    let what = bundle.display().to_string();
    let ders =
        jitr_core::pem::certificates(&read(&bundle)?).map_err(|e| CliError::invalid(&what, e))?;
    let chain = ders
        .iter()
        .map(|d| CertFacts::from_der(d).map_err(|e| CliError::invalid(&what, e)))
        .collect::<Result<Vec<_>, _>>()?;
    let key = match key {
        Some(path) => {
            let (pair, _) = keys::load_private_key(&read(&path)?, &path.display().to_string())?;
            let matches = chain
                .first()
                .is_some_and(|c| keys::matches_certificate(&pair, &c.public_key));
            Some((pair, matches))
        }
        None => None,
    };
    Ok(Some(Device {
        bundle: what,
        chain,
        ders,
        key,
    }))
}

/// The issuing CA: from --ca, else the bundle's second certificate, else
/// the registered CA whose certificate issued the device's. A --ca that did
/// not issue the device is a failed check, and the one that did is found.
fn issuing_ca(
    a: &DoctorArgs,
    dev: Option<&Device>,
    cloud: &Cloud,
) -> Result<(Option<Issuer>, Option<Check>), CliError> {
    let Some(t) = &a.ca else {
        return Ok((found_issuer(dev, cloud)?, None));
    };
    let (id, dir) = super::ca_aws::resolve(&CaTarget { target: t.clone() })?;
    let (der, validity) = match &dir {
        Some(dir) => {
            let path = dir.join(ca_dir::CERT_FILE);
            let (der, f) = ca_dir::read_ca_certificate(&read(&path)?, &path)?;
            (Some(der), Some((f.not_before, f.not_after)))
        }
        None => (None, None),
    };
    let view = describe_ca(cloud, &id)?;
    let der = der.or_else(|| view.as_ref().and_then(|v| first_der(&v.pem)));
    let named = Issuer {
        id,
        target: t.clone(),
        validity,
        view,
        dir,
    };
    let leaf = dev.and_then(|d| Some((d, d.ders.first()?)));
    match (leaf, der) {
        (Some((d, leaf)), Some(der)) if !issued(leaf, &der) => {
            let mismatch = not_the_issuer(d, &named, &der);
            Ok((found_issuer(dev, cloud)?, Some(mismatch)))
        }
        _ => Ok((Some(named), None)),
    }
}

/// The FAIL for a --ca that did not sign the device, naming both.
fn not_the_issuer(dev: &Device, named: &Issuer, der: &[u8]) -> Check {
    let subject = CertFacts::from_der(der)
        .map(|f| f.subject_text)
        .unwrap_or_default();
    let issuer = dev.chain.first().map_or("", |c| c.issuer_text.as_str());
    Check::fail(
        "ca issued device",
        format!(
            "the device certificate in {} (issuer \"{issuer}\") was not issued by --ca {} (\"{subject}\", CA id {})",
            dev.bundle, named.target, named.id
        ),
        "pass the CA that signed the device with --ca, or leave --ca out to have it found",
    )
}

fn describe_ca(cloud: &Cloud, id: &str) -> Result<Option<CaView>, CliError> {
    cloud
        .describe_ca(id)
        .map_err(|e| CliError::aws(format!("describing CA {id}"), e))
}

/// The first certificate of a PEM text, DER.
fn first_der(pem: &str) -> Option<Vec<u8>> {
    jitr_core::pem::certificates(pem.as_bytes())
        .ok()
        .and_then(|c| c.into_iter().next())
}

/// The CA that issued the device: the bundle's second certificate, else the
/// registered CA whose certificate did.
fn found_issuer(dev: Option<&Device>, cloud: &Cloud) -> Result<Option<Issuer>, CliError> {
    let Some(dev) = dev.filter(|d| !d.ders.is_empty()) else {
        return Ok(None);
    };
    let found = |id: &str, facts: &CertFacts, view| Issuer {
        id: id.to_string(),
        target: id.to_string(),
        validity: Some((facts.not_before, facts.not_after)),
        view,
        dir: None,
    };
    if let Some(ca) = dev
        .chain
        .get(1)
        .filter(|_| issued(&dev.ders[0], &dev.ders[1]))
    {
        let view = describe_ca(cloud, &ca.certificate_id)?;
        return Ok(Some(found(&ca.certificate_id, ca, view)));
    }
    let listed = cloud
        .list_cas()
        .map_err(|e| CliError::aws("listing CA certificates", e))?;
    for id in listed.into_iter().map(|c| c.certificate_id) {
        let Some(view) = describe_ca(cloud, &id)? else {
            continue;
        };
        let Some(der) = first_der(&view.pem) else {
            continue;
        };
        let Ok(f) = CertFacts::from_der(&der) else {
            continue;
        };
        if issued(&dev.ders[0], &der) {
            return Ok(Some(found(&id, &f, Some(view))));
        }
    }
    Ok(None)
}

/// (account, region) the CA directory's `aws.json` records, if it has one.
fn recorded_place(dir: Option<&PathBuf>) -> Option<(String, String)> {
    let text = std::fs::read(dir?.join(super::ca_aws::AWS_FILE)).ok()?;
    let state: super::ca_aws::CaState = serde_json::from_slice(&text).ok()?;
    Some((state.account, state.region))
}

/// The CA's checks, with registered CAs above it in the device's chain.
fn ca_lines(
    issuer: &Issuer,
    dev: Option<&Device>,
    cloud: &Cloud,
    account: Option<&str>,
    now: i64,
) -> Result<Vec<Check>, CliError> {
    let mut above = Vec::new();
    for ca in dev.iter().flat_map(|d| d.chain.iter().skip(2)) {
        if cloud
            .describe_ca(&ca.certificate_id)
            .map_err(|e| CliError::aws("describing a CA", e))?
            .is_some()
        {
            above.push(ca.certificate_id.clone());
        }
    }
    let recorded = recorded_place(issuer.dir.as_ref());
    Ok(ca_checks(
        &CaSeen {
            id: &issuer.id,
            target: &issuer.target,
            view: issuer.view.as_ref(),
            validity: issuer.validity,
            registered_above: &above,
            region: &cloud.region,
            account,
            recorded: recorded.as_ref().map(|(a, r)| (a.as_str(), r.as_str())),
        },
        now,
    ))
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

/// The endpoint check: --endpoint, else the account's iot:Data-ATS endpoint.
fn endpoint_line(a: &DoctorArgs, dev: Option<&Device>, cloud: &Cloud) -> Result<Check, CliError> {
    let (host, port) = match &a.endpoint {
        Some(e) => super::connect::parse_endpoint(e)?,
        None => match cloud.data_endpoint() {
            Ok(host) => (host, 8883),
            Err(e) => {
                return Ok(Check::fail(
                    "endpoint",
                    format!("describing iot:Data-ATS: {e}"),
                    "pass --endpoint HOST[:PORT]",
                ))
            }
        },
    };
    let roots = match &a.ca_file {
        Some(p) => jitr_core::pem::certificates(&read(p)?)
            .map_err(|e| CliError::invalid(p.display(), e))?,
        None => amazon::roots(),
    };
    let trust = BrokerTrust {
        roots: roots.into_iter().map(CertificateDer::from).collect(),
        pin_exact: a.ca_file.is_some(),
    };
    let client = dev.and_then(|d| d.key.as_ref().filter(|(_, m)| *m).map(|(k, _)| (d, k)));
    Ok(endpoint_check(&host, port, trust, client))
}

/// Every check that needs AWS, in report order after the device's.
fn cloud_checks(
    a: &DoctorArgs,
    dev: Option<&Device>,
    cloud: &Cloud,
    now: i64,
) -> Result<(Vec<Check>, Deployed), CliError> {
    let mut checks = Vec::new();
    // STS may be denied to the caller: then the account is not compared.
    let account = cloud.account().ok();
    let (issuer, mismatch) = issuing_ca(a, dev, cloud)?;
    checks.extend(mismatch);
    match &issuer {
        Some(issuer) => checks.extend(ca_lines(issuer, dev, cloud, account.as_deref(), now)?),
        None if dev.is_some() => checks.push(Check::fail(
            "ca registered",
            "no registered CA issued the device certificate",
            "jitr ca register CA_DIR (the CA that signed the device)",
        )),
        None => {}
    }
    let leaf = dev.and_then(|d| d.chain.first());
    let deployed = doctor_deployment::gather(
        cloud,
        a.stack.as_deref(),
        issuer.as_ref().map(|i| i.id.as_str()),
        leaf,
    )?;
    if let Some(leaf) = leaf {
        let id = &leaf.certificate_id;
        let view = cloud
            .describe_certificate(id)
            .map_err(|e| CliError::aws("describing the device certificate", e))?;
        let logs = match (&view, &deployed.function) {
            (Some(v), Some(f)) if v.status == "REVOKED" => {
                Some(function_logs(cloud, &f.log_group, id))
            }
            _ => None,
        };
        let target = issuer.as_ref().map_or("CA_DIR|ID", |i| i.target.as_str());
        checks.push(certificate_check(
            id,
            target,
            view.as_ref(),
            now,
            a.stranded_after as i64,
            logs.as_ref(),
        ));
    }
    Ok((checks, deployed))
}

pub fn doctor(a: &DoctorArgs, global: &Global, out: &Output) -> Result<(), CliError> {
    let now = jitr_core::clock::unix_seconds();
    let dev = read_device(a)?;
    let mut checks = Vec::new();
    let mut aws_lines = Vec::new();
    let mut pattern = None;
    match Cloud::connect(&global.aws()) {
        Ok(cloud) => {
            let (lines, deployed) = cloud_checks(a, dev.as_ref(), &cloud, now)?;
            aws_lines = lines;
            aws_lines.extend(deployed.checks);
            aws_lines.push(endpoint_line(a, dev.as_ref(), &cloud)?);
            pattern = deployed
                .config
                .and_then(|c| c.ok())
                .map(|c| c.thing_name_pattern);
        }
        Err(e) => checks.push(Check::fail(
            "aws access",
            e.to_string(),
            "set AWS_PROFILE/--profile and --region (aws sts get-caller-identity must work)",
        )),
    }
    if let Some(d) = &dev {
        let files = DeviceFiles {
            bundle: &d.bundle,
            chain: &d.chain,
            ders: &d.ders,
            key_matches: d.key.as_ref().map(|(_, m)| *m),
        };
        checks.extend(device::checks(&files, now, pattern.as_ref()));
    }
    checks.extend(aws_lines);
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let report = Report {
        ok: failed == 0,
        checks,
    };
    out.result(&report, || {
        let mut text: Vec<String> = report.checks.iter().map(Check::line).collect();
        let warned = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        text.push(format!(
            "{} check(s): {failed} failed, {warned} warning(s)",
            report.checks.len()
        ));
        text.join("\n")
    });
    if failed > 0 {
        return Err(CliError::ChecksFailed(failed));
    }
    Ok(())
}
