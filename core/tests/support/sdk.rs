//! Scripted AWS IoT answers (aws-smithy-mocks) through the real SDK client:
//! the faults and requests the emulators cannot show.

use std::sync::{Arc, Mutex};

use aws_sdk_iot::operation::attach_policy::AttachPolicyOutput;
use aws_sdk_iot::operation::attach_thing_principal::AttachThingPrincipalOutput;
use aws_sdk_iot::operation::create_thing::CreateThingOutput;
use aws_sdk_iot::operation::describe_certificate::DescribeCertificateOutput;
use aws_sdk_iot::operation::list_thing_principals::ListThingPrincipalsOutput;
use aws_sdk_iot::operation::update_certificate::UpdateCertificateOutput;
use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::{CertificateDescription, CertificateStatus};
use aws_sdk_iot::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use jitr_core::iot::SdkIot;

use super::{arn, device_pem, CA};

/// Robot-7's successor certificate, registered at [`T`] + 5 s.
pub const NEW: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
/// Robot-7's predecessor certificate, registered at [`T`].
pub const OLD: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
/// When OLD was registered, in ms since the epoch.
pub const T: i64 = 1_790_000_000_000;

/// The calls that reached the "service", in order.
pub type Log = Arc<Mutex<Vec<String>>>;

/// An SDK error as AWS IoT answers it: `$error::$exception` (e.g.
/// `UpdateCertificateError::ThrottlingException`) saying `$message`.
macro_rules! iot_error {
    ($error:ident :: $exception:ident, $message:expr) => {
        $error::$exception(
            aws_sdk_iot::types::error::$exception::builder()
                .message($message)
                .meta(
                    aws_sdk_iot::error::ErrorMetadata::builder()
                        .code(stringify!($exception))
                        .message($message)
                        .build(),
                )
                .build(),
        )
    };
}
pub(crate) use iot_error;

/// A client answering from `rules` (the first that matches answers) with
/// jitr's retry configuration: the CLI's client.
pub fn client<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> SdkIot {
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, rules, |c| {
        jitr_core::aws::iot_retry_rules(c).retry_config(jitr_core::aws::retry_config())
    });
    SdkIot {
        client,
        endpoint: "mock".into(),
    }
}

/// DescribeCertificate answering for one certificate; see [`describe`].
pub struct Describe {
    id: &'static str,
    cn: String,
    status: CertificateStatus,
    ca: Option<String>,
    created_ms: Option<i64>,
    log: Option<Log>,
}

/// DescribeCertificate answering for certificate `id` only: a device
/// certificate named `cn`, pending activation unless told otherwise.
pub fn describe(id: &'static str, cn: &str) -> Describe {
    Describe {
        id,
        cn: cn.into(),
        status: CertificateStatus::PendingActivation,
        ca: None,
        created_ms: None,
        log: None,
    }
}

impl Describe {
    pub fn status(self, status: CertificateStatus) -> Self {
        Describe { status, ..self }
    }
    pub fn ca(self, ca: &str) -> Self {
        Describe {
            ca: Some(ca.into()),
            ..self
        }
    }
    pub fn created(self, ms: i64) -> Self {
        Describe {
            created_ms: Some(ms),
            ..self
        }
    }
    /// Each call logged as "DescribeCertificate".
    pub fn logged(self, log: &Log) -> Self {
        Describe {
            log: Some(log.clone()),
            ..self
        }
    }
    /// The rule; the certificate (one key) is made now.
    pub fn rule(self) -> Rule {
        let Describe {
            id,
            cn,
            status,
            ca,
            created_ms,
            log,
        } = self;
        let pem = device_pem(&cn);
        mock!(Client::describe_certificate)
            .match_requests(move |req| req.certificate_id() == Some(id))
            .then_compute_output(move |_| {
                if let Some(log) = &log {
                    log.lock().unwrap().push("DescribeCertificate".into());
                }
                let description = CertificateDescription::builder()
                    .certificate_arn(arn(id))
                    .certificate_id(id)
                    .set_ca_certificate_id(ca.clone())
                    .status(status.clone())
                    .set_creation_date(created_ms.map(DateTime::from_millis))
                    .certificate_pem(pem.clone())
                    .build();
                DescribeCertificateOutput::builder()
                    .certificate_description(description)
                    .build()
            })
    }
}

/// A rotation of robot-7 as the service answers it: [`NEW`] in `new`,
/// [`OLD`] in `old` (both of [`CA`]), the thing holding `attached`; every
/// other call succeeds, and each change is logged in the order it reached
/// the "service": "CreateThing", "AttachPolicy", "AttachThingPrincipal
/// TYPE" ("-" for none), "UpdateCertificate ID STATUS" (the id's first four
/// characters).
pub fn rotation(
    log: &Log,
    new: CertificateStatus,
    old: CertificateStatus,
    attached: &'static [&'static str],
) -> Vec<Rule> {
    let robot_7 = |id, status, created| {
        describe(id, "robot-7")
            .status(status)
            .ca(CA)
            .created(created)
            .rule()
    };
    let mut rules = vec![robot_7(NEW, new, T + 5000), robot_7(OLD, old, T)];
    rules.extend(robot_7_holding(log, attached));
    rules
}

/// Thing robot-7 holding `attached`, every other call succeeding and each
/// change logged; see [`rotation`].
fn robot_7_holding(log: &Log, attached: &'static [&'static str]) -> Vec<Rule> {
    let listed = mock!(Client::list_thing_principals).then_compute_output(move |_| {
        ListThingPrincipalsOutput::builder()
            .set_principals(Some(attached.iter().map(|id| arn(id)).collect()))
            .build()
    });
    let l = log.clone();
    let create = mock!(Client::create_thing).then_compute_output(move |_| {
        l.lock().unwrap().push("CreateThing".into());
        CreateThingOutput::builder().build()
    });
    let l = log.clone();
    let policy = mock!(Client::attach_policy).then_compute_output(move |_| {
        l.lock().unwrap().push("AttachPolicy".into());
        AttachPolicyOutput::builder().build()
    });
    let l = log.clone();
    let principal = mock!(Client::attach_thing_principal).then_compute_output(move |req| {
        let kind = req.thing_principal_type().map_or("-", |t| t.as_str());
        l.lock()
            .unwrap()
            .push(format!("AttachThingPrincipal {kind}"));
        AttachThingPrincipalOutput::builder().build()
    });
    let l = log.clone();
    let update = mock!(Client::update_certificate).then_compute_output(move |req| {
        l.lock().unwrap().push(format!(
            "UpdateCertificate {} {}",
            &req.certificate_id().unwrap()[..4],
            req.new_status().unwrap().as_str()
        ));
        UpdateCertificateOutput::builder().build()
    });
    vec![listed, create, policy, principal, update]
}
