//! `jitr doctor`'s endpoint check: a TLS handshake with the data endpoint,
//! whose certificate must verify with Amazon's roots (or `--ca-file`).

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::doctor::Device;
use crate::doctor::Check;

/// How long one TLS probe may take.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// TLS to the data endpoint: the broker's certificate must verify with `roots`.
pub(super) fn endpoint_check(
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
