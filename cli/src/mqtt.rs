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
    /// Retrying cannot help (the broker's certificate is not trusted).
    pub(crate) fatal: bool,
    pub(crate) reason: String,
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
        match tokio::time::timeout(limit, self.publish(topic, payload)).await {
            Ok(result) => result,
            Err(_) => Err(Failure {
                fatal: false,
                reason: format!("no answer within {:.1} s", limit.as_secs_f64()),
            }),
        }
    }

    async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), Failure> {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        // rumqttc's default limit is 10 KiB; AWS IoT takes 128 KiB of
        // payload (checked before connecting), plus the topic and header.
        let limit = AWS_IOT_MAX_PAYLOAD + topic.len() + 16;
        options.set_max_packet_size(limit, limit);
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            self.tls.clone(),
        )));
        let (client, mut events) = AsyncClient::new(options, 10);
        let mut published = false;
        loop {
            let event = events.poll().await.map_err(classify)?;
            match event {
                Event::Incoming(Packet::ConnAck(_)) if !published => {
                    client
                        .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
                        .await
                        .map_err(|e| Failure {
                            fatal: false,
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

/// An event loop error in the user's terms; an untrusted broker certificate is fatal.
fn classify(err: ConnectionError) -> Failure {
    if let Some(tls @ rustls::Error::InvalidCertificate(_)) = rustls_error(&err) {
        return Failure {
            fatal: true,
            reason: untrusted(tls),
        };
    }
    let reason = match (&err, rustls_error(&err), io_error(&err)) {
        (ConnectionError::ConnectionRefused(code), _, _) => format!("CONNACK refused: {code:?}"),
        (_, Some(tls), _) => format!("TLS: {tls}"),
        (_, None, Some(kind)) if dropped(kind) => {
            "the broker closed the connection (the certificate may not be active yet)".to_string()
        }
        (_, None, Some(std::io::ErrorKind::ConnectionRefused)) => {
            "nothing accepts connections there (connection refused)".to_string()
        }
        (other, None, _) => other.to_string(),
    };
    Failure {
        fatal: false,
        reason,
    }
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
