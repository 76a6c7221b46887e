//! Provisioning against scripted SDK answers (aws-smithy-mocks): the faults
//! moto cannot produce (throttling, 5xx, conflicts, refusals) and the call
//! order, through the real SDK client with jitr's retry configuration.

use std::sync::{Arc, Mutex};

use aws_sdk_iot::error::ErrorMetadata;
use aws_sdk_iot::operation::attach_policy::AttachPolicyOutput;
use aws_sdk_iot::operation::attach_thing_principal::{
    AttachThingPrincipalError, AttachThingPrincipalOutput,
};
use aws_sdk_iot::operation::create_thing::{CreateThingError, CreateThingOutput};
use aws_sdk_iot::operation::describe_certificate::DescribeCertificateOutput;
use aws_sdk_iot::operation::list_thing_principals::{
    ListThingPrincipalsError, ListThingPrincipalsOutput,
};
use aws_sdk_iot::operation::update_certificate::{UpdateCertificateError, UpdateCertificateOutput};
use aws_sdk_iot::types::error::{
    InvalidRequestException, ResourceAlreadyExistsException, ResourceNotFoundException,
    ThrottlingException,
};
use aws_sdk_iot::types::{CertificateDescription, CertificateStatus};
use aws_sdk_iot::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use jitr_core::claims::{Claim, Claims, ClaimsError};
use jitr_core::config::Config;
use jitr_core::deadline::Deadline;
use jitr_core::iot::SdkIot;
use jitr_core::outcome::Kind;
use jitr_core::provision::provision;
use serde_json::json;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ARN: &str = "arn:aws:iot:eu-west-1:123456789012:cert/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn device_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.self_signed(&key).unwrap().pem()
}

fn config() -> Config {
    Config::from_lookup(|k| (k == "JITR_POLICY_NAME").then(|| "jitr-device".to_string())).unwrap()
}

type Log = Arc<Mutex<Vec<&'static str>>>;

fn describe_rule(log: &Log, cn: &str, status: CertificateStatus) -> Rule {
    let (log, pem) = (log.clone(), device_pem(cn));
    mock!(Client::describe_certificate).then_compute_output(move |_| {
        log.lock().unwrap().push("DescribeCertificate");
        DescribeCertificateOutput::builder()
            .certificate_description(
                CertificateDescription::builder()
                    .certificate_arn(ARN)
                    .certificate_id(ID)
                    .status(status.clone())
                    .certificate_pem(pem.clone())
                    .build(),
            )
            .build()
    })
}

/// Every call succeeds, and is logged in the order it reached the "service".
fn happy_rules(log: &Log) -> Vec<Rule> {
    let l = log.clone();
    let create = mock!(Client::create_thing).then_compute_output(move |_| {
        l.lock().unwrap().push("CreateThing");
        CreateThingOutput::builder().build()
    });
    let l = log.clone();
    let policy = mock!(Client::attach_policy).then_compute_output(move |req| {
        assert_eq!(
            (req.policy_name(), req.target()),
            (Some("jitr-device"), Some(ARN))
        );
        l.lock().unwrap().push("AttachPolicy");
        AttachPolicyOutput::builder().build()
    });
    let l = log.clone();
    let principal = mock!(Client::attach_thing_principal).then_compute_output(move |req| {
        assert_eq!(
            (req.thing_name(), req.principal()),
            (Some("robot-7"), Some(ARN))
        );
        l.lock().unwrap().push("AttachThingPrincipal");
        AttachThingPrincipalOutput::builder().build()
    });
    let l = log.clone();
    let update = mock!(Client::update_certificate).then_compute_output(move |req| {
        assert_eq!(req.new_status(), Some(&CertificateStatus::Active));
        l.lock().unwrap().push("UpdateCertificate");
        UpdateCertificateOutput::builder().build()
    });
    let l = log.clone();
    let no_thing = mock!(Client::list_thing_principals).then_error(move || {
        l.lock().unwrap().push("ListThingPrincipals");
        not_found("robot-7")
    });
    vec![create, policy, principal, update, no_thing]
}

fn not_found(thing: &str) -> ListThingPrincipalsError {
    ListThingPrincipalsError::ResourceNotFoundException(
        ResourceNotFoundException::builder()
            .message(format!("Thing {thing} not found"))
            .meta(
                ErrorMetadata::builder()
                    .code("ResourceNotFoundException")
                    .build(),
            )
            .build(),
    )
}

