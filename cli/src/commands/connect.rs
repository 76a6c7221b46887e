//! `jitr connect`: connect as a device does (MQTT over TLS with its
//! certificate), retrying while the broker refuses a certificate that is
//! still being provisioned, and publish one message.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;

use crate::args::{ConnectArgs, Global};
use crate::error::CliError;
use crate::files::read;
use crate::issue::layout::Layout;
use crate::mqtt::{host_port, tls_config, BrokerTrust, Failure, Refusal, Session};
use crate::pki::{amazon, keys};
use crate::report::Output;

mod input;
mod refusal;
use input::{lookup, message, name_source, thing_name, validity_problem, Lookup};
use refusal::Held;

/// AWS IoT's MQTT over TLS port.
const MQTT_TLS_PORT: u16 = 8883;
/// No single attempt waits longer than this.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);
/// The first retry waits about this long; each later one twice as long, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(8);

/// One try, as reported.
#[derive(Debug, Serialize)]
struct Attempt {
    attempt: u32,
    /// Milliseconds since the command started.
    at_ms: u64,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    connected: bool,
    endpoint: String,
    client_id: String,
    topic: String,
    attempts: Vec<Attempt>,
    elapsed_ms: u64,
}

/// The device's certificate chain and key, from a device directory or flags.
fn credentials(args: &ConnectArgs) -> Result<(PathBuf, PathBuf), CliError> {
    let dir = match (&args.device, &args.cert, &args.key) {
        (_, Some(cert), Some(key)) => return Ok((cert.clone(), key.clone())),
        (Some(dir), _, _) => dir,
        (None, Some(cert), None) => {
            return Err(CliError::invalid(
                format!("--cert {}", cert.display()),
                "give the device's private key with --key too (or a DEVICE_DIR that holds it)",
            ))
        }
        (None, None, Some(key)) => return Err(CliError::invalid(
            format!("--key {}", key.display()),
            "give the device's certificate bundle with --cert too (or a DEVICE_DIR that holds it)",
        )),
        (None, None, None) => {
            return Err(CliError::invalid(
                "DEVICE_DIR",
                "give a device directory, or --cert and --key",
            ))
        }
    };
    Layout::all()
        .into_iter()
        .map(|layout| layout.files())
        .map(|f| (dir.join(f.bundle), dir.join(f.key)))
        .find(|(bundle, key)| bundle.is_file() && key.is_file())
        .map(|(bundle, key)| {
            (
                args.cert.clone().unwrap_or(bundle),
                args.key.clone().unwrap_or(key),
            )
        })
        .ok_or_else(|| {
            CliError::invalid(
                dir.display(),
                "no device certificate and key (expected device-and-ca.crt + device.key, or certificate.pem.crt + private.pem.key)",
            )
        })
}

/// `--endpoint HOST[:PORT]` split, with AWS IoT's port by default.
pub(crate) fn parse_endpoint(text: &str) -> Result<(String, u16), CliError> {
    host_port(text, MQTT_TLS_PORT)
        .map_err(|e| CliError::invalid("--endpoint", format!("{e} (expected HOST or HOST:PORT)")))
}

/// The account's iot:Data-ATS endpoint as DescribeEndpoint answers it: a
/// host (port 8883), or HOST:PORT (an emulator's, a proxy's), used as given.
pub(crate) fn described_endpoint(global: &Global) -> Result<(String, u16), CliError> {
    let address = super::endpoint::describe(global)?.0;
    host_port(&address, MQTT_TLS_PORT)
        .map_err(|e| CliError::invalid("the iot:Data-ATS endpoint AWS IoT described", e))
}

/// The delay before retry `n` (1-based): exponential, capped, with half of it
/// random ("equal jitter") so a fleet does not retry in step.
pub(crate) fn backoff(n: u32, random: f64) -> Duration {
    let full = FIRST_DELAY
        .saturating_mul(1u32 << (n - 1).min(16))
        .min(MAX_DELAY);
    full / 2 + full.mul_f64(random.clamp(0.0, 1.0) / 2.0)
}

/// A uniform random number in [0, 1).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// What connect knows of the device besides its session.
struct Device {
    certificate_id: String,
    /// Certificates in the bundle (1: the device's alone).
    chain_len: usize,
    /// How to ask AWS IoT about the certificate, when the broker is AWS
    /// IoT's or an emulator's.
    aws: Option<jitr_core::aws::AwsOptions>,
}

