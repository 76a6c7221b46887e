//! `jitr ca register | list | show | activate | deactivate | auto-registration | deregister`:
//! a CA's life in AWS IoT, one command each, every one safe to run twice.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::args::{AutoRegistrationArgs, CaRegisterArgs, CaTarget, Global, OnOff, RegisterMode};
use crate::cloud::ca::{auto_registration_name, status_name, CaRegistration, Registered};
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files;
use crate::pki::ca_dir::{self, CaDir};
use crate::pki::ca_write;
use crate::report::Output;

pub use crate::pki::ca_write::AWS_FILE;

/// A registered CA as AWS IoT describes it (and as `aws.json` records it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaState {
    pub certificate_id: String,
    pub certificate_arn: String,
    pub status: String,
    pub auto_registration: String,
    pub mode: String,
    pub region: String,
    pub account: String,
}

impl CaState {
    /// Writes `DIR/aws.json` (replacing an older record) under the CA
    /// directory's lock, if DIR still holds this CA.
    fn record(&self, dir: &Path) -> Result<(), CliError> {
        let json = serde_json::to_string_pretty(self).expect("serialisable") + "\n";
        ca_write::record(dir, &self.certificate_id, Some(json.into_bytes()))
    }

    fn text(&self) -> String {
        format!(
            "  certificate id:    {}\n  arn:               {}\n  status:            {}\n  auto-registration: {}\n  mode:              {}\n",
            self.certificate_id, self.certificate_arn, self.status, self.auto_registration, self.mode
        )
    }
}

/// The account id inside an ARN (`arn:aws:iot:REGION:ACCOUNT:...`).
fn account_of(arn: &str) -> String {
    arn.split(':').nth(4).unwrap_or_default().to_string()
}

/// DescribeCACertificate; `None` when the CA is not registered.
fn describe(cloud: &Cloud, id: &str) -> Result<Option<CaState>, CliError> {
    let view = cloud
        .describe_ca(id)
        .map_err(|e| CliError::aws(format!("describing CA {id}"), e))?;
    Ok(view.map(|v| CaState {
        account: account_of(&v.arn),
        certificate_id: v.certificate_id,
        certificate_arn: v.arn,
        status: v.status,
        auto_registration: v.auto_registration,
        mode: v.mode,
        region: cloud.region.clone(),
    }))
}

/// UpdateCACertificate with whichever of status (active?) and auto-registration is given.
fn update(
    cloud: &Cloud,
    id: &str,
    active: Option<bool>,
    auto: Option<bool>,
) -> Result<(), CliError> {
    cloud
        .update_ca(id, active, auto)
        .map_err(|e| CliError::aws(format!("updating CA {id}"), e))
}

/// AWS IoT did not confirm a change it accepted (the CA vanished, or
/// another run changed it meanwhile).
fn unconfirmed(id: &str, problem: impl std::fmt::Display) -> CliError {
    CliError::Unconfirmed(format!("registering CA {id}: {problem}"))
}

/// Refuses a CA AWS IoT or TLS peers would refuse, before any API call.
fn check_locally(der: &[u8], path: &Path) -> Result<(), CliError> {
    let now = jitr_core::clock::unix_seconds();
    let (_, results) = crate::lint::lint(&[der.to_vec()], None, now)
        .map_err(|e| CliError::invalid(path.display(), e))?;
    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| format!("{}: {}", r.rule, r.detail))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::invalid(
            path.display(),
            format!(
                "not registered, AWS IoT would refuse it ({})",
                failures.join("; ")
            ),
        ))
    }
}

#[derive(Serialize)]
struct RegisterReport {
    dir: String,
    /// "registered" or "already registered".
    outcome: &'static str,
    #[serde(flatten)]
    state: CaState,
}

/// `jitr ca register DIR`: proof of possession, registration, auto-registration confirmed.
pub fn register(a: &CaRegisterArgs, global: &Global, out: &Output) -> Result<(), CliError> {
    let cert_path = a.dir.join(ca_dir::CERT_FILE);
    // Everything local first: the certificate must be acceptable to AWS IoT
    // (checked before the key is even read), and the key must sign the proof.
    let (der, facts) = ca_dir::read_ca_certificate(&files::read(&cert_path)?, &cert_path)?;
    check_locally(&der, &cert_path)?;
    let ca = match a.mode {
        RegisterMode::Default => Some(CaDir::load(&a.dir, "DIR", &a.unlock.unlock(global))?),
        RegisterMode::SniOnly => {
            // No proof of possession: no key is opened, so no secret is read.
            a.unlock.unlock(global).refuse_any(
                "`ca register --mode sni-only`",
                "it registers without proof of possession and opens no CA key",
            )?;
            None
        }
    };
    if ca.as_ref().is_some_and(|ca| ca.cert_der != der) {
        return Err(CliError::invalid(
            cert_path.display(),
            "was replaced while being read (another run wrote this CA directory); run again",
        ));
    }
    let (active, auto) = (!a.inactive, !a.no_auto_registration);
    let (status, auto_name) = (status_name(active), auto_registration_name(auto));
    let id = facts.certificate_id.clone();

    let cloud = Cloud::connect(&global.aws())?;
    let outcome = match describe(&cloud, &id)? {
        Some(_) => "already registered",
        None => {
            // `ca` (the key, for the proof) is loaded in default mode only.
            let verification = match &ca {
                Some(ca) => {
                    let code = cloud
                        .registration_code()
                        .map_err(|e| CliError::aws("getting the registration code", e))?;
                    Some(super::ca::verification_certificate(ca, &code)?)
                }
                None => None,
            };
            let registration = CaRegistration {
                pem: &jitr_core::pem::encode_certificate(&der),
                verification,
                active,
                auto_registration: auto,
            };
            // Registered meanwhile (another run): brought to the requested state below.
            match cloud
                .register_ca(&registration)
                .map_err(|e| CliError::aws(format!("registering {}", cert_path.display()), e))?
            {
                Registered::New => "registered",
                Registered::Already => "already registered",
            }
        }
    };

    // Bring it to the requested state and confirm what AWS reports.
    let vanished = || unconfirmed(&id, "AWS IoT does not describe it after registration");
    let mut state = describe(&cloud, &id)?.ok_or_else(vanished)?;
    if state.status != status || state.auto_registration != auto_name {
        update(&cloud, &id, Some(active), Some(auto))?;
        state = describe(&cloud, &id)?.ok_or_else(vanished)?;
    }
    if state.status != status || state.auto_registration != auto_name {
        return Err(unconfirmed(
            &id,
            format!(
                "AWS reports {} / auto-registration {}, expected {status} / {auto_name}",
                state.status, state.auto_registration
            ),
        ));
    }
    state.record(&a.dir)?;
    let report = RegisterReport {
        dir: a.dir.display().to_string(),
        outcome,
        state,
    };
    out.result(&report, || {
        format!(
            "{} CA {} ({})\n{}caCertificateId for the infrastructure: {}\n",
            report.outcome,
            facts.subject_text,
            report.dir,
            report.state.text(),
            report.state.certificate_id
        )
    });
    Ok(())
}