fn client(rules: &[&Rule]) -> SdkIot {
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, rules, |c| {
        jitr_core::aws::iot_retry_rules(c).retry_config(jitr_core::aws::retry_config())
    });
    SdkIot {
        client,
        endpoint: "mock".into(),
    }
}

#[tokio::test]
async fn activation_is_the_last_call() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let mut all: Vec<&Rule> = vec![&describe];
    all.extend(rules.iter());
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert_eq!(outcome.thing.as_deref(), Some("robot-7"));
    let calls = log.lock().unwrap().clone();
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert_eq!(calls[..2], ["DescribeCertificate", "ListThingPrincipals"]);
    let mut middle = calls[2..4].to_vec();
    middle.sort();
    assert_eq!(
        middle,
        ["AttachPolicy", "CreateThing"],
        "thing and policy together, before the principal"
    );
    assert_eq!(&calls[4..], ["AttachThingPrincipal", "UpdateCertificate"]);
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_then_succeed() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let throttled = mock!(Client::update_certificate)
        .sequence()
        .error(|| {
            UpdateCertificateError::ThrottlingException(
                ThrottlingException::builder()
                    .message("Rate exceeded")
                    .meta(
                        ErrorMetadata::builder()
                            .code("ThrottlingException")
                            .message("Rate exceeded")
                            .build(),
                    )
                    .build(),
            )
        })
        .times(2)
        .output(|| UpdateCertificateOutput::builder().build())
        .build();
    let flaky_thing = mock!(Client::create_thing)
        .sequence()
        .http_status(503, None)
        .output(|| CreateThingOutput::builder().build())
        .build();
    // MatchAny takes the first matching rule: the faulty ones go first.
    let all: Vec<&Rule> = vec![
        &describe,
        &throttled,
        &flaky_thing,
        &rules[1],
        &rules[2],
        &rules[4],
    ];
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert_eq!(
        throttled.num_calls(),
        3,
        "two throttled attempts, then success"
    );
    assert_eq!(flaky_thing.num_calls(), 2, "one 503, then success");
}

#[tokio::test]
async fn existing_thing_and_already_active_are_success() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let exists = mock!(Client::create_thing).then_error(|| {
        CreateThingError::ResourceAlreadyExistsException(
            ResourceAlreadyExistsException::builder()
                .message("exists with different attributes")
                .meta(
                    ErrorMetadata::builder()
                        .code("ResourceAlreadyExistsException")
                        .build(),
                )
                .build(),
        )
    });
    let all: Vec<&Rule> = vec![
        &describe, &exists, &rules[1], &rules[2], &rules[3], &rules[4],
    ];
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");

    // A duplicate event for a certificate already ACTIVE: nothing is called but Describe.
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::Active);
    let rules = happy_rules(&log);
    let mut all: Vec<&Rule> = vec![&describe];
    all.extend(rules.iter());
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    assert_eq!(outcome.outcome, Kind::AlreadyActive);
    assert_eq!(*log.lock().unwrap(), ["DescribeCertificate"]);
}

