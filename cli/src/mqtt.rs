//! One MQTT session as a device holds it: TLS with a client certificate,
//! CONNECT, one QoS 1 PUBLISH acknowledged, DISCONNECT.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration,
    Transport,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct};

use crate::error::CliError;

/// What a session needs, prepared once and reused by every attempt.
pub(crate) struct Session {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) client_id: String,
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

/// Why an attempt did not deliver the message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: Refusal,
    /// One sentence in the user's terms.
    pub(crate) reason: String,
}

/// What an attempt ran into: decides whether retrying can help and which
/// hint applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The broker's certificate is not trusted.
    Untrusted,
    /// The broker said in a TLS alert that the device's certificate is revoked.
    RevokedAlert,
    /// Nothing accepts connections at the address.
    NothingListening,
    /// The broker closed the connection without answering CONNECT: AWS IoT's
    /// answer to a certificate it does not accept (yet), and a JITR first connect's.
    Closed,
    /// The broker answered CONNECT with a refusal code.
    ConnAck,
    /// No answer in time.
    Timeout,
    /// Anything else (a TLS or protocol error).
    Other,
}

impl Refusal {
    /// Whether retrying cannot help: the broker's certificate will not become
    /// trusted, nor a revoked certificate valid, while the command runs.
    pub(crate) fn is_final(self) -> bool {
        matches!(self, Refusal::Untrusted | Refusal::RevokedAlert)
    }
}

/// AWS IoT's MQTT over TLS port.
pub(crate) const MQTT_TLS_PORT: u16 = 8883;

/// `--endpoint HOST[:PORT]` split, with AWS IoT's port by default.
pub(crate) fn parse_endpoint(text: &str) -> Result<(String, u16), CliError> {
    host_port(text, MQTT_TLS_PORT)
        .map_err(|e| CliError::invalid("--endpoint", format!("{e} (expected HOST or HOST:PORT)")))
}

/// The account's iot:Data-ATS endpoint as DescribeEndpoint answers it: a
/// host (port 8883), or HOST:PORT (an emulator's, a proxy's), used as given.
pub(crate) fn described_endpoint(address: &str) -> Result<(String, u16), CliError> {
    host_port(address, MQTT_TLS_PORT)
        .map_err(|e| CliError::invalid("the iot:Data-ATS endpoint AWS IoT described", e))
}

/// A host and port from `HOST` or `HOST:PORT` (a bare IPv6 address is a
/// host); `default_port` when none is given. `Err` says what is wrong.
pub(crate) fn host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("bad port in \"{text}\""))?,
        ),
        _ => (text, default_port),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("bad host in \"{text}\""));
    }
    Ok((host.to_string(), port))
}

/// AWS IoT's largest message payload (128 KiB).
pub(crate) const AWS_IOT_MAX_PAYLOAD: usize = 128 * 1024;

/// The ALPN protocol AWS IoT requires for MQTT over TLS on port 443.
const AWS_IOT_MQTT_ALPN: &[u8] = b"x-amzn-mqtt-ca";

/// How the broker is trusted.
#[derive(Clone)]
pub(crate) struct BrokerTrust {
    /// Trust anchors the broker's chain must lead to.
    pub(crate) roots: Vec<CertificateDer<'static>>,
    /// Whether a broker that presents exactly one of `roots` as its own
    /// certificate is accepted (a `--ca-file` the user pinned; never Amazon's roots).
    pub(crate) pin_exact: bool,
}

/// A device's certificate chain and private key, presented to the broker.
pub(crate) type ClientAuth = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The TLS configuration of `jitr connect` and `jitr doctor`'s endpoint
/// probe alike: `trust` verifies the broker, `client` (if any) is
/// presented; on port 443 it offers the ALPN protocol AWS IoT expects there.
pub(crate) fn tls_config(
    trust: BrokerTrust,
    client: Option<ClientAuth>,
    port: u16,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = BrokerVerifier::new(trust, provider.clone())?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the certificate and key cannot be used: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    if port == 443 {
        config.alpn_protocols = vec![AWS_IOT_MQTT_ALPN.to_vec()];
    }
    Ok(config)
}

