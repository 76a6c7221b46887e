//! `jitr device register CERT... [--ca DIR | --without-ca] [--activate]`:
//! registering device certificates directly, the path without JITR.
//! Requests are spaced to the API limit; each file gets an outcome.

use std::path::PathBuf;

use jitr_core::aws::AwsOptions;
use jitr_core::ratelimit::RateLimiter;
use serde::Serialize;

use crate::cloud::ca::Registered as Registration;
use crate::cloud::certificate::{certificate_status_name, DeviceRegistration};
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files;
use crate::pki::ca_files;
use crate::report::{outcomes, Output};

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("ca_source").args(["ca", "without_ca"]))]
pub(crate) struct Args {
    /// Device certificate files (device.crt or a bundle; the first certificate is registered).
    #[arg(required = true, value_name = "CERT")]
    pub(crate) certs: Vec<PathBuf>,
    /// The CA directory that issued them (its certificate is sent along).
    #[arg(long, value_name = "DIR")]
    pub(crate) ca: Option<PathBuf>,
    /// Register without a CA (multi-account registration).
    #[arg(long)]
    pub(crate) without_ca: bool,
    /// Register them ACTIVE (default: INACTIVE).
    #[arg(long)]
    pub(crate) activate: bool,
    /// Requests per second (default: 10, the RegisterCertificate limit).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) rate: u32,
}

outcomes! {
    /// One certificate's outcome.
    enum Outcome {
        Registered => "registered",
        AlreadyRegistered => "already registered",
        Failed => "failed",
    }
}

#[derive(Debug, Serialize)]
struct Registered {
    file: String,
    certificate_id: String,
    outcome: Outcome,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One certificate to register: its file and PEM (first certificate of the file).
struct Item {
    file: String,
    pem: String,
    id: String,
}

pub(crate) fn run(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    // Read everything first: a bad file stops the run before any API call.
    let ca_pem = match &a.ca {
        Some(dir) => {
            let path = dir.join(ca_files::CERT_FILE);
            let (der, _) = ca_files::read_ca_certificate(&files::read(&path)?, &path)?;
            Some(jitr_core::pem::encode_certificate(&der))
        }
        None => None,
    };
    let mut items = Vec::new();
    for path in &a.certs {
        let ders = jitr_core::pem::certificates(&files::read(path)?)
            .map_err(|e| CliError::invalid(path.display(), e))?;
        let facts = jitr_core::CertFacts::from_der(&ders[0])
            .map_err(|e| CliError::invalid(path.display(), e))?;
        if facts.is_ca() {
            return Err(CliError::invalid(
                path.display(),
                "is a CA certificate; register CAs with `jitr ca register`",
            ));
        }
        items.push(Item {
            file: path.display().to_string(),
            pem: jitr_core::pem::encode_certificate(&ders[0]),
            id: facts.certificate_id,
        });
    }

    let cloud = Cloud::connect(aws)?;
    let limiter = RateLimiter::new(a.rate);
    let results: Vec<Registered> = cloud.block_on(limiter.run_all(&items, |item| {
        register_one(
            &cloud,
            item,
            ca_pem.as_deref(),
            a.without_ca,
            a.activate,
            &limiter,
        )
    }));

    let failed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    out.result(&results, || text(&results));
    if failed > 0 {
        return Err(CliError::Partial(format!(
            "{failed} of {} certificate(s) failed to register",
            results.len()
        )));
    }
    Ok(())
}

/// The report as text: a line per certificate, then the counts.
fn text(results: &[Registered]) -> String {
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let mut text = String::new();
    for r in results {
        text += &format!(
            "  {:<18} {}  {}  {}{}\n",
            r.outcome,
            r.certificate_id,
            r.status,
            r.file,
            r.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    text + &format!(
        "{} registered, {} already registered, {} failed\n",
        count(Outcome::Registered),
        count(Outcome::AlreadyRegistered),
        count(Outcome::Failed)
    )
}

async fn register_one(
    cloud: &Cloud,
    item: &Item,
    ca_pem: Option<&str>,
    without_ca: bool,
    activate: bool,
    limiter: &RateLimiter,
) -> Registered {
    let registration = DeviceRegistration {
        pem: &item.pem,
        ca_pem,
        without_ca,
        active: activate,
    };
    let done = |outcome, status: &str, error: Option<String>| Registered {
        file: item.file.clone(),
        certificate_id: item.id.clone(),
        outcome,
        status: status.to_string(),
        error,
    };
    match cloud.register_certificate(&registration).await {
        Ok(Registration::New) => done(Outcome::Registered, certificate_status_name(activate), None),
        Ok(Registration::Already) => {
            // Already there: bring it to the requested state if --activate asked for more.
            if activate {
                limiter.acquire().await;
                if let Err(e) = cloud.activate_certificate(&item.id).await {
                    return done(Outcome::Failed, "", Some(e.to_string()));
                }
            }
            match cloud.certificate_status(&item.id).await {
                Ok(s) => done(Outcome::AlreadyRegistered, s.as_str(), None),
                Err(e) => done(Outcome::Failed, "", Some(e.to_string())),
            }
        }
        Err(e) => done(Outcome::Failed, "", Some(e.to_string())),
    }
}