/// The certificate id a `DIR|ID` argument names, and the directory if one was given.
pub fn resolve(target: &CaTarget) -> Result<(String, Option<PathBuf>), CliError> {
    let t = &target.target;
    if jitr_core::rules::is_certificate_id(t) && !Path::new(t).exists() {
        return Ok((t.to_ascii_lowercase(), None));
    }
    let dir = PathBuf::from(t);
    let cert_path = dir.join(ca_dir::CERT_FILE);
    if !cert_path.exists() {
        return Err(CliError::invalid(
            t,
            "is neither a CA directory (with ca.crt) nor a certificate id (64 hex digits)",
        ));
    }
    let (_, facts) = ca_dir::read_ca_certificate(&files::read(&cert_path)?, &cert_path)?;
    Ok((facts.certificate_id, Some(dir)))
}

fn registered(cloud: &Cloud, id: &str) -> Result<CaState, CliError> {
    describe(cloud, id)?.ok_or_else(|| {
        CliError::invalid(
            format!("CA {id}"),
            format!(
                "not registered in this account and region ({})",
                cloud.region
            ),
        )
    })
}

/// `jitr ca show DIR|ID`.
pub fn show(t: &CaTarget, global: &Global, out: &Output) -> Result<(), CliError> {
    let (id, _) = resolve(t)?;
    let cloud = Cloud::connect(&global.aws())?;
    let state = registered(&cloud, &id)?;
    out.result(&state, || format!("CA {id}\n{}", state.text()));
    Ok(())
}

/// `jitr ca list`: ListCACertificates, then DescribeCACertificate per CA
/// for what the list lacks (auto-registration, mode).
pub fn list(global: &Global, out: &Output) -> Result<(), CliError> {
    let cloud = Cloud::connect(&global.aws())?;
    let listed = cloud
        .list_cas()
        .map_err(|e| CliError::aws("listing CA certificates", e))?;
    // DescribeCACertificate allows 10 requests per second per account.
    let pacer = crate::issue::pace::Pacer::new(10);
    let mut rows = Vec::with_capacity(listed.len());
    for c in listed {
        pacer.wait();
        // A CA deregistered since the listing has nothing more to say.
        let state = describe(&cloud, &c.certificate_id)?;
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

/// `jitr ca activate|deactivate DIR|ID`.
pub fn set_status(
    t: &CaTarget,
    active: bool,
    global: &Global,
    out: &Output,
) -> Result<(), CliError> {
    change(t, global, out, Some(active), None)
}

/// `jitr ca auto-registration enable|disable DIR|ID`.
pub fn auto_registration(
    a: &AutoRegistrationArgs,
    global: &Global,
    out: &Output,
) -> Result<(), CliError> {
    change(&a.ca, global, out, None, Some(a.state == OnOff::Enable))
}

fn change(
    t: &CaTarget,
    global: &Global,
    out: &Output,
    active: Option<bool>,
    auto: Option<bool>,
) -> Result<(), CliError> {
    let (id, dir) = resolve(t)?;
    let cloud = Cloud::connect(&global.aws())?;
    let before = registered(&cloud, &id)?;
    let differs = active.is_some_and(|a| status_name(a) != before.status)
        || auto.is_some_and(|a| auto_registration_name(a) != before.auto_registration);
    if differs {
        update(&cloud, &id, active, auto)?;
    }
    let after = registered(&cloud, &id)?;
    if let Some(dir) = dir.filter(|d| d.join(AWS_FILE).exists()) {
        after.record(&dir)?;
    }
    out.result(&after, || {
        format!(
            "CA {id} {}\n{}",
            if differs {
                "updated"
            } else {
                "already in that state"
            },
            after.text()
        )
    });
    Ok(())
}

/// `jitr ca deregister DIR|ID`: deactivate, then delete.
pub fn deregister(t: &CaTarget, global: &Global, out: &Output) -> Result<(), CliError> {
    let (id, dir) = resolve(t)?;
    let cloud = Cloud::connect(&global.aws())?;
    let outcome = match describe(&cloud, &id)? {
        None => "was not registered",
        Some(state) => {
            if state.status == status_name(true) {
                update(&cloud, &id, Some(false), None)?;
            }
            match cloud
                .delete_ca(&id)
                .map_err(|e| CliError::aws(format!("deleting CA {id}"), e))?
            {
                true => "deregistered",
                false => "was not registered",
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
