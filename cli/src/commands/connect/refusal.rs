//! What `jitr connect` says of a refused attempt, and whether it retries.
//! The broker's answer alone cannot tell a revoked certificate from one
//! being registered: AWS IoT closes the connection without a CONNACK for
//! both. So after such a refusal connect asks AWS IoT (DescribeCertificate)
//! when the broker is AWS IoT's or an emulator's and AWS can be reached; a
//! broker that checks a CRL says "revoked" in a TLS alert itself.

use std::time::Duration;

use jitr_core::iot::CertStatus;

use crate::cloud::Cloud;
use crate::mqtt::Refusal;

/// How long asking AWS IoT for the certificate's status may take.
const ASK_LIMIT: Duration = Duration::from_secs(4);

/// What AWS IoT holds of the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// Registered, with this status (ACTIVE, PENDING_ACTIVATION, REVOKED, ...).
    Status(CertStatus),
    /// Never registered in this account and region.
    Unregistered,
}

/// DescribeCertificate within [`ASK_LIMIT`]; `None` when AWS did not answer.
pub(crate) fn ask(aws: &jitr_core::aws::AwsOptions, certificate_id: &str) -> Option<Held> {
    let (aws, id) = (aws.clone(), certificate_id.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    // Left behind on timeout: the process does not wait for it.
    std::thread::spawn(move || {
        let held = Cloud::connect(&aws)
            .ok()
            .and_then(|cloud| cloud.device_certificate(&id).ok())
            .map(|d| d.map_or(Held::Unregistered, |d| Held::Status(d.status)));
        let _ = tx.send(held);
    });
    rx.recv_timeout(ASK_LIMIT).ok().flatten()
}

/// The refusal as AWS IoT's record explains it: the sentence, and whether
/// retrying can help (not for a REVOKED or INACTIVE certificate: nothing
/// changes either while connect waits).
pub(crate) fn judge(held: &Held, certificate_id: &str) -> (String, bool) {
    let id = certificate_id;
    match held {
        Held::Status(CertStatus::Revoked) => (
            format!("AWS IoT holds certificate {id} REVOKED, so the broker refuses it for good; give the device a new certificate (jitr device rotate)"),
            false,
        ),
        Held::Status(CertStatus::Inactive) => (
            format!("AWS IoT holds certificate {id} INACTIVE, so the broker refuses it and nothing activates it on connect; activate it with aws iot update-certificate --certificate-id {id} --new-status ACTIVE"),
            false,
        ),
        Held::Status(CertStatus::PendingActivation) => (
            format!("the broker refused certificate {id}: AWS IoT holds it PENDING_ACTIVATION, waiting for the function to activate it"),
            true,
        ),
        Held::Status(CertStatus::Active) => (
            format!("the broker refused certificate {id} though AWS IoT holds it ACTIVE: its policy may not allow iot:Connect with this client id"),
            true,
        ),
        Held::Status(s) => (
            format!("the broker refused certificate {id}: AWS IoT holds it {s}"),
            true,
        ),
        Held::Unregistered => (
            format!("the broker refused certificate {id}, which AWS IoT does not hold: a first connect registers it only when its CA is registered ACTIVE with auto-registration on (jitr ca show)"),
            true,
        ),
    }
}

/// Whether a refusal of this kind is worth asking AWS IoT about: the broker
/// closed or refused without saying why, or did not answer (then only a
/// final answer, REVOKED or INACTIVE, replaces the timeout's sentence).
pub(crate) fn worth_asking(kind: Refusal) -> bool {
    matches!(kind, Refusal::Closed | Refusal::ConnAck | Refusal::Timeout)
}

/// What to do after the last attempt failed with `kind` (`held`: what AWS
/// IoT said of the certificate, if it was asked): only the hint that
/// applies; `None` when the failure's own sentence already says it.
pub(crate) fn hint(
    kind: Refusal,
    held: Option<&Held>,
    chain_len: usize,
    device: Option<&str>,
) -> Option<String> {
    let doctor = format!("run `jitr doctor {}`", device.unwrap_or("--cert FILE"));
    match kind {
        Refusal::Untrusted | Refusal::RevokedAlert => None,
        Refusal::NothingListening => Some(
            "check the endpoint's host and port (jitr endpoint prints the account's; AWS IoT listens on 8883 and 443)".to_string(),
        ),
        Refusal::Timeout if held.is_some() => None,
        Refusal::Timeout => Some(format!(
            "check that the endpoint is an MQTT over TLS port (8883, or 443) and that nothing on the path holds the connection, or {doctor}"
        )),
        Refusal::Closed | Refusal::ConnAck => Some(match held {
            // The judgment said what to do.
            Some(Held::Status(CertStatus::Revoked | CertStatus::Inactive)) => return None,
            Some(Held::Status(CertStatus::PendingActivation)) => format!(
                "nothing activated it in time; {doctor} to see whether the function ran"
            ),
            Some(_) => format!("{doctor} to find out why"),
            None => {
                let mut text = String::new();
                if chain_len < 2 {
                    text += "the bundle holds the device certificate alone: without SNI, AWS IoT needs the issuing CA's certificate after it; ";
                }
                text + &format!("a certificate's first connect is refused while AWS IoT registers it PENDING_ACTIVATION, later ones until the function activates it; {doctor} to find out which")
            }
        }),
        Refusal::Other => Some(format!("{doctor} to find out why")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_and_inactive_stop_the_retries_pending_does_not() {
        let held = |s: &str| Held::Status(s.into());
        let (why, retry) = judge(&held("REVOKED"), "abc");
        assert!(
            !retry && why.contains("REVOKED") && why.contains("abc"),
            "{why}"
        );
        assert!(!judge(&held("INACTIVE"), "abc").1);
        for s in ["PENDING_ACTIVATION", "ACTIVE"] {
            assert!(judge(&held(s), "abc").1, "{s}");
        }
        let (why, retry) = judge(&Held::Unregistered, "abc");
        assert!(retry && why.contains("auto-registration"), "{why}");
    }

    #[test]
    fn the_activation_hint_is_given_only_where_it_applies() {
        let pending =
            |h: &Option<String>| h.as_deref().unwrap_or("").contains("PENDING_ACTIVATION");
        for kind in [
            Refusal::Untrusted,
            Refusal::RevokedAlert,
            Refusal::NothingListening,
            Refusal::Timeout,
            Refusal::Other,
        ] {
            assert!(!pending(&hint(kind, None, 2, None)), "{kind:?}");
        }
        assert!(hint(Refusal::Untrusted, None, 2, None).is_none());
        let closed = hint(Refusal::Closed, None, 1, Some("dev/robot-1")).unwrap();
        assert!(
            closed.contains("PENDING_ACTIVATION")
                && closed.contains("device certificate alone")
                && closed.contains("jitr doctor dev/robot-1"),
            "{closed}"
        );
        let chained = hint(Refusal::Closed, None, 2, None).unwrap();
        assert!(!chained.contains("alone") && chained.contains("jitr doctor --cert FILE"));
        let held = Held::Status("ACTIVE".into());
        assert!(!pending(&hint(Refusal::Closed, Some(&held), 2, None)));
    }
}
