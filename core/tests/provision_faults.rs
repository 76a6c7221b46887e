//! Provisioning against scripted SDK answers (aws-smithy-mocks): the faults
//! moto cannot produce (throttling, 5xx, conflicts, refusals) and the call
//! order, through the real SDK client with jitr's retry configuration.

use std::sync::{Arc, Mutex};

use aws_sdk_iot::operation::attach_policy::AttachPolicyOutput;
use aws_sdk_iot::operation::attach_thing_principal::{
    AttachThingPrincipalError, AttachThingPrincipalOutput,
};
use aws_sdk_iot::operation::create_thing::{CreateThingError, CreateThingOutput};
use aws_sdk_iot::operation::list_thing_principals::{
    ListThingPrincipalsError, ListThingPrincipalsOutput,
};
use aws_sdk_iot::operation::update_certificate::{UpdateCertificateError, UpdateCertificateOutput};
use aws_sdk_iot::types::CertificateStatus;
use aws_sdk_iot::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use jitr_core::claims::{Claim, Claims, ClaimsError, NoClaims};
use jitr_core::deadline::Deadline;
use jitr_core::handler::{handle, HandlerError, Services};
use jitr_core::iot::{IotApi, SdkIot};
use jitr_core::outcome::{Kind, Outcome};
use jitr_core::provision::{provision, Gates};
use serde_json::{json, Value};

