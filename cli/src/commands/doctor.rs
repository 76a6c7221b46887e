//! `jitr doctor`: why a device did not register. Reads the device's files,
//! the issuing CA and the device's certificate in AWS IoT, the deployed
//! stack and the data endpoint, and prints one line per check (the checks
//! themselves are pure, in `crate::doctor`).

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jitr_core::config::Config;
use jitr_core::CertFacts;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde::Serialize;

use crate::args::{CaTarget, DoctorArgs, Global};
use crate::cloud::{CaView, Cloud};
use crate::doctor::cloud::{ca_checks, certificate_check, deployment_checks, CaSeen};
use crate::doctor::device::{self, issued, DeviceFiles};
use crate::doctor::{Check, Status};
use crate::error::CliError;
use crate::files::read;
use crate::issue::layout::Layout;
use crate::pki::{amazon, ca_dir, keys};
use crate::report::Output;

/// How long one TLS probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

#[derive(Serialize)]
struct Report {
    checks: Vec<Check>,
    ok: bool,
}

/// The device as read from disk.
struct Device {
    bundle: String,
    chain: Vec<CertFacts>,
    ders: Vec<Vec<u8>>,
    key: Option<(rcgen::KeyPair, bool)>,
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

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The issuing CA: from --ca, else the bundle's second certificate, else the
/// registered CA whose certificate issued the device's. Returns id, target, validity.
fn issuing_ca(
    a: &DoctorArgs,
    dev: Option<&Device>,
    cloud: &Cloud,
) -> Result<Option<(String, String, Option<(i64, i64)>, Option<CaView>)>, CliError> {
    let aws = |what: &str, e| CliError::aws(what.to_string(), e);
    if let Some(t) = &a.ca {
        let (id, dir) = super::ca_aws::resolve(&CaTarget { target: t.clone() })?;
        let validity = match &dir {
            Some(dir) => {
                let path = dir.join(ca_dir::CERT_FILE);
                let (_, f) = ca_dir::read_ca_certificate(&read(&path)?, &path)?;
                Some((f.not_before, f.not_after))
            }
            None => None,
        };
        let view = cloud
            .describe_ca(&id)
            .map_err(|e| aws("describing the CA", e))?;
        return Ok(Some((id, t.clone(), validity, view)));
    }
    let Some(dev) = dev else { return Ok(None) };
    if dev.ders.is_empty() {
        return Ok(None);
    }
    if let Some(ca) = dev
        .chain
        .get(1)
        .filter(|_| issued(&dev.ders[0], &dev.ders[1]))
    {
        let view = cloud
            .describe_ca(&ca.certificate_id)
            .map_err(|e| aws("describing the CA", e))?;
        let id = ca.certificate_id.clone();
        return Ok(Some((
            id.clone(),
            id,
            Some((ca.not_before, ca.not_after)),
            view,
        )));
    }
    for id in cloud
        .list_cas()
        .map_err(|e| aws("listing CA certificates", e))?
        .into_iter()
        .map(|c| c.certificate_id)
    {
        let Some(view) = cloud
            .describe_ca(&id)
            .map_err(|e| aws("describing a CA", e))?
        else {
            continue;
        };
        let Some(der) = jitr_core::pem::certificates(view.pem.as_bytes())
            .ok()
            .and_then(|c| c.into_iter().next())
        else {
            continue;
        };
        let Ok(f) = CertFacts::from_der(&der) else {
            continue;
        };
        if issued(&dev.ders[0], &der) {
            return Ok(Some((
                id.clone(),
                id,
                Some((f.not_before, f.not_after)),
                Some(view),
            )));
        }
    }
    Ok(None)
}

/// TLS to the data endpoint: the broker's certificate must verify with `roots`.
fn endpoint_check(
    host: &str,
    port: u16,
    roots: Vec<Vec<u8>>,
    client: Option<(&Device, &rcgen::KeyPair)>,
) -> Check {
    const NAME: &str = "endpoint";
    let fail = |detail: String, fix: &str| Check::fail(NAME, detail, fix);
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        let _ = store.add(CertificateDer::from(r));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(store),
        Err(e) => return fail(format!("TLS setup: {e}"), "report this as a jitr bug"),
    };
    let config = match client {
        Some((dev, key)) => builder
            .with_client_auth_cert(
                dev.ders.iter().cloned().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap_or_else(|_| {
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("default versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
            }),
        None => builder.with_no_client_auth(),
    };
    let address = format!("{host}:{port}");
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return fail(
            format!("{host} is not a host name"),
            "pass --endpoint HOST[:PORT]",
        );
    };
    let Some(addr) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return fail(
            format!("{host} does not resolve"),
            "check the name (jitr endpoint prints the account's)",
        );
    };
    let mut sock = match TcpStream::connect_timeout(&addr, PROBE_LIMIT) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                format!("cannot connect to {address}: {e}"),
                "check the address, the port (8883) and the network path",
            )
        }
    };
    let _ = sock.set_read_timeout(Some(PROBE_LIMIT));
    let mut conn = match rustls::ClientConnection::new(Arc::new(config), name) {
        Ok(c) => c,
        Err(e) => return fail(format!("TLS setup: {e}"), "report this as a jitr bug"),
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            let text = e.to_string();
            return if text.contains("invalid peer certificate") || text.contains("UnknownIssuer") {
                fail(format!("{address}: the broker's certificate does not verify: {text}"), "connect to the account's iot:Data-ATS endpoint (jitr endpoint), or pass --ca-file with the broker's CA")
            } else {
                Check::warn(
                    NAME,
                    format!("{address}: TLS ended during the handshake: {text}"),
                    "run jitr connect for the broker's own answer",
                )
            };
        }
    }
    Check::pass(
        NAME,
        format!("{address} accepts TLS; its certificate verifies"),
    )
}

