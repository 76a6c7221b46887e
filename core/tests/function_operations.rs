//! The IoT operations the function calls, recorded through every path of
//! provisioning with a device group (as the templates configure it): new
//! thing with groups, rotation that retires, replay that finishes a
//! rotation, rejection with revocation, skips. They must be exactly
//! `FUNCTION_IOT_OPERATIONS`, the list the templates' IAM is checked
//! against, so neither can drift from what the code does.

use std::collections::BTreeSet;

use jitr_core::config::Config;
use jitr_core::outcome::{Kind, Outcome};
use jitr_core::provision::{provision, Gates, FUNCTION_IOT_OPERATIONS};

use crate::support::registry::Registry;
use crate::support::{self, now};

fn config() -> Config {
    support::config(&[
        ("JITR_DEVICE_GROUP", "jitr-devices"),
        ("JITR_THING_GROUPS", "fleet"),
        ("JITR_ON_ROTATION", "retire-previous"),
    ])
}

/// Provisions `id` without gates, as the function does.
async fn provisioned(api: &Registry, config: &Config, id: &str) -> Outcome {
    provision(api, Gates::none(), config, id, now()).await
}

#[tokio::test]
async fn the_function_calls_exactly_the_listed_operations() {
    let api = Registry::default();
    let t = now() * 1000;
    let (old, new, stranger) = ("0a".repeat(32), "0b".repeat(32), "0c".repeat(32));
    let config = config();
    // A new thing: it joins the device group and the configured one.
    api.add(&old, "robot-1", "PENDING_ACTIVATION", t - 5000);
    let first = provisioned(&api, &config, &old).await;
    assert_eq!(first.outcome, Kind::Activated, "{first:?}");
    assert_eq!(
        api.calls_to("AddThingToThingGroup"),
        ["robot-1 jitr-devices", "robot-1 fleet"]
    );
    // Its successor: activated, the predecessor retired.
    api.add(&new, "robot-1", "PENDING_ACTIVATION", t);
    let rotated = provisioned(&api, &config, &new).await;
    assert_eq!(rotated.outcome, Kind::Activated, "{rotated:?}");
    assert_eq!(rotated.retired, std::slice::from_ref(&old));
    // Replays: ACTIVE (looks at the thing under retire-previous), INACTIVE.
    let replayed = provisioned(&api, &config, &new).await;
    assert_eq!(replayed.outcome, Kind::AlreadyActive);
    let replayed = provisioned(&api, &config, &old).await;
    assert_eq!(replayed.outcome, Kind::Inactive);
    // Rejected and revoked: not a device name.
    api.add(&stranger, "not a thing name", "PENDING_ACTIVATION", t);
    let rejected = provisioned(&api, &config, &stranger).await;
    assert_eq!(rejected.outcome, Kind::Rejected);

    let called = api.operations();
    let listed: BTreeSet<String> = FUNCTION_IOT_OPERATIONS.map(String::from).into();
    assert_eq!(called, listed);
    // Never a policy attachment: the role has no iot:AttachPolicy.
    assert!(!called.contains("AttachPolicy"));
}

/// Without a device group (the CLI run by an administrator), the
/// certificate gets the policy itself: an operation the function's role
/// does not have, which is why the templates always set the group.
#[tokio::test]
async fn without_a_device_group_the_certificate_gets_the_policy() {
    let api = Registry::default();
    let id = "0d".repeat(32);
    api.add(&id, "robot-2", "PENDING_ACTIVATION", now() * 1000);
    let outcome = provisioned(&api, &support::config(&[]), &id).await;
    assert_eq!(outcome.outcome, Kind::Activated);
    assert!(api.operations().contains("AttachPolicy"));
    assert!(api.calls_to("AddThingToThingGroup").is_empty());
}
