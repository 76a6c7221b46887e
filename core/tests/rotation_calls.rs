//! Rotation and exclusive attachment against scripted SDK answers
//! (aws-smithy-mocks): the requests the function sends, in order, through
//! the real SDK client. The emulator ignores `thingPrincipalType`, so the
//! request is where EXCLUSIVE_THING can be observed.

use std::sync::{Arc, Mutex};

use aws_sdk_iot::operation::attach_policy::AttachPolicyOutput;
use aws_sdk_iot::operation::attach_thing_principal::AttachThingPrincipalOutput;
use aws_sdk_iot::operation::create_thing::CreateThingOutput;
use aws_sdk_iot::operation::describe_certificate::DescribeCertificateOutput;
use aws_sdk_iot::operation::list_thing_principals::ListThingPrincipalsOutput;
use aws_sdk_iot::operation::update_certificate::{UpdateCertificateError, UpdateCertificateOutput};
use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::error::InvalidRequestException;
use aws_sdk_iot::types::{CertificateDescription, CertificateStatus, ThingPrincipalType};
use aws_sdk_iot::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use jitr_core::config::Config;
use jitr_core::iot::SdkIot;
use jitr_core::outcome::{Kind, Outcome};
use jitr_core::provision::provision;

const CA: &str = "1111111111111111111111111111111111111111111111111111111111111111";
/// The successor, registered at T + 5 s.
const NEW: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
/// The predecessor, registered at T.
const OLD: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
const T: i64 = 1_790_000_000_000;

type Log = Arc<Mutex<Vec<String>>>;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn arn(id: &str) -> String {
    format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}")
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars = vec![("JITR_POLICY_NAME", "jitr-device")];
    vars.extend_from_slice(extra);
    Config::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn device_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.self_signed(&key).unwrap().pem()
}

/// DescribeCertificate for `id` only: robot-7 of CA, in `status`, registered at `created` ms.
fn describe(id: &'static str, status: CertificateStatus, created: i64) -> Rule {
    let pem = device_pem("robot-7");
    mock!(Client::describe_certificate)
        .match_requests(move |req| req.certificate_id() == Some(id))
        .then_compute_output(move |_| {
            DescribeCertificateOutput::builder()
                .certificate_description(
                    CertificateDescription::builder()
                        .certificate_arn(arn(id))
                        .certificate_id(id)
                        .ca_certificate_id(CA)
                        .status(status.clone())
                        .creation_date(DateTime::from_millis(created))
                        .certificate_pem(pem.clone())
                        .build(),
                )
                .build()
        })
}

