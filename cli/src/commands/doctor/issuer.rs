//! `jitr doctor`'s issuing CA: named by `--ca`, else found from the
//! device's chain or among the registered CAs, and its checks.

use std::path::PathBuf;

use jitr_core::CertFacts;

use super::device::{first_der, Device};
use crate::cloud::ca::CaState;
use crate::cloud::ca::CaView;
use crate::cloud::Cloud;
use crate::doctor::ca::{ca_checks, CaSeen};
use crate::doctor::device::issued;
use crate::doctor::fixes::Known;
use crate::doctor::Check;
use crate::error::CliError;
use crate::files::read;
use crate::pki::ca_files::{self, AWS_FILE, CERT_FILE};
use crate::pki::revoked;

/// The issuing CA as found.
pub(super) struct Issuer {
    pub id: String,
    /// The `DIR|ID` fixes name.
    pub target: String,
    pub validity: Option<(i64, i64)>,
    pub view: Option<CaView>,
    /// The CA directory, when --ca named one.
    pub dir: Option<PathBuf>,
}

/// The issuing CA: from --ca, else the bundle's second certificate, else
/// the registered CA whose certificate issued the device's. A --ca that did
/// not issue the device is a failed check, and the one that did is found.
pub(super) fn issuing_ca(
    ca: Option<&str>,
    dev: Option<&Device>,
    cloud: &Cloud,
) -> Result<(Option<Issuer>, Option<Check>), CliError> {
    let Some(t) = ca else {
        return Ok((found_issuer(dev, cloud)?, None));
    };
    let (id, dir) = ca_files::resolve(t)?;
    let (der, validity) = match &dir {
        Some(dir) => {
            let path = dir.join(CERT_FILE);
            let (der, f) = ca_files::read_ca_certificate(&read(&path)?, &path)?;
            (Some(der), Some((f.not_before, f.not_after)))
        }
        None => (None, None),
    };
    let view = describe_ca(cloud, &id)?;
    let der = der.or_else(|| view.as_ref().and_then(|v| first_der(&v.pem)));
    let named = Issuer {
        id,
        target: t.to_string(),
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
    let text = std::fs::read(dir?.join(AWS_FILE)).ok()?;
    let state: CaState = serde_json::from_slice(&text).ok()?;
    Some((state.account, state.region))
}

/// Its issuer's revocation of the CA (`revoked.json`, when): that of a CA
/// directory beside the CA's own (else in the current directory) whose
/// certificate issued it and which lists it.
fn issuer_revocation(issuer: &Issuer, dev: Option<&Device>) -> Option<(String, String)> {
    let own = match &issuer.dir {
        Some(dir) => first_der(&std::fs::read_to_string(dir.join(CERT_FILE)).ok()?),
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
        let Some(der) = std::fs::read_to_string(dir.join(CERT_FILE))
            .ok()
            .and_then(|pem| first_der(&pem))
        else {
            continue;
        };
        if der == own || !issued(&own, &der) {
            continue;
        }
        let file = dir.join(revoked::FILE);
        let Ok(list) = revoked::read(&file) else {
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
pub(super) fn ca_lines(
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