/// The session a device holds: its chain and key checked against each other,
/// the client id, the endpoint and the trust store.
fn session(args: &ConnectArgs, global: &Global) -> Result<(Session, Device), CliError> {
    let (cert_path, key_path) = credentials(args)?;
    let cert_what = cert_path.display().to_string();
    let chain = jitr_core::pem::certificates(&read(&cert_path)?)
        .map_err(|e| CliError::invalid(&cert_what, e))?;
    let chain_len = chain.len();
    let facts =
        jitr_core::CertFacts::from_der(&chain[0]).map_err(|e| CliError::invalid(&cert_what, e))?;
    let key_what = key_path.display().to_string();
    let (key, _) = keys::load_private_key(&read(&key_path)?, &key_what)?;
    if !keys::matches_certificate(&key, &facts.public_key) {
        return Err(CliError::invalid(
            &key_what,
            format!("this key does not belong to the certificate in {cert_what}"),
        ));
    }
    if let Some(problem) = validity_problem(&facts, jitr_core::clock::unix_seconds()) {
        // AWS IoT refuses it; connect anyway, the broker's answer is the proof.
        eprintln!("jitr: warning: {cert_what}: {problem}");
    }
    let endpoint_url_set = global.endpoint_url.is_some()
        || ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IOT"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|u| !u.is_empty()));
    // The CA's id (AWS's certificate id) when the chain holds it.
    let ca_id = chain
        .get(1)
        .and_then(|der| jitr_core::CertFacts::from_der(der).ok())
        .map(|ca| ca.certificate_id);
    let lookup = lookup(args.endpoint.as_deref(), endpoint_url_set, ca_id);
    let aws = matches!(lookup, Lookup::Rule { .. }).then(|| global.aws());
    let client_id = match &args.client_id {
        Some(id) => id.clone(),
        None => {
            let source = name_source(args, global, lookup)?;
            thing_name(source, &facts).map_err(|e| CliError::invalid(&cert_what, e))?
        }
    };
    let roots = match &args.ca_file {
        Some(path) => jitr_core::pem::certificates(&read(path)?)
            .map_err(|e| CliError::invalid(path.display(), e))?,
        None => amazon::roots(),
    };
    let (host, port) = match &args.endpoint {
        Some(text) => parse_endpoint(text)?,
        None => described_endpoint(global)?,
    };
    let trust = BrokerTrust {
        roots: roots.into_iter().map(CertificateDer::from).collect(),
        pin_exact: args.ca_file.is_some(),
    };
    let client = (
        chain.into_iter().map(CertificateDer::from).collect(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    );
    let tls =
        tls_config(trust, Some(client), port).map_err(|e| CliError::invalid(&cert_what, e))?;
    let session = Session {
        host,
        port,
        client_id,
        tls: std::sync::Arc::new(tls),
    };
    let device = Device {
        certificate_id: facts.certificate_id,
        chain_len,
        aws,
    };
    Ok((session, device))
}

/// The last refusal: its kind, and what AWS IoT said of the certificate.
#[derive(Default)]
struct Last {
    kind: Option<Refusal>,
    held: Option<Held>,
    /// AWS did not answer once (no credentials, unreachable): not asked again.
    aws_silent: bool,
}

/// The failure's sentence and whether retrying can help: after a refusal
/// that cannot say why (closed, or a CONNACK code), from what AWS IoT holds
/// of the certificate when it can be asked.
fn explain(failure: Failure, device: &Device, last: &mut Last) -> (String, bool) {
    last.kind = Some(failure.kind);
    last.held = None;
    let aws = device.aws.as_ref().filter(|_| !last.aws_silent);
    if let Some(aws) = aws.filter(|_| refusal::worth_asking(failure.kind)) {
        let held = refusal::ask(aws, &device.certificate_id);
        last.aws_silent = held.is_none();
        if let Some(held) = held {
            let (why, retry) = refusal::judge(&held, &device.certificate_id);
            // A timeout says more than a status that does not explain it.
            if failure.kind != Refusal::Timeout || !retry {
                last.held = Some(held);
                return (why, retry);
            }
        }
    }
    (failure.reason, !failure.kind.is_final())
}

/// Attempts until one publishes, one fails for good, or the next would start
/// after `deadline`; each attempt is printed as it ends (unless --json).
async fn retry(
    session: &Session,
    (topic, message): (&str, &[u8]),
    device: &Device,
    deadline: Instant,
    out: &Output,
) -> (Vec<Attempt>, Last) {
    let started = Instant::now();
    let mut attempts = Vec::new();
    let mut last = Last::default();
    for n in 1u32.. {
        let limit = ATTEMPT_LIMIT.min(deadline.saturating_duration_since(Instant::now()));
        let at_ms = started.elapsed().as_millis() as u64;
        let at = at_ms as f64 / 1000.0;
        let failure = match session.publish_once(topic, message, limit).await {
            Ok(()) => {
                if out.chatty() {
                    eprintln!("attempt {n} at {at:.1} s: connected, published on {topic} (PUBACK)");
                }
                attempts.push(Attempt {
                    attempt: n,
                    at_ms,
                    result: "published",
                    detail: None,
                });
                break;
            }
            Err(failure) => failure,
        };
        let (reason, retrying_helps) = explain(failure, device, &mut last);
        let delay = backoff(n, random_unit());
        let give_up = !retrying_helps || Instant::now() + delay >= deadline;
        if out.chatty() {
            let next = if give_up {
                "giving up".to_string()
            } else {
                format!("retrying in {:.1} s", delay.as_secs_f64())
            };
            eprintln!("attempt {n} at {at:.1} s: {reason}; {next}");
        }
        attempts.push(Attempt {
            attempt: n,
            at_ms,
            result: "refused",
            detail: Some(reason),
        });
        if give_up {
            break;
        }
        tokio::time::sleep(delay).await;
    }
    (attempts, last)
}

/// `things/{client_id}/hello`, the thing's own topic; refused (before
/// connecting) when the client id would make it no topic to publish to or
/// another thing's level (`+`, `#`, `/`), naming where the id came from.
fn default_topic(client_id: &str, from_flag: bool) -> Result<String, CliError> {
    let topic = format!("things/{client_id}/hello");
    let problem = if client_id.contains(['+', '#', '/']) {
        Some("contains +, # or /, which are no part of a thing name".to_string())
    } else {
        crate::args::topic_name(&topic).err()
    };
    match problem {
        None => Ok(topic),
        Some(problem) => {
            let what = if from_flag {
                format!("--client-id {client_id}")
            } else {
                format!("client id {client_id}")
            };
            Err(CliError::invalid(
                what,
                format!(
                    "{problem}, so the default topic {topic} cannot be published to; pass --topic"
                ),
            ))
        }
    }
}

pub(crate) fn connect(args: &ConnectArgs, global: &Global, out: &Output) -> Result<(), CliError> {
    let message = message(args)?;
    let (session, device) = session(args, global)?;
    let certificate_id = &device.certificate_id;
    let topic = match &args.topic {
        Some(topic) => topic.clone(),
        None => default_topic(&session.client_id, args.client_id.is_some())?,
    };
    let endpoint = format!("{}:{}", session.host, session.port);
    if out.chatty() {
        eprintln!(
            "connecting to {endpoint} as {} (certificate {certificate_id}), for up to {} s",
            session.client_id, args.timeout
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::startup("the async runtime", e))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.timeout);
    let (attempts, last_refusal) =
        rt.block_on(retry(&session, (&topic, &message), &device, deadline, out));

    let connected = attempts.last().is_some_and(|a| a.result == "published");
    let tries = attempts.len();
    let last = attempts
        .last()
        .and_then(|a| a.detail.clone())
        .unwrap_or_default();
    let report = Report {
        connected,
        endpoint: endpoint.clone(),
        client_id: session.client_id.clone(),
        topic: topic.clone(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        attempts,
    };
    let seconds = report.elapsed_ms as f64 / 1000.0;
    let who = &session.client_id;
    if connected {
        out.result(&report, || {
            format!("{who}: connected to {endpoint} after {tries} attempt(s) in {seconds:.1} s; message delivered on {topic}")
        });
        return Ok(());
    }
    if out.json {
        out.result(&report, String::new);
    }
    let dir = args.device.as_ref().map(|d| d.display().to_string());
    let hint = last_refusal.kind.and_then(|kind| {
        refusal::hint(
            kind,
            last_refusal.held.as_ref(),
            device.chain_len,
            dir.as_deref(),
        )
    });
    let hint = hint.map(|h| format!("; {h}")).unwrap_or_default();
    Err(CliError::NotConnected(format!(
        "{who} could not connect to {endpoint} ({tries} attempt(s) in {seconds:.1} s): {last}{hint}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_eight_with_half_jitter() {
        let ms = |n, r| backoff(n, r).as_millis();
        assert_eq!((ms(1, 0.0), ms(1, 1.0)), (250, 500));
        assert_eq!((ms(2, 0.0), ms(2, 1.0)), (500, 1000));
        assert_eq!((ms(5, 0.0), ms(5, 1.0)), (4000, 8000));
        assert_eq!((ms(40, 0.0), ms(40, 1.0)), (4000, 8000));
        assert_eq!(ms(3, 0.5), 1500);
    }

    #[test]
    fn random_units_are_in_range_and_vary() {
        let draws: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(draws.iter().any(|r| *r != draws[0]));
    }

    #[test]
    fn endpoints_parse_with_the_mqtt_tls_port_by_default() {
        assert_eq!(
            parse_endpoint("a1b2-ats.iot.eu-west-1.amazonaws.com").unwrap(),
            ("a1b2-ats.iot.eu-west-1.amazonaws.com".into(), 8883)
        );
        assert_eq!(
            parse_endpoint("127.0.0.1:18883").unwrap(),
            ("127.0.0.1".into(), 18883)
        );
        for bad in ["", ":8883", "host:port", "host:70000", "mqtts://host"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
