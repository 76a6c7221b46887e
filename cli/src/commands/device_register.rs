//! `jitr device register CERT... [--ca DIR | --without-ca] [--activate]`:
//! registering device certificates directly, the path without JITR.
//! Requests are spaced to the API limit; each file gets an outcome.

use jitr_core::ratelimit::RateLimiter;
use serde::Serialize;

use crate::args::{DeviceRegisterArgs, Global};
use crate::cloud::ca::Registered as Registration;
use crate::cloud::certificate::{certificate_status_name, DeviceRegistration};
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files;
use crate::pki::ca_dir;
use crate::report::Output;

#[derive(Debug, Serialize)]
struct Registered {
    file: String,
    certificate_id: String,
    /// registered | already registered | failed
    outcome: &'static str,
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

pub fn register(a: &DeviceRegisterArgs, global: &Global, out: &Output) -> Result<(), CliError> {
    // Read everything first: a bad file stops the run before any API call.
    let ca_pem = match &a.ca {
        Some(dir) => {
            let path = dir.join(ca_dir::CERT_FILE);
            let (der, _) = ca_dir::read_ca_certificate(&files::read(&path)?, &path)?;
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

    let cloud = Cloud::connect(&global.aws())?;
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

    let count = |o: &str| results.iter().filter(|r| r.outcome == o).count();
    let (new, known, failed) = (
        count("registered"),
        count("already registered"),
        count("failed"),
    );
    out.result(&results, || {
        let mut text = String::new();
        for r in &results {
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
        text + &format!("{new} registered, {known} already registered, {failed} failed\n")
    });
    if failed > 0 {
        return Err(CliError::Partial(format!(
            "{failed} of {} certificate(s) failed to register",
            results.len()
        )));
    }
    Ok(())
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
        Ok(Registration::New) => done("registered", certificate_status_name(activate), None),
        Ok(Registration::Already) => {
            // Already there: bring it to the requested state if --activate asked for more.
            if activate {
                limiter.acquire().await;
                if let Err(e) = cloud.activate_certificate(&item.id).await {
                    return done("failed", "", Some(e.to_string()));
                }
            }
            match cloud.certificate_status(&item.id).await {
                Ok(s) => done("already registered", &s, None),
                Err(e) => done("failed", "", Some(e.to_string())),
            }
        }
        Err(e) => done("failed", "", Some(e.to_string())),
    }
}
