//! The instances' heartbeats in the claims table (`jitr_core::claims_table`)
//! against a real DynamoDB API (ministack's): each instance learns how many
//! work now, and paces at the account's rates divided by that many.

use aws_config::SdkConfig;
use jitr_core::claims::Claims;
use jitr_core::claims_table::ClaimsTable;
use jitr_core::lane::Lane;
use jitr_core::pacing::Share;
use jitr_tests::ministack::Ministack;
use serde_json::json;

/// The emulator with the claims table `claims`, and the function's SDK
/// configuration for it.
async fn claims_table() -> (Ministack, SdkConfig) {
    let ms = Ministack::start();
    ms.create_claims_table("claims");
    let sdk = jitr_tests::sdk::function_config(&ms.env()).await;
    (ms, sdk)
}

/// An instance `name` on the table `claims`, pacing by `share`.
fn instance(sdk: &SdkConfig, name: &str, share: &Share) -> ClaimsTable {
    ClaimsTable::new(sdk, "claims", name).sharing(share.clone())
}

/// The heartbeats' item of the table, as GetItem answers.
fn instances_item(ms: &Ministack) -> serde_json::Value {
    ms.boto3(
        "dynamodb",
        "get_item",
        json!({ "TableName": "claims", "Key": { "certificateId": { "S": "instances" } } }),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_share_the_rates_among_those_working_now() {
    let (ms, sdk) = claims_table().await;
    // At most 20 instances: until an instance beats, it takes a twentieth.
    let (share_a, share_b) = (Share::new(20), Share::new(20));
    let a = instance(&sdk, "instance-a", &share_a);
    let b = instance(&sdk, "instance-b", &share_b);
    assert_eq!(share_a.sharers(), 20);
    let t = 1_800_000_000_000;
    // Alone: the whole rate.
    a.beat(t, Lane::Bulk).await.unwrap();
    assert_eq!(share_a.sharers(), 1);
    // A second instance starts working: it counts both, and so does the
    // first at its next beat.
    b.beat(t + 100, Lane::Bulk).await.unwrap();
    assert_eq!(share_b.sharers(), 2);
    a.beat(t + 1000, Lane::Bulk).await.unwrap();
    assert_eq!(share_a.sharers(), 2);
    // b stops beating: a counts it until its lease (3 s) ends, then not.
    a.beat(t + 3100, Lane::Bulk).await.unwrap();
    assert_eq!(share_a.sharers(), 2);
    a.beat(t + 3101, Lane::Bulk).await.unwrap();
    assert_eq!(share_a.sharers(), 1);
    // A beat a minute gone is removed from the table by the next beat
    // after it is seen (the item does not grow with every instance ever run).
    a.beat(t + 70_000, Lane::Bulk).await.unwrap();
    a.beat(t + 71_000, Lane::Bulk).await.unwrap();
    let item = instances_item(&ms);
    let names: Vec<&String> = item["Item"].as_object().unwrap().keys().collect();
    assert!(names.iter().any(|n| *n == "beat_instance-a"), "{item}");
    assert!(!names.iter().any(|n| *n == "beat_instance-b"), "{item}");
    // The certificate claims are untouched by the heartbeats' item.
    let cert = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        a.claim(cert, 1_800_000_100, 1_800_000_160).await.unwrap(),
        jitr_core::claims::Claim::Mine
    );
}

/// The fast lane's beats (issue 23 item 4): a fast-lane instance that works
/// shares the rates with the bulk lane's, and reads, without beating,
/// whether a bulk-lane instance beat within its lease.
#[tokio::test(flavor = "multi_thread")]
async fn the_fast_lane_sees_the_bulk_lane_working_and_shares_when_it_works() {
    let (ms, sdk) = claims_table().await;
    let (share_bulk, share_fast) = (Share::new(20), Share::new(20));
    let bulk = instance(&sdk, "instance-a", &share_bulk);
    let fast = instance(&sdk, "instance-f", &share_fast);
    let t = 1_800_000_000_000;
    // Nobody beat yet: the fast lane works (and reading created no beat).
    assert!(!fast.bulk_working(t).await.unwrap());
    // The fast lane works alone: its beat says fast, never bulk.
    fast.beat(t, Lane::Fast).await.unwrap();
    assert_eq!(share_fast.sharers(), 1);
    assert!(!fast.bulk_working(t + 10).await.unwrap());
    // The bulk lane starts: it shares with the fast instance while that beats.
    bulk.beat(t + 100, Lane::Bulk).await.unwrap();
    assert_eq!(share_bulk.sharers(), 2);
    // The fast lane sees the bulk lane working for the bulk beat's lease.
    assert!(fast.bulk_working(t + 200).await.unwrap());
    assert!(fast.bulk_working(t + 3100).await.unwrap());
    assert!(!fast.bulk_working(t + 3101).await.unwrap());
    // A fast lane that read the beats did not beat: the bulk lane, beating
    // again after the fast beat's lease, works alone.
    bulk.beat(t + 3200, Lane::Bulk).await.unwrap();
    assert_eq!(share_bulk.sharers(), 1);
    let item = instances_item(&ms);
    let names: Vec<&String> = item["Item"].as_object().unwrap().keys().collect();
    assert!(names.iter().any(|n| *n == "beat_fast_instance-f"), "{item}");
}
