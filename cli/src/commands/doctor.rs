//! `jitr doctor`: why a device did not register. Reads the device's files,
//! the issuing CA and the device's certificate in AWS IoT, the deployed
//! stack and the data endpoint, and prints one line per check (the checks
//! themselves are pure, in `crate::doctor`; the deployment's are gathered
//! in `doctor_deployment.rs`, the TLS probe is `doctor_endpoint.rs`).

use std::path::{Path, PathBuf};

use jitr_core::CertFacts;
use rustls::pki_types::CertificateDer;
use serde::Serialize;

use super::doctor_deployment::{self, Deployed};
use super::doctor_endpoint::endpoint_check;
use crate::args::{CaTarget, DoctorArgs, Global};
use crate::cloud::{CaView, Cloud};
use crate::doctor::ca::{ca_checks, CaSeen};
use crate::doctor::certificate::{certificate_check, LogReading, Recorded};
use crate::doctor::device::{self, issued, DeviceFiles};
use crate::doctor::fixes::{shell_word, Known};
use crate::doctor::function::point_pending_at;
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

/// The devices' directory OUTDIR: the parent of DEVICE_DIR, or of
/// `--cert`'s directory (`OUTDIR/NAME/device.crt`, and a rotated-out
/// `OUTDIR/NAME/previous/device.crt`).
fn devices_dir<'a>(device: Option<&'a Path>, cert: Option<&'a Path>) -> Option<&'a Path> {
    if let Some(d) = device {
        return d.parent();
    }
    let dir = cert?.parent()?;
    let dir = match dir.file_name() {
        Some(n) if n == "previous" => dir.parent()?,
        _ => dir,
    };
    dir.parent()
}

/// `jitr connect` for the device doctor looked at, with its endpoint and
/// broker CA when given.
fn connect_command(
    device: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
    endpoint: Option<&str>,
    ca_file: Option<&Path>,
) -> String {
    let word = |p: &Path| shell_word(&p.display().to_string());
    let mut out = "jitr connect".to_string();
    match (device, cert) {
        (Some(d), _) => out.push_str(&format!(" {}", word(d))),
        (None, Some(c)) => {
            let key = key.map_or("KEY_FILE".to_string(), word);
            out.push_str(&format!(" --cert {} --key {key}", word(c)));
        }
        (None, None) => out.push_str(" DEVICE_DIR"),
    }
    if let Some(e) = endpoint {
        out.push_str(&format!(" --endpoint {}", shell_word(e)));
    }
    if let Some(f) = ca_file {
        out.push_str(&format!(" --ca-file {}", word(f)));
    }
    out
}

