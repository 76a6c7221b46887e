//! `jitr ca register DIR`: the CA registered with AWS IoT, its proof of
//! possession made with its key (or SNI-only without), brought to the status
//! and auto-registration asked for and confirmed; safe to run twice.

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use jitr_core::aws::AwsOptions;
use serde::Serialize;

use crate::cloud::ca::{auto_registration_name, status_name, CaRegistration, CaState, Registered};
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files;
use crate::flags::UnlockArgs;
use crate::pki::ca_dir::CaDir;
use crate::pki::ca_files;
use crate::report::{outcomes, Output};

/// How AWS IoT is told the CA is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RegisterMode {
    /// Proof of possession: a verification certificate with the registration code as CN.
    Default,
    /// No proof of possession; devices must send SNI (the CA may be in several accounts).
    SniOnly,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The CA directory (ca.crt, and ca.key for the verification certificate).
    pub(crate) dir: PathBuf,
    #[arg(long, value_enum, default_value_t = RegisterMode::Default)]
    pub(crate) mode: RegisterMode,
    /// Leave auto-registration (JITR) off.
    #[arg(long)]
    pub(crate) no_auto_registration: bool,
    /// Register the CA INACTIVE.
    #[arg(long)]
    pub(crate) inactive: bool,
    #[command(flatten)]
    pub(crate) unlock: UnlockArgs,
}

outcomes! {
    /// What registering did.
    enum Outcome {
        Registered => "registered",
        AlreadyRegistered => "already registered",
    }
}

#[derive(Serialize)]
struct RegisterReport {
    dir: String,
    outcome: Outcome,
    #[serde(flatten)]
    state: CaState,
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

/// `jitr ca register DIR`: proof of possession, registration, auto-registration confirmed.
pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let cert_path = a.dir.join(ca_files::CERT_FILE);
    // Everything local first: the certificate must be acceptable to AWS IoT
    // (checked before the key is even read), and the key must sign the proof.
    let (der, facts) = ca_files::read_ca_certificate(&files::read(&cert_path)?, &cert_path)?;
    check_locally(&der, &cert_path)?;
    let ca = match a.mode {
        RegisterMode::Default => Some(CaDir::load(&a.dir, "DIR", &a.unlock.unlock(aws))?),
        RegisterMode::SniOnly => {
            // No proof of possession: no key is opened, so no secret is read.
            a.unlock.unlock(aws).refuse_any(
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
    let id = facts.certificate_id.clone();

    let cloud = Cloud::connect(aws)?;
    let outcome = match cloud.ca_state(&id)? {
        Some(_) => Outcome::AlreadyRegistered,
        // `ca` (the key, for the proof) is loaded in default mode only.
        None => register_new(&cloud, ca.as_ref(), &der, &cert_path, active, auto)?,
    };
    let state = confirm(&cloud, &id, active, auto)?;
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

/// RegisterCACertificate, with the proof of possession `ca` signs (none:
/// SNI-only). A CA registered meanwhile by another run is no error.
fn register_new(
    cloud: &Cloud,
    ca: Option<&CaDir>,
    der: &[u8],
    cert_path: &Path,
    active: bool,
    auto: bool,
) -> Result<Outcome, CliError> {
    let verification = match ca {
        Some(ca) => {
            let code = cloud
                .registration_code()
                .map_err(|e| CliError::aws("getting the registration code", e))?;
            Some(ca.verification_certificate(&code)?)
        }
        None => None,
    };
    let registration = CaRegistration {
        pem: &jitr_core::pem::encode_certificate(der),
        verification,
        active,
        auto_registration: auto,
    };
    // Registered meanwhile (another run): brought to the requested state by [`confirm`].
    match cloud
        .register_ca(&registration)
        .map_err(|e| CliError::aws(format!("registering {}", cert_path.display()), e))?
    {
        Registered::New => Ok(Outcome::Registered),
        Registered::Already => Ok(Outcome::AlreadyRegistered),
    }
}

/// Brings the registered CA to the requested state and confirms what AWS reports.
fn confirm(cloud: &Cloud, id: &str, active: bool, auto: bool) -> Result<CaState, CliError> {
    let (status, auto_name) = (status_name(active), auto_registration_name(auto));
    let vanished = || unconfirmed(id, "AWS IoT does not describe it after registration");
    let mut state = cloud.ca_state(id)?.ok_or_else(vanished)?;
    if state.status != status || state.auto_registration != auto_name {
        cloud.set_ca(id, Some(active), Some(auto))?;
        state = cloud.ca_state(id)?.ok_or_else(vanished)?;
    }
    if state.status != status || state.auto_registration != auto_name {
        return Err(unconfirmed(
            id,
            format!(
                "AWS reports {} / auto-registration {}, expected {status} / {auto_name}",
                state.status, state.auto_registration
            ),
        ));
    }
    Ok(state)
}
