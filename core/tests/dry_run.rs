//! `provision` and `dry_run` carry out one plan: what a dry run reports is
//! what a real run does, against the same scripted SDK answers
//! (aws-smithy-mocks). The case that once differed: an ACTIVE certificate
//! whose rotation was cut short before the predecessor was retired.

use aws_sdk_iot::types::CertificateStatus::Active;
use jitr_core::admission::NoAllowList;
use jitr_core::outcome::Kind;
use jitr_core::provision::{dry_run, provision, Gates};

use crate::support::sdk::{self, Log, NEW, OLD};
use crate::support::{self, now};

#[tokio::test]
async fn a_dry_run_reports_the_retirement_a_real_run_makes() {
    let log: Log = Default::default();
    // Both ACTIVE: the rotation was cut short.
    let rules = sdk::rotation(&log, Active, Active, &[OLD, NEW]);
    let config = support::config(&[("JITR_ON_ROTATION", "retire-previous")]);
    let now = now();

    let plan = dry_run(&sdk::client(&rules), &NoAllowList, &config, NEW, now)
        .await
        .unwrap();
    assert!(log.lock().unwrap().is_empty(), "a dry run changes nothing");
    let planned = serde_json::to_value(&plan).unwrap();
    assert_eq!(planned["action"], "finish_rotation", "{planned}");
    assert_eq!(planned["thing_name"], "robot-7", "{planned}");
    assert_eq!(planned["retire"], serde_json::json!([OLD]), "{planned}");

    let outcome = provision(&sdk::client(&rules), Gates::none(), &config, NEW, now).await;
    assert_eq!(outcome.outcome, Kind::AlreadyActive, "{outcome:?}");
    assert_eq!(outcome.retired, [OLD]);
    assert_eq!(*log.lock().unwrap(), ["UpdateCertificate 0a0a INACTIVE"]);

    // Under keep the same answers plan nothing, and nothing is done.
    let keep = support::config(&[]);
    let plan = dry_run(&sdk::client(&rules), &NoAllowList, &keep, NEW, now)
        .await
        .unwrap();
    let planned = serde_json::to_value(plan).unwrap();
    assert_eq!(planned["action"], "skip", "{planned}");
    let outcome = provision(&sdk::client(&rules), Gates::none(), &keep, NEW, now).await;
    assert!(outcome.retired.is_empty(), "{outcome:?}");
    assert_eq!(log.lock().unwrap().len(), 1);
}
