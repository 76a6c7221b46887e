//! Rotation and exclusive attachment against scripted SDK answers
//! (aws-smithy-mocks): the requests the function sends, in order, through
//! the real SDK client. The emulator ignores `thingPrincipalType`, so the
//! request is where EXCLUSIVE_THING can be observed.

use aws_sdk_iot::operation::update_certificate::UpdateCertificateError;
use aws_sdk_iot::types::{CertificateStatus, ThingPrincipalType};
use aws_sdk_iot::Client;
use aws_smithy_mocks::{mock, Rule};
use jitr_core::iot::SdkIot;
use jitr_core::outcome::{Kind, Outcome};
use jitr_core::provision::{provision, Gates};

use crate::support::sdk::{self, iot_error, Log, NEW, OLD};
use crate::support::{self, arn, now};

const RETIRE: (&str, &str) = ("JITR_ON_ROTATION", "retire-previous");

/// The event for `id` under the settings `extra`, the service answering a
/// rotation ([`sdk::rotation`]: NEW in `new`, OLD in `old`, robot-7
/// holding `attached`) after `faults`: the outcome and the changes made.
async fn run(
    id: &str,
    (new, old): (CertificateStatus, CertificateStatus),
    attached: &'static [&'static str],
    faults: &[&Rule],
    extra: &[(&str, &str)],
) -> (Outcome, Vec<String>) {
    let log: Log = Default::default();
    let rules = sdk::rotation(&log, new, old, attached);
    let api = sdk::client(faults.iter().copied().chain(&rules));
    let outcome = provision(&api, Gates::none(), &support::config(extra), id, now()).await;
    let calls = log.lock().unwrap().clone();
    (outcome, calls)
}

/// NEW arrives pending; robot-7 holds OLD (`old_status`): the outcome and the calls.
async fn new_arrives(
    old_status: CertificateStatus,
    extra: &[(&str, &str)],
) -> (Outcome, Vec<String>) {
    let statuses = (CertificateStatus::PendingActivation, old_status);
    run(NEW, statuses, &[OLD], &[], extra).await
}

#[tokio::test]
async fn retire_previous_sets_the_old_certificate_inactive_only_after_the_new_one_is_active() {
    let (outcome, calls) = new_arrives(CertificateStatus::Active, &[RETIRE]).await;
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
    let (outcome, calls) = new_arrives(CertificateStatus::Inactive, &[RETIRE]).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert!(!calls.iter().any(|c| c.contains("INACTIVE")), "{calls:?}");
}

#[tokio::test]
async fn exclusive_thing_attaches_with_the_exclusive_type() {
    let exclusive = [("JITR_EXCLUSIVE_THING", "true")];
    let (outcome, calls) = new_arrives(CertificateStatus::Active, &exclusive).await;
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
    id: &str,
    new_status: CertificateStatus,
    old_status: CertificateStatus,
) -> (Outcome, Vec<String>) {
    run(id, (new_status, old_status), &[OLD, NEW], &[], &[RETIRE]).await
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
    let refused = mock!(Client::update_certificate)
        .match_requests(|req| req.new_status() == Some(&CertificateStatus::Inactive))
        .then_error(|| iot_error!(UpdateCertificateError::InvalidRequestException, "no"));
    let statuses = (
        CertificateStatus::PendingActivation,
        CertificateStatus::Active,
    );
    let (outcome, calls) = run(NEW, statuses, &[OLD], &[&refused], &[RETIRE]).await;
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
        calls.last().unwrap(),
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