#[tokio::test]
async fn a_hard_failure_stops_before_activation_and_is_reported() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let refused = refused_principal();
    let all: Vec<&Rule> = vec![
        &describe, &refused, &rules[0], &rules[1], &rules[3], &rules[4],
    ];
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    assert_eq!(outcome.outcome, Kind::Failed);
    assert!(
        outcome
            .reason
            .as_deref()
            .unwrap()
            .starts_with("AttachThingPrincipal: "),
        "{outcome:?}"
    );
    assert!(!outcome.transient);
    assert_eq!(
        rules[3].num_calls(),
        0,
        "never activated without its principal"
    );
    assert_eq!(refused.num_calls(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_rejected_certificate_is_revoked_and_nothing_created() {
    let log: Log = Default::default();
    let describe = describe_rule(
        &log,
        "not a thing name",
        CertificateStatus::PendingActivation,
    );
    let rules = happy_rules(&log);
    let revoke = mock!(Client::update_certificate)
        .match_requests(|req| req.new_status() == Some(&CertificateStatus::Revoked))
        .then_output(|| UpdateCertificateOutput::builder().build());
    let all: Vec<&Rule> = vec![
        &describe, &revoke, &rules[0], &rules[1], &rules[2], &rules[3],
    ];
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    assert_eq!(outcome.outcome, Kind::Rejected);
    assert_eq!(revoke.num_calls(), 1);
    assert_eq!(
        *log.lock().unwrap(),
        ["DescribeCertificate"],
        "no thing, policy or principal"
    );
}

#[tokio::test]
async fn handler_answers_sqs_batches_with_partial_failures_and_refuses_malformed_events() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let mut all: Vec<&Rule> = vec![&describe];
    all.extend(rules.iter());
    let api = client(&all);
    let good =
        json!({ "certificateId": ID, "certificateStatus": "PENDING_ACTIVATION", "timestamp": 1 })
            .to_string();
    let batch = json!({ "Records": [
        { "messageId": "m-good", "body": good, "eventSource": "aws:sqs" },
        { "messageId": "m-bad", "body": "{\"certificateId\": 7}", "eventSource": "aws:sqs" },
        { "messageId": "m-junk", "body": "not json", "eventSource": "aws:sqs" },
    ]});
    let answer = handled(&api, &jitr_core::claims::NoClaims, batch).await;
    let mut failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(failed, ["m-bad", "m-junk"]);
    assert_eq!(describe.num_calls(), 1, "only the good record reached AWS");

    // Direct malformed events: a clear error, no AWS call, and the next event works.
    for bad in [
        json!([]),
        json!({ "certificateId": null }),
        json!({ "certificateId": "not-an-id" }),
    ] {
        let err = jitr_core::handler::handle(
            &api,
            &jitr_core::claims::NoClaims,
            &config(),
            bad.clone(),
            now(),
            Deadline::none(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().starts_with("malformed event: "),
            "{bad}: {err}"
        );
    }
    assert_eq!(describe.num_calls(), 1);
    let ok = jitr_core::handler::handle(
        &api,
        &jitr_core::claims::NoClaims,
        &config(),
        json!({ "certificateId": ID }),
        now(),
        Deadline::none(),
    )
    .await
    .unwrap();
    assert_eq!(ok["results"][0]["outcome"], "Activated");
}

/// The item identifiers an SQS batch answer reports as failed, sorted.
fn failures(answer: &serde_json::Value) -> Vec<String> {
    let mut failed: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect();
    failed.sort();
    failed
}

/// One SQS batch: each (message id, certificate id) a registered event.
fn batch_of(records: &[(&str, &str)]) -> serde_json::Value {
    let records: Vec<_> = records
        .iter()
        .map(|(m, c)| {
            let body = json!({ "certificateId": c, "certificateStatus": "PENDING_ACTIVATION" });
            json!({ "messageId": m, "body": body.to_string(), "eventSource": "aws:sqs" })
        })
        .collect();
    json!({ "Records": records })
}

/// The handler's answer to one SQS `batch` (no deadline).
async fn handled<C: Claims>(
    api: &SdkIot,
    claims: &C,
    batch: serde_json::Value,
) -> serde_json::Value {
    jitr_core::handler::handle(api, claims, &config(), batch, now(), Deadline::none())
        .await
        .unwrap()
}

#[tokio::test]
async fn duplicate_records_of_one_certificate_in_a_batch_cost_one_provisioning() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let mut all: Vec<&Rule> = vec![&describe];
    all.extend(rules.iter());
    let api = client(&all);
    let batch = batch_of(&[("m1", ID), ("m2", ID), ("m3", ID)]);
    let answer = handled(&api, &jitr_core::claims::NoClaims, batch).await;
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(describe.num_calls(), 1, "{:?}", log.lock().unwrap());
    assert_eq!(rules[0].num_calls(), 1, "one CreateThing");
    assert_eq!(rules[3].num_calls(), 1, "one UpdateCertificate");
}

/// AttachThingPrincipal refused for good (a failure no retry mends).
fn refused_principal() -> Rule {
    mock!(Client::attach_thing_principal).then_error(|| {
        AttachThingPrincipalError::InvalidRequestException(
            InvalidRequestException::builder()
                .message("bad principal")
                .meta(
                    ErrorMetadata::builder()
                        .code("InvalidRequestException")
                        .message("bad principal")
                        .build(),
                )
                .build(),
        )
    })
}

#[tokio::test]
async fn every_record_of_a_certificate_that_fails_is_a_batch_item_failure() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let refused = refused_principal();
    let all: Vec<&Rule> = vec![
        &describe, &refused, &rules[0], &rules[1], &rules[3], &rules[4],
    ];
    let api = client(&all);
    let batch = batch_of(&[("m1", ID), ("m2", ID), ("m3", ID)]);
    let answer = handled(&api, &jitr_core::claims::NoClaims, batch).await;
    assert_eq!(failures(&answer), ["m1", "m2", "m3"]);
    assert_eq!(describe.num_calls(), 1);
    assert_eq!(refused.num_calls(), 1);
}

