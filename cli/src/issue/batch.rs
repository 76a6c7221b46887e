//! Issuing devices in parallel. Each device is written into this run's
//! staging directory and moved into place whole ([`super::staging`]), so an
//! interrupted or killed run leaves complete device directories or none, and
//! concurrent runs never replace each other's devices without --force;
//! Ctrl-C stops new work, lets running devices finish and still records the
//! manifest.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Instant;

use jitr_core::ratelimit::RateLimiter;
use rayon::prelude::*;

use super::csr::CsrKey;
use super::layout::Files;
use super::manifest::{self, Row};
use super::names::DeviceSpec;
use super::staging::{Placed, Staging};
use crate::error::CliError;
use crate::files::{self, DirLock};
use crate::issue::layout::Layout;
use crate::pki::ca_dir::CaDir;
use crate::pki::keys::KeyAlg;
use crate::pki::profile;
use crate::pki::subject::{self, Attribute};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// Where each device's key comes from.
pub(crate) enum KeySource {
    /// A fresh key per device, written beside its certificate.
    Generate(KeyAlg),
    /// The public key of a device-generated CSR; no key file is written.
    Csr(CsrKey),
}

/// One issuance run: the CA, the output directory and the per-device options.
pub(crate) struct Batch<'a> {
    pub(crate) ca: &'a CaDir,
    pub(crate) out: &'a Path,
    pub(crate) keys: KeySource,
    pub(crate) days: u32,
    pub(crate) subject_extra: Vec<Attribute>,
    pub(crate) layout: Layout,
    pub(crate) force: bool,
    pub(crate) jobs: usize,
    pub(crate) progress: bool,
    /// CA signatures per second at most (a remote key store's quota).
    pub(crate) sign_rate: Option<u32>,
}

/// What a run did.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Outcome {
    pub(crate) issued: Vec<Row>,
    /// Devices that already existed and were left alone (no --force).
    pub(crate) skipped: Vec<String>,
    /// Devices another run placed while this one was issuing them; theirs
    /// were kept and this run's copies discarded (no --force).
    pub(crate) made_by_another_run: Vec<String>,
    /// Rows in the manifest after the run.
    pub(crate) manifest_rows: usize,
    pub(crate) manifest: String,
    pub(crate) seconds: f64,
    pub(crate) interrupted: bool,
    /// The store that signed (file, pkcs11, kms) and the rate it was held to.
    pub(crate) key_store: crate::pki::store::StoreKind,
    pub(crate) sign_rate: Option<u32>,
}

impl Batch<'_> {
    /// Issues every device of `specs` not already on disk (all with --force).
    pub(crate) fn run(&self, specs: Vec<DeviceSpec>) -> Result<Outcome, CliError> {
        let started = Instant::now();
        files::ensure_dir(self.out, 0o755)?;
        let staging = Staging::open(self.out)?;
        HANDLER.call_once(|| {
            let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
        });

        let (todo, skipped): (Vec<_>, Vec<_>) = specs
            .into_iter()
            .partition(|s| self.force || !self.out.join(&s.name).exists());
        let skipped: Vec<String> = skipped.into_iter().map(|s| s.name).collect();

        let bar = super::progress::bar(self.progress, todo.len(), "issuing");
        let shared = Shared::new(self);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.jobs)
            .build()
            .map_err(|e| CliError::startup("worker threads", e))?;
        let results: Vec<Option<Result<(Placed, Row), CliError>>> = pool.install(|| {
            todo.par_iter()
                .map(|spec| {
                    if INTERRUPTED.load(Ordering::Relaxed) {
                        return None;
                    }
                    let r = self.issue_one(spec, &shared, &staging);
                    bar.inc(1);
                    Some(r)
                })
                .collect()
        });
        bar.finish_and_clear();

        let interrupted = results.iter().any(Option::is_none);
        let mut issued = Vec::new();
        let mut made_by_another_run = Vec::new();
        let mut first_error = None;
        for r in results.into_iter().flatten() {
            match r {
                Ok((Placed::Existed, row)) => made_by_another_run.push(row.name),
                Ok((_, row)) => issued.push(row),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        drop(staging);
        // Record what reached the disk before reporting any failure. Under
        // the lock on OUTDIR, so the last run to write the manifest is also
        // the last to have scanned the disk.
        let manifest_rows = {
            let _lock = DirLock::acquire(self.out)?;
            manifest::update(self.out)?
        };
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(Outcome {
            issued,
            skipped,
            made_by_another_run,
            manifest_rows,
            manifest: self.out.join(manifest::FILE).display().to_string(),
            seconds: started.elapsed().as_secs_f64(),
            interrupted,
            key_store: self.ca.issuer.key().store(),
            sign_rate: self.sign_rate,
        })
    }

    fn issue_one(
        &self,
        spec: &DeviceSpec,
        shared: &Shared,
        staging: &Staging,
    ) -> Result<(Placed, Row), CliError> {
        let mut subject = self.subject_extra.clone();
        for attr in &spec.subject {
            subject::set(&mut subject, attr.clone());
        }
        subject.push(Attribute {
            name: "CN",
            value: spec.name.clone(),
        });

        if let Some(pacer) = &shared.pacer {
            pacer.wait();
        }
        let (cert, key_pem) = match &self.keys {
            KeySource::Generate(alg) => {
                let key = alg.generate()?;
                let params = profile::device(&subject, self.days, alg.is_rsa(), Some(shared.cap));
                let cert = params.signed_by(&key, &self.ca.issuer);
                (cert, Some(key.serialize_pem()))
            }
            KeySource::Csr(csr) => {
                let params = profile::device(&subject, self.days, csr.is_rsa, Some(shared.cap));
                (params.signed_by(&csr.spki, &self.ca.issuer), None)
            }
        };
        let cert =
            cert.map_err(|e| CliError::signing(&spec.name, self.ca.issuer.key().explain(&e)))?;
        let facts = jitr_core::CertFacts::from_der(cert.der()).map_err(|e| {
            CliError::signing(&spec.name, format!("the result does not parse: {e}"))
        })?;
        let cert_pem = cert.pem();
        let bundle = format!("{cert_pem}{}", self.ca.chain_pem);

        let f = &shared.files;
        let contents = f.contents(
            key_pem.as_deref(),
            &cert_pem,
            &bundle,
            shared.server_root.as_deref(),
        );
        let placed = staging.place(&spec.name, &contents, self.force)?;

        let row = Row::new(
            &spec.name,
            &spec.name,
            &facts,
            f,
            key_pem.is_some(),
            manifest::Role::Current,
        );
        Ok((placed, row))
    }
}

/// What every device of a run shares, computed once.
struct Shared {
    pacer: Option<RateLimiter>,
    cap: time::OffsetDateTime,
    files: Files,
    server_root: Option<String>,
}

impl Shared {
    fn new(batch: &Batch<'_>) -> Self {
        let files = batch.layout.files();
        let server_root = files
            .server_root
            .map(|_| crate::pki::amazon::root_ca_1_pem());
        Shared {
            pacer: batch.sign_rate.map(RateLimiter::new),
            cap: batch.ca.not_after(),
            files,
            server_root,
        }
    }
}