/// WebPKI verification, plus one exception: a self-signed broker certificate
/// that is byte for byte one the user pinned with `--ca-file`. The classic
/// `openssl req -x509` one-liner marks it CA:TRUE, which WebPKI refuses as a
/// server certificate (CaUsedAsEndEntity) while mosquitto_pub and the AWS IoT
/// Device SDK accept it. The exception still checks the host name, the
/// validity period and the handshake signature.
#[derive(Debug)]
struct BrokerVerifier {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl BrokerVerifier {
    fn new(
        trust: BrokerTrust,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Self, String> {
        let mut store = rustls::RootCertStore::empty();
        for root in &trust.roots {
            store
                .add(root.clone())
                .map_err(|e| format!("unusable trust anchor: {e}"))?;
        }
        let webpki =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(|e| format!("unusable trust anchors: {e}"))?;
        let pinned = if trust.pin_exact {
            trust.roots
        } else {
            Vec::new()
        };
        Ok(BrokerVerifier { webpki, pinned })
    }
}

impl ServerCertVerifier for BrokerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let webpki = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match webpki {
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                verify_pinned(end_entity, server_name, now)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A pinned certificate is the broker's identity itself: what remains to
/// check is that it names the host and is valid now.
fn verify_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = now.as_secs() as i64;
    let validity = x509.validity();
    if now < validity.not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > validity.not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(ServerCertVerified::assertion())
}

impl Session {
    /// Connects, publishes `payload` on `topic` with QoS 1, waits for the
    /// PUBACK and disconnects, all within `limit`.
    pub(crate) async fn publish_once(
        &self,
        topic: &str,
        payload: &[u8],
        limit: Duration,
    ) -> Result<(), Failure> {
        match tokio::time::timeout(limit, self.publish(topic, payload, limit)).await {
            Ok(result) => result,
            Err(_) => Err(no_answer(limit)),
        }
    }

    async fn publish(&self, topic: &str, payload: &[u8], limit: Duration) -> Result<(), Failure> {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        // rumqttc's default limit is 10 KiB; AWS IoT takes 128 KiB of
        // payload (checked before connecting), plus the topic and header.
        let max_packet = AWS_IOT_MAX_PAYLOAD + topic.len() + 16;
        options.set_max_packet_size(max_packet, max_packet);
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            self.tls.clone(),
        )));
        let (client, mut events) = AsyncClient::new(options, 10);
        // rumqttc's own limit on TLS + CONNECT + CONNACK (5 s), when shorter than the attempt's.
        let connect_limit = Duration::from_secs(events.network_options().connection_timeout());
        let mut published = false;
        loop {
            let event = events
                .poll()
                .await
                .map_err(|e| classify(e, connect_limit.min(limit)))?;
            match event {
                Event::Incoming(Packet::ConnAck(_)) if !published => {
                    client
                        .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
                        .await
                        .map_err(|e| Failure {
                            kind: Refusal::Other,
                            reason: format!("publish: {e}"),
                        })?;
                    published = true;
                }
                Event::Incoming(Packet::PubAck(_)) => {
                    // Delivered; a failed DISCONNECT changes nothing for the caller.
                    let _ = client.disconnect().await;
                }
                Event::Outgoing(Outgoing::Disconnect) => return Ok(()),
                _ => {}
            }
        }
    }
}

/// The failure of an attempt that got no answer within `limit`.
fn no_answer(limit: Duration) -> Failure {
    Failure {
        kind: Refusal::Timeout,
        reason: format!(
            "the broker did not answer within {:.1} s",
            limit.as_secs_f64()
        ),
    }
}

/// An event loop error in the user's terms, one sentence, and its kind.
fn classify(err: ConnectionError, limit: Duration) -> Failure {
    let tls = rustls_error(&err);
    if let Some(tls @ rustls::Error::InvalidCertificate(_)) = tls {
        return Failure {
            kind: Refusal::Untrusted,
            reason: untrusted(tls),
        };
    }
    if tls.is_some_and(revoked_alert) {
        return Failure {
            kind: Refusal::RevokedAlert,
            reason: "the broker refused the device's certificate as revoked (TLS alert certificate_revoked)".to_string(),
        };
    }
    let (kind, reason) = match (&err, tls, io_error(&err)) {
        (ConnectionError::ConnectionRefused(code), _, _) => (
            Refusal::ConnAck,
            format!("the broker refused the connection (CONNACK {code:?})"),
        ),
        (ConnectionError::NetworkTimeout, _, _) => return no_answer(limit),
        (ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted), None, _) => (
            Refusal::Closed,
            "the broker closed the connection without answering CONNECT".to_string(),
        ),
        (_, Some(tls), _) => (Refusal::Other, format!("TLS: {tls}")),
        (_, None, Some(kind)) if dropped(kind) => (
            Refusal::Closed,
            "the broker closed the connection without answering CONNECT".to_string(),
        ),
        (_, None, Some(std::io::ErrorKind::ConnectionRefused)) => (
            Refusal::NothingListening,
            "nothing accepts connections there (connection refused)".to_string(),
        ),
        (other, None, _) => (Refusal::Other, other.to_string()),
    };
    Failure { kind, reason }
}