use crate::support::sdk::{self, iot_error, Log};
use crate::support::{self, arn, failures, now};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The scripted service for certificate ID: described (named `cn`, in
/// `status`), thing robot-7 not there yet, every other call succeeding,
/// its request checked and logged in the order it reached the "service".
struct Service {
    log: Log,
    describe: Rule,
    create: Rule,
    policy: Rule,
    principal: Rule,
    activate: Rule,
    no_thing: Rule,
}

impl Service {
    fn new(cn: &str, status: CertificateStatus) -> Service {
        let log: Log = Default::default();
        let describe = sdk::describe(ID, cn).status(status).logged(&log).rule();
        let l = log.clone();
        let create = mock!(Client::create_thing).then_compute_output(move |_| {
            l.lock().unwrap().push("CreateThing".into());
            CreateThingOutput::builder().build()
        });
        let l = log.clone();
        let policy = mock!(Client::attach_policy).then_compute_output(move |req| {
            assert_eq!(
                (req.policy_name(), req.target()),
                (Some("jitr-device"), Some(arn(ID).as_str()))
            );
            l.lock().unwrap().push("AttachPolicy".into());
            AttachPolicyOutput::builder().build()
        });
        let l = log.clone();
        let principal = mock!(Client::attach_thing_principal).then_compute_output(move |req| {
            assert_eq!(
                (req.thing_name(), req.principal()),
                (Some("robot-7"), Some(arn(ID).as_str()))
            );
            l.lock().unwrap().push("AttachThingPrincipal".into());
            AttachThingPrincipalOutput::builder().build()
        });
        let l = log.clone();
        let activate = mock!(Client::update_certificate).then_compute_output(move |req| {
            assert_eq!(req.new_status(), Some(&CertificateStatus::Active));
            l.lock().unwrap().push("UpdateCertificate".into());
            UpdateCertificateOutput::builder().build()
        });
        let l = log.clone();
        let no_thing = mock!(Client::list_thing_principals).then_error(move || {
            l.lock().unwrap().push("ListThingPrincipals".into());
            iot_error!(
                ListThingPrincipalsError::ResourceNotFoundException,
                "Thing robot-7 not found"
            )
        });
        Service {
            log,
            describe,
            create,
            policy,
            principal,
            activate,
            no_thing,
        }
    }

    /// robot-7's certificate, pending activation.
    fn pending() -> Service {
        Service::new("robot-7", CertificateStatus::PendingActivation)
    }

    /// `faults` first (the first rule that matches answers), then the service.
    fn rules<'a>(&'a self, faults: &[&'a Rule]) -> Vec<&'a Rule> {
        let service = [
            &self.describe,
            &self.create,
            &self.policy,
            &self.principal,
            &self.activate,
            &self.no_thing,
        ];
        faults.iter().copied().chain(service).collect()
    }

    /// The CLI's client: `faults` answer first, then the service.
    fn client(&self, faults: &[&Rule]) -> SdkIot {
        sdk::client(self.rules(faults))
    }

    fn calls(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Provisions ID without gates.
async fn provisioned<A: IotApi>(api: &A) -> Outcome {
    provision(api, Gates::none(), &support::config(&[]), ID, now()).await
}

/// The handler's answer to `payload` under `claims` (no deadline).
async fn handled<A: IotApi, C: Claims>(
    api: &A,
    claims: &C,
    payload: Value,
) -> Result<Value, HandlerError> {
    let services = Services::new(api, claims);
    let config = support::config(&[]);
    handle(&services, &config, payload, now(), Deadline::none()).await
}

/// One SQS batch: each (message id, certificate id) a registered event.
fn batch_of(records: &[(&str, &str)]) -> Value {
    support::batch(None, records)
}

#[tokio::test]
async fn activation_is_the_last_call() {
    let service = Service::pending();
    let outcome = provisioned(&service.client(&[])).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert_eq!(outcome.thing.as_deref(), Some("robot-7"));
    let calls = service.calls();
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
    let service = Service::pending();
    let throttled = mock!(Client::update_certificate)
        .sequence()
        .error(|| iot_error!(UpdateCertificateError::ThrottlingException, "Rate exceeded"))
        .times(2)
        .output(|| UpdateCertificateOutput::builder().build())
        .build();
    let flaky_thing = mock!(Client::create_thing)
        .sequence()
        .http_status(503, None)
        .output(|| CreateThingOutput::builder().build())
        .build();
    let outcome = provisioned(&service.client(&[&throttled, &flaky_thing])).await;
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
    let service = Service::pending();
    let exists = mock!(Client::create_thing).then_error(|| {
        iot_error!(
            CreateThingError::ResourceAlreadyExistsException,
            "exists with different attributes"
        )
    });
    let outcome = provisioned(&service.client(&[&exists])).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");

    // A duplicate event for a certificate already ACTIVE: nothing is called but Describe.
    let service = Service::new("robot-7", CertificateStatus::Active);
    let outcome = provisioned(&service.client(&[])).await;
    assert_eq!(outcome.outcome, Kind::AlreadyActive);
    assert_eq!(service.calls(), ["DescribeCertificate"]);
}

/// AttachThingPrincipal refused for good (a failure no retry mends).
fn refused_principal() -> Rule {
    mock!(Client::attach_thing_principal).then_error(|| {
        iot_error!(
            AttachThingPrincipalError::InvalidRequestException,
            "bad principal"
        )
    })
}

/// UpdateCertificate REVOKED, answered.
fn revoke() -> Rule {
    mock!(Client::update_certificate)
        .match_requests(|req| req.new_status() == Some(&CertificateStatus::Revoked))
        .then_output(|| UpdateCertificateOutput::builder().build())
}

#[tokio::test]
async fn a_hard_failure_stops_before_activation_and_is_reported() {
    let service = Service::pending();
    let refused = refused_principal();
    let outcome = provisioned(&service.client(&[&refused])).await;
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
        service.activate.num_calls(),
        0,
        "never activated without its principal"
    );
    assert_eq!(refused.num_calls(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_rejected_certificate_is_revoked_and_nothing_created() {
    let service = Service::new("not a thing name", CertificateStatus::PendingActivation);
    let revoke = revoke();
    let outcome = provisioned(&service.client(&[&revoke])).await;
    assert_eq!(outcome.outcome, Kind::Rejected);
    assert_eq!(revoke.num_calls(), 1);
    assert_eq!(
        service.calls(),
        ["DescribeCertificate"],
        "no thing, policy or principal"
    );
}

#[tokio::test]
async fn handler_answers_sqs_batches_with_partial_failures_and_refuses_malformed_events() {
    let service = Service::pending();
    let api = service.client(&[]);
    let good =
        json!({ "certificateId": ID, "certificateStatus": "PENDING_ACTIVATION", "timestamp": 1 })
            .to_string();
    let batch = json!({ "Records": [
        { "messageId": "m-good", "body": good, "eventSource": "aws:sqs" },
        { "messageId": "m-bad", "body": "{\"certificateId\": 7}", "eventSource": "aws:sqs" },
        { "messageId": "m-junk", "body": "not json", "eventSource": "aws:sqs" },
    ]});
    let answer = handled(&api, &NoClaims, batch).await.unwrap();
    assert_eq!(failures(&answer), ["m-bad", "m-junk"]);
    assert_eq!(
        service.describe.num_calls(),
        1,
        "only the good record reached AWS"
    );

    // Direct malformed events: a clear error, no AWS call, and the next event works.
    for bad in [
        json!([]),
        json!({ "certificateId": null }),
        json!({ "certificateId": "not-an-id" }),
    ] {
        let err = handled(&api, &NoClaims, bad.clone()).await.unwrap_err();
        assert!(
            err.to_string().starts_with("malformed event: "),
            "{bad}: {err}"
        );
    }
    assert_eq!(service.describe.num_calls(), 1);
    let ok = handled(&api, &NoClaims, json!({ "certificateId": ID }))
        .await
        .unwrap();
    assert_eq!(ok["results"][0]["outcome"], "Activated");
}

#[tokio::test]
async fn duplicate_records_of_one_certificate_in_a_batch_cost_one_provisioning() {
    let service = Service::pending();
    let batch = batch_of(&[("m1", ID), ("m2", ID), ("m3", ID)]);
    let answer = handled(&service.client(&[]), &NoClaims, batch)
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(service.describe.num_calls(), 1, "{:?}", service.calls());
    assert_eq!(service.create.num_calls(), 1, "one CreateThing");
    assert_eq!(service.activate.num_calls(), 1, "one UpdateCertificate");
}

#[tokio::test]
async fn every_record_of_a_certificate_that_fails_is_a_batch_item_failure() {
    let service = Service::pending();
    let refused = refused_principal();
    let batch = batch_of(&[("m1", ID), ("m2", ID), ("m3", ID)]);
    let answer = handled(&service.client(&[&refused]), &NoClaims, batch)
        .await
        .unwrap();
    assert_eq!(failures(&answer), ["m1", "m2", "m3"]);
    assert_eq!(service.describe.num_calls(), 1);
    assert_eq!(refused.num_calls(), 1);
}

const CA_1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const CA_2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const EARLIER: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

/// Thing robot-7 exists with the certificate EARLIER (issued by `earlier_ca`)
/// attached; a certificate of CA_1 named robot-7 arrives.
async fn arrive_at_existing_thing(earlier_ca: &str) -> (Outcome, Service, Rule) {
    let service = Service::pending();
    let ours = sdk::describe(ID, "robot-7").ca(CA_1).rule();
    let earlier = sdk::describe(EARLIER, "robot-7")
        .ca(earlier_ca)
        .status(CertificateStatus::Active)
        .rule();
    let listed = mock!(Client::list_thing_principals)
        .match_requests(|req| req.thing_name() == Some("robot-7"))
        .then_output(|| {
            ListThingPrincipalsOutput::builder()
                .principals(arn(EARLIER))
                .build()
        });
    let revoke = revoke();
    let outcome = provisioned(&service.client(&[&ours, &earlier, &listed, &revoke])).await;
    (outcome, service, revoke)
}

#[tokio::test]
async fn a_thing_of_another_ca_is_not_taken_over() {
    let (outcome, service, revoke) = arrive_at_existing_thing(CA_2).await;
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
    for (rule, call) in [
        (&service.create, "CreateThing"),
        (&service.policy, "AttachPolicy"),
        (&service.principal, "AttachThingPrincipal"),
        (&service.activate, "UpdateCertificate ACTIVE"),
    ] {
        assert_eq!(rule.num_calls(), 0, "{call} must not happen");
    }
}

#[tokio::test]
async fn a_thing_of_the_same_ca_takes_a_new_certificate() {
    let (outcome, service, revoke) = arrive_at_existing_thing(CA_1).await;
    assert_eq!(outcome.outcome, Kind::Activated, "{outcome:?}");
    assert_eq!(revoke.num_calls(), 0);
    assert_eq!(service.principal.num_calls(), 1, "AttachThingPrincipal");
    assert_eq!(service.activate.num_calls(), 1, "UpdateCertificate ACTIVE");
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
    let service = Service::pending();
    let (api, describe) = (service.client(&[]), &service.describe);
    let a = Memory {
        items: Default::default(),
        owner: "a",
    };
    let answer = handled(&api, &a, batch_of(&[("m1", ID)])).await.unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(service.activate.num_calls(), 1, "activated");
    assert_eq!(a.state(ID), Some("done"));
    // The duplicates reach another instance: acknowledged, no IoT call.
    let duplicates = batch_of(&[("m2", ID), ("m3", ID)]);
    let answer = handled(&api, &a.instance("b"), duplicates).await.unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(describe.num_calls(), 1, "{:?}", service.calls());
    assert_eq!(service.activate.num_calls(), 1, "one UpdateCertificate");
    // Once the claim has lapsed (ten minutes), an event is described again.
    a.lapse();
    let answer = handled(&api, &a.instance("b"), batch_of(&[("m4", ID)]))
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(describe.num_calls(), 2);
    // A direct invocation (no queue keeps a claimant's event) ignores the claims.
    let direct = handled(&api, &a.instance("c"), json!({ "certificateId": ID }))
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
    let service = Service::pending();
    let refused = refused_principal();
    let api = service.client(&[&refused]);
    let a = Memory {
        items: Default::default(),
        owner: "a",
    };
    // Instance a holds the claim (its work in progress): b acknowledges.
    assert_eq!(a.claim(ID, now(), now() + 60).await.unwrap(), Claim::Mine);
    let b = a.instance("b");
    let answer = handled(&api, &b, batch_of(&[("m1", ID)])).await.unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(service.describe.num_calls(), 0);
    // a's work fails: its claim is given up, so b's next event provisions
    // (and, failing too, is a batch item failure, its claim given up again).
    a.release(ID).await.unwrap();
    let answer = handled(&api, &b, batch_of(&[("m2", ID)])).await.unwrap();
    assert_eq!(failures(&answer), ["m2"]);
    assert_eq!(service.describe.num_calls(), 1);
    assert_eq!(a.state(ID), None, "the failed claim was given up");
}

#[tokio::test]
async fn without_its_claims_table_the_function_still_provisions() {
    let service = Service::pending();
    let answer = handled(&service.client(&[]), &Unreachable, batch_of(&[("m1", ID)]))
        .await
        .unwrap();
    assert!(failures(&answer).is_empty(), "{answer}");
    assert_eq!(service.activate.num_calls(), 1, "activated");
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
    let service = Service::pending();
    let limit = limit_exceeded_policy();
    let outcome = provisioned(&service.client(&[&limit])).await;
    assert_eq!(outcome.outcome, Kind::Failed, "{outcome:?}");
    let reason = outcome.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("AttachPolicy: "), "{reason}");
    assert!(reason.contains("exceeds the limit of 10"), "{reason}");
    assert!(!reason.contains("throttled"), "{reason}");
    assert!(!outcome.transient, "{outcome:?}");
    assert_eq!(limit.num_calls(), 1, "a quota is not retried");
    assert_eq!(service.activate.num_calls(), 0, "never activated");
}

#[tokio::test]
async fn a_quota_reached_is_a_failed_record_not_retried_by_the_function() {
    // The function's client: each call sent once, retries by the pacer.
    let service = Service::pending();
    let limit = limit_exceeded_policy();
    let client = mock_client!(
        aws_sdk_iot,
        RuleMode::MatchAny,
        service.rules(&[&limit]),
        |c| c.retry_config(aws_sdk_iot::config::retry::RetryConfig::disabled())
    );
    let api = jitr_core::pacing::Paced::new(
        SdkIot {
            client,
            endpoint: "mock".into(),
        },
        &jitr_core::quota::ApiRates::default(),
    )
    .retrying(7);
    let answer = handled(&api, &NoClaims, batch_of(&[("m1", ID)]))
        .await
        .unwrap();
    assert_eq!(failures(&answer), ["m1"], "{answer}");
    assert_eq!(limit.num_calls(), 1, "a quota is not retried");
    assert_eq!(service.activate.num_calls(), 0, "never activated");
}