const CA_1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const CA_2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const EARLIER: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

/// DescribeCertificate answering for certificate `id` only, issued by `ca`.
fn describe_one(id: &'static str, ca: &str, cn: &str, status: CertificateStatus) -> Rule {
    let (pem, ca) = (device_pem(cn), ca.to_string());
    mock!(Client::describe_certificate)
        .match_requests(move |req| req.certificate_id() == Some(id))
        .then_compute_output(move |_| {
            DescribeCertificateOutput::builder()
                .certificate_description(
                    CertificateDescription::builder()
                        .certificate_arn(format!("arn:aws:iot:eu-west-1:123456789012:cert/{id}"))
                        .certificate_id(id)
                        .ca_certificate_id(ca.clone())
                        .status(status.clone())
                        .certificate_pem(pem.clone())
                        .build(),
                )
                .build()
        })
}

/// Thing robot-7 exists with the certificate EARLIER (issued by `earlier_ca`)
/// attached; a certificate of CA_1 named robot-7 arrives.
async fn arrive_at_existing_thing(
    earlier_ca: &str,
) -> (jitr_core::outcome::Outcome, Vec<Rule>, Rule) {
    let log: Log = Default::default();
    let ours = describe_one(ID, CA_1, "robot-7", CertificateStatus::PendingActivation);
    let earlier = describe_one(EARLIER, earlier_ca, "robot-7", CertificateStatus::Active);
    let listed = mock!(Client::list_thing_principals)
        .match_requests(|req| req.thing_name() == Some("robot-7"))
        .then_output(|| {
            ListThingPrincipalsOutput::builder()
                .principals(format!("arn:aws:iot:eu-west-1:123456789012:cert/{EARLIER}"))
                .build()
        });
    let revoke = mock!(Client::update_certificate)
        .match_requests(|req| req.new_status() == Some(&CertificateStatus::Revoked))
        .then_output(|| UpdateCertificateOutput::builder().build());
    let rules = happy_rules(&log);
    let all: Vec<&Rule> = vec![
        &ours, &earlier, &listed, &revoke, &rules[0], &rules[1], &rules[2], &rules[3],
    ];
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    (outcome, rules, revoke)
}

#[tokio::test]
async fn a_thing_of_another_ca_is_not_taken_over() {
    let (outcome, rules, revoke) = arrive_at_existing_thing(CA_2).await;
    assert_eq!(outcome.outcome, Kind::Rejected, "{outcome:?}");
    assert_eq!(
        outcome.reason.as_deref(),
        Some(format!("thing robot-7 belongs to CA {CA_2}").as_str())
    );
    assert_eq!(
        revoke.num_calls(),
        1,
        "revoked, as JITR_ON_REJECT=revoke says"
    );
    for (rule, call) in rules[..4].iter().zip([
        "CreateThing",
        "AttachPolicy",
        "AttachThingPrincipal",
        "UpdateCertificate ACTIVE",
    ]) {
        assert_eq!(rule.num_calls(), 0, "{call} must not happen");
    }
}

#[tokio::test]
async fn a_thing_of_the_same_ca_takes_a_new_certificate() {
    let (outcome, rules, revoke) = arrive_at_existing_thing(CA_1).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert_eq!(revoke.num_calls(), 0);
    assert_eq!(rules[2].num_calls(), 1, "AttachThingPrincipal");
    assert_eq!(rules[3].num_calls(), 1, "UpdateCertificate ACTIVE");
}

/// Claims in memory, shared by "instances" (one `Memory` each, one map):
/// the semantics of the function's DynamoDB table.
/// A claim as the table holds it: (owner, state, expiry).
type ClaimItems = std::collections::HashMap<String, (&'static str, &'static str, i64)>;