pub fn doctor(a: &DoctorArgs, global: &Global, out: &Output) -> Result<(), CliError> {
    let now = now();
    let dev = read_device(a)?;
    let mut checks = Vec::new();
    let cloud = match Cloud::connect(&global.aws()) {
        Ok(c) => Some(c),
        Err(e) => {
            checks.push(Check::fail(
                "aws access",
                e.to_string(),
                "set AWS_PROFILE/--profile and --region (aws sts get-caller-identity must work)",
            ));
            None
        }
    };
    let mut ca_id = None;
    let mut ca_lines = Vec::new();
    let mut cert_line = None;
    let mut deploy_lines = Vec::new();
    let mut config: Option<Result<Config, String>> = None;
    let mut endpoint_line = None;
    if let Some(cloud) = &cloud {
        match issuing_ca(a, dev.as_ref(), cloud)? {
            Some((id, target, validity, view)) => {
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
                ca_lines = ca_checks(
                    &CaSeen {
                        id: &id,
                        target: &target,
                        view: view.as_ref(),
                        validity,
                        registered_above: &above,
                        region: &cloud.region,
                    },
                    now,
                );
                ca_id = Some((id, target));
            }
            None if dev.is_some() => ca_lines.push(Check::fail(
                "ca registered",
                "no registered CA issued the device certificate",
                "jitr ca register CA_DIR (the CA that signed the device)",
            )),
            None => {}
        }
        let d = cloud
            .deployment(
                a.stack.as_deref(),
                ca_id.as_ref().map(|(id, _)| id.as_str()),
            )
            .map_err(|e| CliError::aws("reading the deployment", e))?;
        config = d
            .function
            .as_ref()
            .map(|f| Config::from_lookup(|k| f.env.get(k).cloned()).map_err(|e| e.to_string()));
        let policy_exists = match &config {
            Some(Ok(c)) => Some(
                cloud
                    .policy_exists(&c.policy_name)
                    .map_err(|e| CliError::aws("reading the device policy", e))?,
            ),
            _ => None,
        };
        deploy_lines = deployment_checks(
            &d,
            ca_id.as_ref().map(|(id, _)| id.as_str()),
            config.as_ref(),
            policy_exists,
        );
        if let Some(leaf) = dev.as_ref().and_then(|d| d.chain.first()) {
            let view = cloud
                .describe_certificate(&leaf.certificate_id)
                .map_err(|e| CliError::aws("describing the device certificate", e))?;
            let target = ca_id
                .as_ref()
                .map(|(_, t)| t.as_str())
                .unwrap_or("CA_DIR|ID");
            cert_line = Some(certificate_check(
                &leaf.certificate_id,
                target,
                view.as_ref(),
                now,
                a.stranded_after as i64,
            ));
        }
        let endpoint = match &a.endpoint {
            Some(e) => Some(super::connect::parse_endpoint(e)?),
            None => match cloud.data_endpoint() {
                Ok(host) => Some((host, 8883)),
                Err(e) => {
                    endpoint_line = Some(Check::fail(
                        "endpoint",
                        format!("describing iot:Data-ATS: {e}"),
                        "pass --endpoint HOST[:PORT]",
                    ));
                    None
                }
            },
        };
        if let Some((host, port)) = endpoint {
            let roots = match &a.ca_file {
                Some(p) => jitr_core::pem::certificates(&read(p)?)
                    .map_err(|e| CliError::invalid(p.display(), e))?,
                None => amazon::roots(),
            };
            let client = dev
                .as_ref()
                .and_then(|d| d.key.as_ref().filter(|(_, m)| *m).map(|(k, _)| (d, k)));
            endpoint_line = Some(endpoint_check(&host, port, roots, client));
        }
    }
    if let Some(d) = &dev {
        let pattern = config
            .as_ref()
            .and_then(|c| c.as_ref().ok())
            .map(|c| &c.thing_name_pattern);
        let files = DeviceFiles {
            bundle: &d.bundle,
            chain: &d.chain,
            ders: &d.ders,
            key_matches: d.key.as_ref().map(|(_, m)| *m),
        };
        checks.extend(device::checks(&files, now, pattern));
    }
    checks.extend(ca_lines);
    checks.extend(cert_line);
    checks.extend(deploy_lines);
    checks.extend(endpoint_line);
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