/// Every other call succeeds and is logged in the order it reached the
/// "service"; robot-7 holds `attached`.
fn service(log: &Log, attached: &'static [&'static str]) -> Vec<Rule> {
    let l = log.clone();
    let listed = mock!(Client::list_thing_principals).then_compute_output(move |_| {
        l.lock().unwrap().push("ListThingPrincipals".into());
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
        let kind = req
            .thing_principal_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "-".into());
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

async fn run(rules: &[&Rule], config: &Config, id: &str) -> Outcome {
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, rules, |c| c
        .retry_config(jitr_core::aws::retry_config()));
    let api = SdkIot {
        client,
        endpoint: "mock".into(),
    };
    provision(&api, config, id, now()).await
}

/// NEW arrives pending; robot-7 holds OLD (`old_status`): the outcome and the calls.
async fn new_arrives(
    old_status: CertificateStatus,
    extra: &[(&str, &str)],
) -> (Outcome, Vec<String>) {
    let log: Log = Default::default();
    let new = describe(NEW, CertificateStatus::PendingActivation, T + 5000);
    let old = describe(OLD, old_status, T);
    let rules = service(&log, &[OLD]);
    let mut all: Vec<&Rule> = vec![&new, &old];
    all.extend(rules.iter());
    let outcome = run(&all, &config(extra), NEW).await;
    let calls = log.lock().unwrap().clone();
    (outcome, calls)
}

#[tokio::test]
async fn retire_previous_sets_the_old_certificate_inactive_only_after_the_new_one_is_active() {
    let (outcome, calls) = new_arrives(
        CertificateStatus::Active,
        &[("JITR_ON_ROTATION", "retire-previous")],
    )
    .await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert_eq!(outcome.retired, [OLD]);
    assert!(
        outcome.reason.as_deref().unwrap().contains(OLD),
        "the log line names it: {outcome:?}"
    );
    let updates: Vec<&String> = calls.iter().filter(|c| c.starts_with("Update")).collect();
    assert_eq!(
        updates,
        [
            "UpdateCertificate 0b0b ACTIVE",
            "UpdateCertificate 0a0a INACTIVE"
        ],
        "{calls:?}"
    );
    assert_eq!(calls.last().unwrap(), "UpdateCertificate 0a0a INACTIVE");
}

#[tokio::test]
async fn keep_leaves_the_old_certificate_active() {
    let (outcome, calls) = new_arrives(CertificateStatus::Active, &[]).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert!(outcome.retired.is_empty());
    assert!(!calls.iter().any(|c| c.contains("INACTIVE")), "{calls:?}");
    // An old certificate already INACTIVE is left alone under retire-previous too.
    let (outcome, calls) = new_arrives(
        CertificateStatus::Inactive,
        &[("JITR_ON_ROTATION", "retire-previous")],
    )
    .await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert!(!calls.iter().any(|c| c.contains("INACTIVE")), "{calls:?}");
}

#[tokio::test]
async fn exclusive_thing_attaches_with_the_exclusive_type() {
    let (outcome, calls) = new_arrives(
        CertificateStatus::Active,
        &[("JITR_EXCLUSIVE_THING", "true")],
    )
    .await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert!(
        calls.contains(&"AttachThingPrincipal EXCLUSIVE_THING".to_string()),
        "{calls:?}"
    );
    assert_eq!(
        ThingPrincipalType::ExclusiveThing.as_str(),
        "EXCLUSIVE_THING"
    );
    // Without the setting, the request carries no type (AWS's default,
    // NON_EXCLUSIVE_THING).
    let (_, calls) = new_arrives(CertificateStatus::Active, &[]).await;
    assert!(
        calls.contains(&"AttachThingPrincipal -".to_string()),
        "{calls:?}"
    );
}

/// Replays after a rotation: `new_status`/`old_status` as AWS holds them,
/// the event for `id`: the outcome and the mutating calls.
async fn replay(
    id: &'static str,
    new_status: CertificateStatus,
    old_status: CertificateStatus,
) -> (Outcome, Vec<String>) {
    let log: Log = Default::default();
    let new = describe(NEW, new_status, T + 5000);
    let old = describe(OLD, old_status, T);
    let rules = service(&log, &[OLD, NEW]);
    let mut all: Vec<&Rule> = vec![&new, &old];
    all.extend(rules.iter());
    let outcome = run(
        &all,
        &config(&[("JITR_ON_ROTATION", "retire-previous")]),
        id,
    )
    .await;
    let calls = log.lock().unwrap().clone();
    let mutations = calls
        .into_iter()
        .filter(|c| c != "ListThingPrincipals")
        .collect();
    (outcome, mutations)
}

#[tokio::test]
async fn replayed_events_after_a_rotation_change_nothing() {
    use CertificateStatus::{Active, Inactive};
    // The successor's event again: already active, nothing to retire.
    let (outcome, calls) = replay(NEW, Active, Inactive).await;
    assert_eq!(outcome.outcome, Kind::AlreadyActive, "{outcome:?}");
    assert!(calls.is_empty(), "{calls:?}");
    // The predecessor's event again: INACTIVE stays INACTIVE, the successor stays.
    let (outcome, calls) = replay(OLD, Active, Inactive).await;
    assert_eq!(outcome.outcome, Kind::Inactive, "{outcome:?}");
    assert_eq!(outcome.outcome.name(), "Inactive");
    assert!(calls.is_empty(), "{calls:?}");
    // Interrupted before the retirement (both ACTIVE): the successor's
    // retried event finishes it; the predecessor's never retires the successor.
    let (outcome, calls) = replay(NEW, Active, Active).await;
    assert_eq!(outcome.outcome, Kind::AlreadyActive, "{outcome:?}");
    assert_eq!(outcome.retired, [OLD]);
    assert_eq!(calls, ["UpdateCertificate 0a0a INACTIVE"]);
    let (outcome, calls) = replay(OLD, Active, Active).await;
    assert_eq!(outcome.outcome, Kind::AlreadyActive, "{outcome:?}");
    assert!(calls.is_empty(), "{calls:?}");
}

#[tokio::test]
async fn a_failed_retirement_is_reported_after_the_activation() {
    let log: Log = Default::default();
    let new = describe(NEW, CertificateStatus::PendingActivation, T + 5000);
    let old = describe(OLD, CertificateStatus::Active, T);
    let refused = mock!(Client::update_certificate)
        .match_requests(|req| req.new_status() == Some(&CertificateStatus::Inactive))
        .then_error(|| {
            UpdateCertificateError::InvalidRequestException(
                InvalidRequestException::builder()
                    .message("no")
                    .meta(
                        aws_sdk_iot::error::ErrorMetadata::builder()
                            .code("InvalidRequestException")
                            .build(),
                    )
                    .build(),
            )
        });
    let rules = service(&log, &[OLD]);
    let mut all: Vec<&Rule> = vec![&new, &old, &refused];
    all.extend(rules.iter());
    let outcome = run(
        &all,
        &config(&[("JITR_ON_ROTATION", "retire-previous")]),
        NEW,
    )
    .await;
    assert_eq!(outcome.outcome, Kind::Failed, "{outcome:?}");
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .starts_with("UpdateCertificate INACTIVE (previous certificate)"),
        "{outcome:?}"
    );
    assert_eq!(
        log.lock().unwrap().last().unwrap(),
        "UpdateCertificate 0b0b ACTIVE",
        "the new one was activated first"
    );
}

/// What reaches the wire: a capturing HTTP server on 127.0.0.1 answers
/// one request `{}` and hands back its request line.
fn capture_one() -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        // Headers, then the (empty) body.
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            .unwrap();
        request_line.trim().to_string()
    });
    (port, server)
}

#[tokio::test]
async fn the_exclusive_type_is_on_the_wire() {
    use jitr_core::iot::IotApi;
    for (exclusive, expected) in [
        (
            true,
            "PUT /things/robot-7/principals?thingPrincipalType=EXCLUSIVE_THING HTTP/1.1",
        ),
        (false, "PUT /things/robot-7/principals HTTP/1.1"),
    ] {
        let (port, server) = capture_one();
        let config = aws_sdk_iot::Config::builder()
            .behavior_version(aws_sdk_iot::config::BehaviorVersion::latest())
            .region(aws_sdk_iot::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_iot::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .build();
        let api = SdkIot {
            client: Client::from_conf(config),
            endpoint: "capture".into(),
        };
        api.attach_thing_principal("robot-7", &arn(NEW), exclusive)
            .await
            .unwrap();
        assert_eq!(server.join().unwrap(), expected);
    }
}