#[derive(Clone)]
struct Memory {
    items: Arc<Mutex<ClaimItems>>,
    owner: &'static str,
}

impl Memory {
    fn instance(&self, owner: &'static str) -> Memory {
        Memory {
            items: self.items.clone(),
            owner,
        }
    }
    fn state(&self, id: &str) -> Option<&'static str> {
        self.items.lock().unwrap().get(id).map(|(s, _, _)| *s)
    }
    /// Every claim lapses, as after ten minutes.
    fn lapse(&self) {
        for (_, _, expires) in self.items.lock().unwrap().values_mut() {
            *expires = 0;
        }
    }
}

impl Claims for Memory {
    async fn claim(&self, id: &str, now: i64, until: i64) -> Result<Claim, ClaimsError> {
        let mut items = self.items.lock().unwrap();
        match items.get(id) {
            Some((state, owner, expires))
                if *expires >= now && !(*state == "claimed" && *owner == self.owner) =>
            {
                Ok(if *state == "done" {
                    Claim::Done
                } else {
                    Claim::Elsewhere
                })
            }
            _ => {
                items.insert(id.to_string(), ("claimed", self.owner, until));
                Ok(Claim::Mine)
            }
        }
    }
    async fn finish(&self, id: &str, until: i64) -> Result<(), ClaimsError> {
        let mut items = self.items.lock().unwrap();
        items.insert(id.to_string(), ("done", self.owner, until));
        Ok(())
    }
    async fn release(&self, id: &str) -> Result<(), ClaimsError> {
        let mut items = self.items.lock().unwrap();
        if items
            .get(id)
            .is_some_and(|(s, o, _)| *s == "claimed" && *o == self.owner)
        {
            items.remove(id);
        }
        Ok(())
    }
}

/// A claims table that cannot be reached.
struct Unreachable;

impl Claims for Unreachable {
    async fn claim(&self, _: &str, _: i64, _: i64) -> Result<Claim, ClaimsError> {
        Err(ClaimsError {
            table: "t".into(),
            reason: "unreachable".into(),
        })
    }
    async fn finish(&self, _: &str, _: i64) -> Result<(), ClaimsError> {
        self.claim("", 0, 0).await.map(|_| ())
    }
    async fn release(&self, _: &str) -> Result<(), ClaimsError> {
        self.claim("", 0, 0).await.map(|_| ())
    }
}

#[tokio::test]
async fn a_certificate_another_instance_provisioned_costs_no_iot_call() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let mut all: Vec<&Rule> = vec![&describe];
    all.extend(rules.iter());
    let api = client(&all);
    let a = Memory {
        items: Default::default(),
        owner: "a",
    };
    let answer = handled(&api, &a, batch_of(&[("m1", ID)])).await;
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(rules[3].num_calls(), 1, "activated");
    assert_eq!(a.state(ID), Some("done"));
    // The duplicates reach another instance: acknowledged, no IoT call.
    let answer = handled(&api, &a.instance("b"), batch_of(&[("m2", ID), ("m3", ID)])).await;
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(describe.num_calls(), 1, "{:?}", log.lock().unwrap());
    assert_eq!(rules[3].num_calls(), 1, "one UpdateCertificate");
    // Once the claim has lapsed (ten minutes), an event is described again.
    a.lapse();
    let answer = handled(&api, &a.instance("b"), batch_of(&[("m4", ID)])).await;
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(describe.num_calls(), 2);
    // A direct invocation (no queue keeps a claimant's event) ignores the claims.
    let direct = jitr_core::handler::handle(
        &api,
        &a.instance("c"),
        &config(),
        json!({ "certificateId": ID }),
        now(),
        Deadline::none(),
    )
    .await
    .unwrap();
    assert_eq!(
        direct["results"][0]["outcome"], "Activated",
        "the mock answers pending"
    );
    assert_eq!(describe.num_calls(), 3);
}

