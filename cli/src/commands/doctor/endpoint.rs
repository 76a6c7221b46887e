//! `jitr doctor`'s endpoint check: a TLS handshake with the data endpoint,
//! whose certificate must verify with Amazon's roots (or `--ca-file`), by
//! the same rules as `jitr connect`'s.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::device::{Device, Named};
use crate::cloud::Cloud;
use crate::doctor::Check;
use crate::error::CliError;
use crate::files::read;
use crate::mqtt::{self, tls_config, untrusted, BrokerTrust};
use crate::pki::amazon;

/// How long one TLS probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// The endpoint check: --endpoint, else the account's iot:Data-ATS endpoint.
pub(super) fn endpoint_line(
    named: &Named,
    dev: Option<&Device>,
    cloud: &Cloud,
) -> Result<Check, CliError> {
    let (host, port) = match named.endpoint {
        Some(e) => mqtt::parse_endpoint(e)?,
        None => match cloud.data_endpoint() {
            // HOST or HOST:PORT (an emulator's), used as given, as connect does.
            Ok(address) => mqtt::described_endpoint(&address)?,
            Err(e) => {
                return Ok(Check::fail(
                    "endpoint",
                    format!("describing iot:Data-ATS: {e}"),
                    "pass --endpoint HOST[:PORT]",
                ))
            }
        },
    };
    let roots = match named.ca_file {
        Some(p) => jitr_core::pem::certificates(&read(p)?)
            .map_err(|e| CliError::invalid(p.display(), e))?,
        None => amazon::roots(),
    };
    let trust = BrokerTrust {
        roots: roots.into_iter().map(CertificateDer::from).collect(),
        pin_exact: named.ca_file.is_some(),
    };
    let client = dev.and_then(|d| d.key.as_ref().filter(|(_, m)| *m).map(|(k, _)| (d, k)));
    Ok(endpoint_check(&host, port, trust, client))
}

/// TLS to the data endpoint: the broker's certificate must verify as
/// `jitr connect` verifies it (the same configuration, `mqtt::tls_config`).
fn endpoint_check(
    host: &str,
    port: u16,
    trust: BrokerTrust,
    client: Option<(&Device, &rcgen::KeyPair)>,
) -> Check {
    const NAME: &str = "endpoint";
    let fail = |detail: String, fix: &str| Check::fail(NAME, detail, fix);
    let auth = client.map(|(dev, key)| {
        (
            dev.ders.iter().cloned().map(CertificateDer::from).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    });
    // A key the TLS stack cannot use: probe without it.
    let config =
        match tls_config(trust.clone(), auth, port).or_else(|_| tls_config(trust, None, port)) {
            Ok(c) => c,
            Err(e) => {
                return fail(
                    format!("TLS setup: {e}"),
                    "check --ca-file (it must hold CA certificates)",
                )
            }
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
    let _ = sock.set_write_timeout(Some(PROBE_LIMIT));
    let mut conn = match rustls::ClientConnection::new(Arc::new(config), name) {
        Ok(c) => c,
        Err(e) => return fail(format!("TLS setup: {e}"), "report this as a jitr bug"),
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            return handshake_failure(&address, &e);
        }
    }
    Check::pass(
        NAME,
        format!("{address} accepts TLS; its certificate verifies"),
    )
}

/// The check for a handshake that ended in `e`: an untrusted broker
/// certificate fails (explained as `jitr connect` explains it), a broker
/// that stopped answering stalled, anything else ended the handshake.
fn handshake_failure(address: &str, e: &std::io::Error) -> Check {
    const NAME: &str = "endpoint";
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(tls @ rustls::Error::InvalidCertificate(_)) = tls {
        return Check::fail(
            NAME,
            format!("{address}: {}", untrusted(tls)),
            "connect to the account's iot:Data-ATS endpoint (jitr endpoint), or pass --ca-file with the broker's CA",
        );
    }
    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
        return Check::warn(
            NAME,
            format!(
                "{address} stalled: it accepted the connection, then timed out during the TLS handshake after {} s",
                PROBE_LIMIT.as_secs()
            ),
            "check that the port speaks TLS (MQTT over TLS is 8883) and that nothing on the path holds the connection",
        );
    }
    Check::warn(
        NAME,
        format!("{address}: TLS ended during the handshake: {e}"),
        "run jitr connect for the broker's own answer",
    )
}