/// Whether the peer ended the handshake saying the client's certificate is
/// revoked (a broker that checks a CRL, as mosquitto's `crlfile` does).
fn revoked_alert(tls: &rustls::Error) -> bool {
    matches!(
        tls,
        rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRevoked)
    )
}

/// Why the broker's certificate was refused, and what to do about it.
pub(crate) fn untrusted(tls: &rustls::Error) -> String {
    if tls.to_string().contains("CaUsedAsEndEntity") {
        // A CA certificate (CA:TRUE) served as the broker's own, signed by
        // something other than what --ca-file holds (else it was pinned).
        return format!(
            "the broker's certificate is a CA certificate (basicConstraints CA:TRUE) used as a server certificate ({tls}); \
             pass exactly that certificate with --ca-file to pin it, or give the broker a certificate with CA:FALSE, \
             extendedKeyUsage serverAuth and its host name in subjectAltName, signed by the CA you pass with --ca-file"
        );
    }
    if matches!(
        tls,
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        )
    ) {
        return format!(
            "the broker's certificate does not name the host connected to ({tls}); its subjectAltName must \
             (the subject CN is not used), e.g. openssl req -x509 ... -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
        );
    }
    format!("the broker's certificate is not trusted ({tls}); pass --ca-file with the CA that signed it")
}

/// How a peer that hangs up shows in an I/O error.
fn dropped(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
    )
}

/// An event loop error and the errors under it, outermost first.
fn causes<'a>(
    err: &'a ConnectionError,
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
}

/// The kind of the first I/O error under an event loop error.
fn io_error(err: &ConnectionError) -> Option<std::io::ErrorKind> {
    causes(err).find_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind))
}

/// The rustls error under an event loop error, if there is one (tokio-rustls
/// wraps it in an io::Error).
fn rustls_error(err: &ConnectionError) -> Option<&rustls::Error> {
    causes(err).find_map(|e| {
        e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn only_an_untrusted_broker_or_a_revoked_alert_is_final() {
        use rustls::AlertDescription::*;
        assert!(revoked_alert(&rustls::Error::AlertReceived(
            CertificateRevoked
        )));
        assert!(!revoked_alert(&rustls::Error::AlertReceived(
            BadCertificate
        )));
        assert!(Refusal::Untrusted.is_final() && Refusal::RevokedAlert.is_final());
        for kind in [
            Refusal::NothingListening,
            Refusal::Closed,
            Refusal::ConnAck,
            Refusal::Timeout,
            Refusal::Other,
        ] {
            assert!(!kind.is_final(), "{kind:?}");
        }
    }

    #[test]
    fn a_peer_that_hangs_up_before_connack_is_closed_not_the_librarys_words() {
        let f = classify(
            ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted),
            Duration::from_secs(1),
        );
        assert_eq!(f.kind, Refusal::Closed);
        assert!(!f.reason.contains("Mqtt state"), "{}", f.reason);
        let f = classify(ConnectionError::NetworkTimeout, Duration::from_secs(3));
        assert_eq!(f.kind, Refusal::Timeout);
        assert!(f.reason.contains("within 3.0 s"), "{}", f.reason);
    }

    #[test]
    fn host_port_takes_the_port_an_endpoint_carries() {
        assert_eq!(
            host_port("x-ats.iot.eu-west-1.localhost:4566", 8883).unwrap(),
            ("x-ats.iot.eu-west-1.localhost".into(), 4566)
        );
        assert_eq!(host_port("h", 8883).unwrap(), ("h".into(), 8883));
        assert!(host_port("h:x", 8883).unwrap_err().contains("bad port"));
    }

    #[test]
    fn alpn_is_offered_on_port_443_only() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["device".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let config = |port| {
            let chain = vec![cert.der().clone()];
            let trust = BrokerTrust {
                roots: chain.clone(),
                pin_exact: false,
            };
            tls_config(trust, Some((chain, der.clone_key())), port).unwrap()
        };
        assert_eq!(config(443).alpn_protocols, vec![b"x-amzn-mqtt-ca".to_vec()]);
        assert!(config(8883).alpn_protocols.is_empty());
    }
}