#[tokio::test]
async fn a_certificate_claimed_elsewhere_is_acknowledged_and_a_failure_gives_its_claim_up() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let refused = refused_principal();
    let all: Vec<&Rule> = vec![
        &describe, &refused, &rules[0], &rules[1], &rules[3], &rules[4],
    ];
    let api = client(&all);
    let a = Memory {
        items: Default::default(),
        owner: "a",
    };
    // Instance a holds the claim (its work in progress): b acknowledges.
    assert_eq!(a.claim(ID, now(), now() + 60).await.unwrap(), Claim::Mine);
    let b = a.instance("b");
    let answer = handled(&api, &b, batch_of(&[("m1", ID)])).await;
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(describe.num_calls(), 0);
    // a's work fails: its claim is given up, so b's next event provisions
    // (and, failing too, is a batch item failure, its claim given up again).
    a.release(ID).await.unwrap();
    let answer = handled(&api, &b, batch_of(&[("m2", ID)])).await;
    assert_eq!(failures(&answer), ["m2"]);
    assert_eq!(describe.num_calls(), 1);
    assert_eq!(a.state(ID), None, "the failed claim was given up");
}

#[tokio::test]
async fn without_its_claims_table_the_function_still_provisions() {
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let mut all: Vec<&Rule> = vec![&describe];
    all.extend(rules.iter());
    let api = client(&all);
    let answer = handled(&api, &Unreachable, batch_of(&[("m1", ID)])).await;
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(rules[3].num_calls(), 1, "activated");
}

/// AttachPolicy answered as AWS IoT answers a resource quota reached (too
/// many policies on the certificate): HTTP 410, `x-amzn-ErrorType:
/// LimitExceededException`, a JSON message.
fn limit_exceeded_policy() -> Rule {
    mock!(Client::attach_policy).then_http_response(|| {
        let mut r = aws_sdk_iot::config::http::HttpResponse::new(
            410.try_into().unwrap(),
            r#"{"message":"The number of policies attached to the target exceeds the limit of 10"}"#
                .into(),
        );
        r.headers_mut().insert(
            "x-amzn-ErrorType",
            "LimitExceededException:http://internal.amazon.com/coral/com.amazonaws.iot/",
        );
        r.headers_mut().insert("Content-Type", "application/json");
        r
    })
}

#[tokio::test]
async fn a_quota_reached_fails_the_certificate_at_once_naming_the_limit() {
    // The SDK-retrying client (the CLI's): one call, no retry, no activation.
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let limit = limit_exceeded_policy();
    let all: Vec<&Rule> = vec![
        &describe, &limit, &rules[0], &rules[2], &rules[3], &rules[4],
    ];
    let outcome = provision(&client(&all), &config(), ID, now()).await;
    assert_eq!(outcome.outcome, Kind::Failed, "{outcome:?}");
    let reason = outcome.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("AttachPolicy: "), "{reason}");
    assert!(reason.contains("exceeds the limit of 10"), "{reason}");
    assert!(!reason.contains("throttled"), "{reason}");
    assert!(!outcome.transient, "{outcome:?}");
    assert_eq!(limit.num_calls(), 1, "a quota is not retried");
    assert_eq!(rules[3].num_calls(), 0, "never activated");
}

#[tokio::test]
async fn a_quota_reached_is_a_failed_record_not_retried_by_the_function() {
    // The function's client: each call sent once, retries by the pacer.
    let log: Log = Default::default();
    let describe = describe_rule(&log, "robot-7", CertificateStatus::PendingActivation);
    let rules = happy_rules(&log);
    let limit = limit_exceeded_policy();
    let all: Vec<&Rule> = vec![
        &describe, &limit, &rules[0], &rules[2], &rules[3], &rules[4],
    ];
    let client = mock_client!(aws_sdk_iot, RuleMode::MatchAny, &all, |c| c
        .retry_config(aws_sdk_iot::config::retry::RetryConfig::disabled()));
    let api = jitr_core::pacing::Paced::new(
        SdkIot {
            client,
            endpoint: "mock".into(),
        },
        &jitr_core::quota::ApiRates::default(),
    )
    .retrying(7);
    let answer = jitr_core::handler::handle(
        &api,
        &jitr_core::claims::NoClaims,
        &config(),
        batch_of(&[("m1", ID)]),
        now(),
        Deadline::none(),
    )
    .await
    .unwrap();
    assert_eq!(failures(&answer), ["m1"], "{answer}");
    assert_eq!(limit.num_calls(), 1, "a quota is not retried");
    assert_eq!(rules[3].num_calls(), 0, "never activated");
}
