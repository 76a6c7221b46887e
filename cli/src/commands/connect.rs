//! `jitr connect`: connect as a device does (MQTT over TLS with its
//! certificate), retrying while the broker refuses a certificate that is
//! still being provisioned, and publish one message.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use jitr_core::aws::AwsOptions;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;

use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files::read;
use crate::issue::layout::Layout;
use crate::mqtt::{self, tls_config, BrokerTrust, Session};
use crate::pki::{amazon, keys};
use crate::report::Output;

mod attempts;
mod input;
mod refusal;
use attempts::{retry, Attempt, Device, Tried};
use input::{lookup, message, name_source, thing_name, validity_problem, Lookup};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A device directory from `jitr device issue` (its bundle and key, any layout).
    #[arg(value_name = "DEVICE_DIR", required_unless_present_any = ["cert", "key"])]
    pub(crate) device: Option<PathBuf>,
    /// The certificate to present: the device certificate followed by its CA chain.
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// The device's private key.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// The MQTT broker devices connect to (the data endpoint), HOST or HOST:PORT (default:
    /// the account's iot:Data-ATS endpoint, as `jitr endpoint` prints it; port 8883 unless
    /// it carries one). Not the AWS API endpoint (that is --endpoint-url).
    #[arg(long, value_name = "HOST[:PORT]", env = "JITR_ENDPOINT")]
    pub(crate) endpoint: Option<String>,
    /// PEM file of the CA(s) that verify the broker (default: Amazon Root CA 1 to 4).
    #[arg(long, value_name = "FILE", env = "JITR_BROKER_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// MQTT client id (default: the thing name the deployment gives the
    /// certificate, see --thing-name-source; the device policy wants them equal).
    #[arg(long, value_name = "ID", value_parser = client_id)]
    pub(crate) client_id: Option<String>,
    /// Where the deployment takes thing names from (its ThingNameSource;
    /// default: the --stack function's JITR_THING_NAME_SOURCE, else common-name).
    #[arg(long, value_name = "SOURCE")]
    pub(crate) thing_name_source: Option<ThingNameSource>,
    /// The CloudFormation stack of infra/, to read its ThingNameSource from.
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: Option<String>,
    /// Topic to publish on, no wildcards (default: things/<client id>/hello).
    #[arg(long, value_parser = topic_name)]
    pub(crate) topic: Option<String>,
    /// The message to publish (QoS 1; AWS IoT takes up to 128 KiB).
    #[arg(long, default_value = "hello from jitr connect")]
    pub(crate) message: String,
    /// Publish this file's bytes instead of --message.
    #[arg(long, value_name = "FILE", conflicts_with = "message")]
    pub(crate) message_file: Option<PathBuf>,
    /// Seconds to keep retrying before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = positive_seconds)]
    pub(crate) timeout: f64,
}

/// The thing-name sources of the function's JITR_THING_NAME_SOURCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ThingNameSource {
    CommonName,
    SerialNumber,
    CertificateId,
}

impl From<ThingNameSource> for jitr_core::naming::NameTemplate {
    fn from(s: ThingNameSource) -> Self {
        let alias = match s {
            ThingNameSource::CommonName => "common-name",
            ThingNameSource::SerialNumber => "serial-number",
            ThingNameSource::CertificateId => "certificate-id",
        };
        Self::parse(alias).expect("the aliases are templates")
    }
}

/// An MQTT client id: not empty (AWS IoT has no use for one).
fn client_id(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the client id is empty".into());
    }
    Ok(text.to_string())
}

/// A topic one can publish to: not empty, no `+` or `#` (those make a
/// filter, for subscribing), no NUL, at most 65535 bytes (MQTT's rules).
fn topic_name(text: &str) -> Result<String, String> {
    let problem = if text.is_empty() {
        "the topic is empty"
    } else if text.contains(['+', '#']) {
        "a topic to publish to has no wildcards (+ and # are for subscribing)"
    } else if text.contains('\0') {
        "the topic contains a NUL character"
    } else if text.len() > 65_535 {
        "the topic is longer than MQTT's 65535 bytes"
    } else {
        return Ok(text.to_string());
    };
    Err(problem.into())
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(s),
        _ => Err(format!(
            "expected seconds between 0 and 86400, got \"{text}\""
        )),
    }
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
fn credentials(args: &Args) -> Result<(PathBuf, PathBuf), CliError> {
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

/// The account's iot:Data-ATS endpoint (DescribeEndpoint), as `jitr
/// endpoint` prints it.
fn described_endpoint(aws: &AwsOptions) -> Result<(String, u16), CliError> {
    let address = Cloud::connect(aws)?
        .data_endpoint()
        .map_err(|e| CliError::aws("describing the iot:Data-ATS endpoint", e))?;
    mqtt::described_endpoint(&address)
}

/// What verifies the broker: `--ca-file`'s CAs (pinned), else Amazon's roots.
fn broker_trust(args: &Args) -> Result<BrokerTrust, CliError> {
    let roots = match &args.ca_file {
        Some(path) => jitr_core::pem::certificates(&read(path)?)
            .map_err(|e| CliError::invalid(path.display(), e))?,
        None => amazon::roots(),
    };
    Ok(BrokerTrust {
        roots: roots.into_iter().map(CertificateDer::from).collect(),
        pin_exact: args.ca_file.is_some(),
    })
}

/// The session a device holds: its chain and key checked against each other,
/// the client id, the endpoint and the trust store.
fn session(args: &Args, aws: &AwsOptions) -> Result<(Session, Device), CliError> {
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
    let endpoint_url_set = aws.endpoint_url.is_some()
        || ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IOT"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|u| !u.is_empty()));
    // The CA's id (AWS's certificate id) when the chain holds it.
    let ca_id = chain
        .get(1)
        .and_then(|der| jitr_core::CertFacts::from_der(der).ok())
        .map(|ca| ca.certificate_id);
    let lookup = lookup(args.endpoint.as_deref(), endpoint_url_set, ca_id);
    let asked = matches!(lookup, Lookup::Rule { .. }).then(|| aws.clone());
    let client_id = match &args.client_id {
        Some(id) => id.clone(),
        None => {
            let chosen = args.thing_name_source.map(Into::into);
            let source = name_source(chosen, args.stack.as_deref(), aws, lookup)?;
            thing_name(source, &facts).map_err(|e| CliError::invalid(&cert_what, e))?
        }
    };
    let trust = broker_trust(args)?;
    let (host, port) = match &args.endpoint {
        Some(text) => mqtt::parse_endpoint(text)?,
        None => described_endpoint(aws)?,
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
        aws: asked,
    };
    Ok((session, device))
}

/// `things/{client_id}/hello`, the thing's own topic; refused (before
/// connecting) when the client id would make it no topic to publish to or
/// another thing's level (`+`, `#`, `/`), naming where the id came from.
fn default_topic(client_id: &str, from_flag: bool) -> Result<String, CliError> {
    let topic = format!("things/{client_id}/hello");
    let problem = if client_id.contains(['+', '#', '/']) {
        Some("contains +, # or /, which are no part of a thing name".to_string())
    } else {
        topic_name(&topic).err()
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

/// `jitr connect`.
pub(crate) fn run(args: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let message = message(args.message_file.as_deref(), &args.message)?;
    let (session, device) = session(args, aws)?;
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

    let connected = attempts
        .last()
        .is_some_and(|a| a.result == Tried::Published);
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