/// `jitr device revoke`'s record of the certificate, searched where it
/// writes one: the CA directory's `revoked.json` (--ca DIR, else every CA
/// directory beside OUTDIR or in the current directory whose `ca.crt`
/// issued `leaf`), then OUTDIR's. A list that cannot be read is a WARN
/// naming the file and the field, and the search goes on.
fn recorded_revocation(
    a: &DoctorArgs,
    ca_dir: Option<&PathBuf>,
    leaf: Option<&[u8]>,
    id: &str,
) -> (Option<Recorded>, Vec<Check>) {
    let out_dir = devices_dir(a.device.as_deref(), a.cert.as_deref());
    let mut dirs: Vec<PathBuf> = ca_dir.cloned().into_iter().collect();
    let bases = [out_dir.and_then(Path::parent), Some(Path::new("."))];
    for base in bases.into_iter().flatten() {
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let Ok(entries) = std::fs::read_dir(base) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        found.sort();
        for dir in found {
            let signed = leaf.is_some_and(|leaf| {
                std::fs::read_to_string(dir.join(ca_dir::CERT_FILE))
                    .ok()
                    .and_then(|pem| first_der(&pem))
                    .is_some_and(|ca| issued(leaf, &ca))
            });
            if signed && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.extend(out_dir.map(Path::to_path_buf));
    let mut warnings = Vec::new();
    for dir in dirs {
        let file = dir.join(crate::lifecycle::revoked::FILE);
        match crate::lifecycle::revoked::read(&file) {
            Ok(list) => {
                if let Some(r) = list.into_iter().find(|r| r.certificate_id == id) {
                    let found = Recorded {
                        revoked_at: r.revoked_at,
                        file: file.display().to_string(),
                    };
                    return (Some(found), warnings);
                }
            }
            Err(e) => warnings.push(Check::warn(
                "revocation list",
                format!("{e}: its revocations were not read"),
                format!(
                    "correct {} (as `jitr device revoke` writes it) or move it away",
                    file.display()
                ),
            )),
        }
    }
    (None, warnings)
}

/// Its issuer's revocation of the CA (`revoked.json`, when): that of a CA
/// directory beside the CA's own (else in the current directory) whose
/// certificate issued it and which lists it.
fn issuer_revocation(issuer: &Issuer, dev: Option<&Device>) -> Option<(String, String)> {
    let own = match &issuer.dir {
        Some(dir) => first_der(&std::fs::read_to_string(dir.join(ca_dir::CERT_FILE)).ok()?),
        None => dev
            .and_then(|d| {
                d.chain
                    .iter()
                    .zip(&d.ders)
                    .find(|(c, _)| c.certificate_id == issuer.id)
            })
            .map(|(_, der)| der.clone())
            .or_else(|| issuer.view.as_ref().and_then(|v| first_der(&v.pem))),
    }?;
    let serial = CertFacts::from_der(&own).ok()?.serial_hex;
    let base = match issuer.dir.as_ref().and_then(|d| d.parent()) {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    for dir in std::fs::read_dir(&base).ok()?.flatten().map(|e| e.path()) {
        let Some(der) = std::fs::read_to_string(dir.join(ca_dir::CERT_FILE))
            .ok()
            .and_then(|pem| first_der(&pem))
        else {
            continue;
        };
        if der == own || !issued(&own, &der) {
            continue;
        }
        let file = dir.join(crate::lifecycle::revoked::FILE);
        let Ok(list) = crate::lifecycle::revoked::read(&file) else {
            continue;
        };
        let hit = list.into_iter().find(|r| {
            r.certificate_id == issuer.id
                || r.serial.trim_start_matches('0') == serial.trim_start_matches('0')
        });
        if let Some(r) = hit {
            return Some((file.display().to_string(), r.revoked_at));
        }
    }
    None
}

/// The CA's checks, with registered CAs above it in the device's chain.
fn ca_lines(
    issuer: &Issuer,
    dev: Option<&Device>,
    cloud: &Cloud,
    account: Option<&str>,
    known: &Known,
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
    let revocation = issuer_revocation(issuer, dev);
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
            known,
            revoked_by_issuer: revocation.as_ref().map(|(f, w)| (f.as_str(), w.as_str())),
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
            // HOST or HOST:PORT (an emulator's), used as given, as connect does.
            Ok(address) => crate::mqtt::host_port(&address, 8883)
                .map_err(|e| CliError::invalid("the iot:Data-ATS endpoint AWS IoT described", e))?,
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

/// The values fixes carry: where the calls went, as given.
fn known(global: &Global, cloud: &Cloud) -> Known {
    Known {
        region: cloud.region.clone(),
        profile: global.profile.clone(),
        endpoint_url: cloud.config().endpoint_url().map(str::to_string),
    }
}

/// The fix of an ACTIVE certificate attached to no thing: attach it to its
/// thing (the certificate's CN), made first when missing.
fn thing_fix(cloud: &Cloud, known: &Known, id: &str, leaf: &CertFacts) -> Option<String> {
    let thing = leaf.common_name()?;
    let arn = cloud.device_certificate(id).ok()??.arn;
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

/// Every check that needs AWS, in report order after the device's.
fn cloud_checks(
    a: &DoctorArgs,
    dev: Option<&Device>,
    cloud: &Cloud,
    known: &Known,
    now: i64,
) -> Result<(Vec<Check>, Deployed), CliError> {
    let mut checks = Vec::new();
    // STS may be denied to the caller: then the account is not compared.
    let account = cloud.account().ok();
    let (issuer, mismatch) = issuing_ca(a, dev, cloud)?;
    checks.extend(mismatch);
    match &issuer {
        Some(issuer) => checks.extend(ca_lines(
            issuer,
            dev,
            cloud,
            account.as_deref(),
            known,
            now,
        )?),
        None if dev.is_some() => checks.push(Check::fail(
            "ca registered",
            "no registered CA issued the device certificate",
            "register the CA that signed the device: jitr ca register CA_DIR",
        )),
        None => {}
    }
    let leaf = dev.and_then(|d| d.chain.first());
    let deployed = doctor_deployment::gather(
        cloud,
        &doctor_deployment::Asked {
            stack: a.stack.as_deref(),
            ca_id: issuer.as_ref().map(|i| i.id.as_str()),
            ca_target: issuer.as_ref().map(|i| i.target.as_str()),
            leaf,
            known,
            since: a.since as i64,
        },
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
        let (recorded, unread) = match &view {
            Some(v) if v.status == "REVOKED" => recorded_revocation(
                a,
                issuer.as_ref().and_then(|i| i.dir.as_ref()),
                dev.and_then(|d| d.ders.first()).map(Vec::as_slice),
                id,
            ),
            _ => (None, Vec::new()),
        };
        checks.extend(unread);
        let mut check = certificate_check(
            id,
            target,
            view.as_ref(),
            now,
            a.stranded_after as i64,
            logs.as_ref(),
            recorded.as_ref(),
        );
        // certificate.rs names the commands; their complete forms are known here.
        if check.fix.as_deref() == Some(format!("jitr reconcile --ca {target}").as_str()) {
            check.fix = Some(deployed.reconcile.clone());
        }
        if let Some(fix) = check.fix.as_mut() {
            let connect = connect_command(
                a.device.as_deref(),
                a.cert.as_deref(),
                a.key.as_deref(),
                a.endpoint.as_deref(),
                a.ca_file.as_deref(),
            );
            *fix = fix.replace("jitr connect DEVICE_DIR", &connect);
        }
        // provision leaves an INACTIVE certificate alone (it may be retired on purpose).
        if view.as_ref().is_some_and(|v| v.status == "INACTIVE") {
            check.fix = Some(format!(
                "unless it was retired on purpose (a rotation retires the old certificate): {}",
                known.aws(&format!(
                    "iot update-certificate --certificate-id {id} --new-status ACTIVE"
                ))
            ));
        }
        let unattached = view
            .as_ref()
            .is_some_and(|v| v.status == "ACTIVE" && v.things.is_empty());
        if unattached {
            check.fix = thing_fix(cloud, known, id, leaf).or(check.fix);
        }
        point_pending_at(&mut check, deployed.function_failure.as_deref());
        checks.push(check);
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
            let known = known(global, &cloud);
            let (lines, deployed) = cloud_checks(a, dev.as_ref(), &cloud, &known, now)?;
            aws_lines = lines;
            aws_lines.extend(deployed.checks);
            aws_lines.push(endpoint_line(a, dev.as_ref(), &cloud)?);
            // Every command a check names goes where doctor's calls went.
            for c in &mut aws_lines {
                c.fix = c.fix.as_deref().map(|f| known.complete(f));
            }
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
            ca_dir: a
                .ca
                .as_deref()
                .filter(|t| Path::new(t).join(ca_dir::CERT_FILE).is_file()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_fix_names_the_device_doctor_looked_at() {
        let p = |s: &'static str| Some(Path::new(s));
        assert_eq!(
            connect_command(
                p("devices/robot 2"),
                None,
                None,
                Some("127.0.0.1:8883"),
                p("b.crt")
            ),
            "jitr connect 'devices/robot 2' --endpoint 127.0.0.1:8883 --ca-file b.crt"
        );
        assert_eq!(
            connect_command(None, p("d.crt"), p("d.key"), None, None),
            "jitr connect --cert d.crt --key d.key"
        );
    }

    #[test]
    fn the_devices_directory_is_found_from_the_device_or_its_certificate() {
        let p = |s: &'static str| Some(Path::new(s));
        let cases = [
            (p("out/robot-2"), None, p("out")),
            (None, p("out/robot-2/device.crt"), p("out")),
            (None, p("out/robot-2/previous/device.crt"), p("out")),
            (None, p("/x/out/robot-2/previous/device.crt"), p("/x/out")),
        ];
        for (device, cert, want) in cases {
            assert_eq!(devices_dir(device, cert), want, "{device:?} {cert:?}");
        }
    }
}
