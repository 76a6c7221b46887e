//! `provision` and `dry_run` carry out one plan: what a dry run reports is
//! what a real run does, against the same scripted SDK answers
//! (aws-smithy-mocks). The case that once differed: an ACTIVE certificate
//! whose rotation was cut short before the predecessor was retired.

use std::sync::{Arc, Mutex};

use aws_sdk_iot::operation::describe_certificate::DescribeCertificateOutput;
use aws_sdk_iot::operation::list_thing_principals::ListThingPrincipalsOutput;
use aws_sdk_iot::operation::update_certificate::UpdateCertificateOutput;
use aws_sdk_iot::primitives::DateTime;
use aws_sdk_iot::types::{CertificateDescription, CertificateStatus};
use aws_sdk_iot::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use jitr_core::config::Config;
use jitr_core::iot::SdkIot;
use jitr_core::outcome::Kind;
use jitr_core::provision::{dry_run, provision};

const CA: &str = "1111111111111111111111111111111111111111111111111111111111111111";
/// The successor, registered at T + 5 s: ACTIVE.
const NEW: &str = "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b";
/// The predecessor, registered at T: still ACTIVE (the rotation was cut short).
const OLD: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
const T: i64 = 1_790_000_000_000;

type Log = Arc<Mutex<Vec<String>>>;

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

/// DescribeCertificate for `id`: robot-7 of CA, ACTIVE, registered at `created` ms.
fn describe(id: &'static str, created: i64) -> Rule {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "robot-7");
    let pem = p.self_signed(&key).unwrap().pem();
    mock!(Client::describe_certificate)
        .match_requests(move |req| req.certificate_id() == Some(id))
        .then_compute_output(move |_| {
            DescribeCertificateOutput::builder()
                .certificate_description(
                    CertificateDescription::builder()
                        .certificate_arn(arn(id))
                        .certificate_id(id)
                        .ca_certificate_id(CA)
                        .status(CertificateStatus::Active)
                        .creation_date(DateTime::from_millis(created))
                        .certificate_pem(pem.clone())
                        .build(),
                )
                .build()
        })
}

/// robot-7 holds both certificates; every UpdateCertificate is logged.
fn service(log: &Log) -> Vec<Rule> {
    let listed = mock!(Client::list_thing_principals).then_compute_output(|_| {
        ListThingPrincipalsOutput::builder()
            .set_principals(Some(vec![arn(OLD), arn(NEW)]))
            .build()
    });
    let l = log.clone();
    let update = mock!(Client::update_certificate).then_compute_output(move |req| {
        l.lock().unwrap().push(format!(
            "{} {}",
            req.certificate_id().unwrap(),
            req.new_status().unwrap().as_str()
        ));
        UpdateCertificateOutput::builder().build()
    });
    vec![listed, update]
}

fn api(rules: &[&Rule]) -> SdkIot {
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, rules, |c| c
        .retry_config(jitr_core::aws::retry_config()));
    SdkIot {
        client,
        endpoint: "mock".into(),
    }
}

#[tokio::test]
async fn a_dry_run_reports_the_retirement_a_real_run_makes() {
    let log: Log = Default::default();
    let (new, old) = (describe(NEW, T + 5000), describe(OLD, T));
    let service = service(&log);
    let mut rules: Vec<&Rule> = vec![&new, &old];
    rules.extend(service.iter());
    let config = config(&[("JITR_ON_ROTATION", "retire-previous")]);
    let now = jitr_core::clock::unix_seconds();

    let plan = dry_run(&api(&rules), &config, NEW, now).await.unwrap();
    assert!(log.lock().unwrap().is_empty(), "a dry run changes nothing");
    let planned = serde_json::to_value(&plan).unwrap();
    assert_eq!(planned["action"], "finish_rotation", "{planned}");
    assert_eq!(planned["thing_name"], "robot-7", "{planned}");
    assert_eq!(planned["retire"], serde_json::json!([OLD]), "{planned}");

    let outcome = provision(&api(&rules), &config, NEW, now).await;
    assert_eq!(outcome.outcome, Kind::AlreadyActive, "{outcome:?}");
    assert_eq!(outcome.retired, [OLD]);
    assert_eq!(*log.lock().unwrap(), [format!("{OLD} INACTIVE")]);

    // Under keep the same answers plan nothing, and nothing is done.
    let keep = self::config(&[]);
    let planned =
        serde_json::to_value(dry_run(&api(&rules), &keep, NEW, now).await.unwrap()).unwrap();
    assert_eq!(planned["action"], "skip", "{planned}");
    let outcome = provision(&api(&rules), &keep, NEW, now).await;
    assert!(outcome.retired.is_empty(), "{outcome:?}");
    assert_eq!(log.lock().unwrap().len(), 1);
}
