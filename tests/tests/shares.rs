//! The instances' heartbeats in the claims table (`jitr_core::claims_table`)
//! against a real DynamoDB API (ministack's): each instance learns how many
//! work now, and paces at the account's rates divided by that many.

use jitr_core::aws;
use jitr_core::claims::Claims;
use jitr_core::claims_table::ClaimsTable;
use jitr_core::lane::Lane;
use jitr_core::pacing::Share;
use jitr_tests::ministack::Ministack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn instances_share_the_rates_among_those_working_now() {
    let ms = Ministack::start();
    let made = ms.boto3(
        "dynamodb",
        "create_table",
        json!({
            "TableName": "claims",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{ "AttributeName": "certificateId", "AttributeType": "S" }],
            "KeySchema": [{ "AttributeName": "certificateId", "KeyType": "HASH" }],
        }),
    );
    assert!(made.get("Error").is_none(), "{made}");
    let sdk = jitr_tests::sdk::config(&ms.env(), Some(aws::function_timeouts())).await;
    // At most 20 instances: until an instance beats, it takes a twentieth.
    let (share_a, share_b) = (Share::new(20), Share::new(20));
    let a = ClaimsTable::new(&sdk, "claims", "instance-a").sharing(share_a.clone());
    let b = ClaimsTable::new(&sdk, "claims", "instance-b").sharing(share_b.clone());
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
    let item = ms.boto3(
        "dynamodb",
        "get_item",
        json!({ "TableName": "claims", "Key": { "certificateId": { "S": "instances" } } }),
    );
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
    let ms = Ministack::start();
    let made = ms.boto3(
        "dynamodb",
        "create_table",
        json!({
            "TableName": "claims",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{ "AttributeName": "certificateId", "AttributeType": "S" }],
            "KeySchema": [{ "AttributeName": "certificateId", "KeyType": "HASH" }],
        }),
    );
    assert!(made.get("Error").is_none(), "{made}");
    let sdk = jitr_tests::sdk::config(&ms.env(), Some(aws::function_timeouts())).await;
    let (share_bulk, share_fast) = (Share::new(20), Share::new(20));
    let bulk = ClaimsTable::new(&sdk, "claims", "instance-a").sharing(share_bulk.clone());
    let fast = ClaimsTable::new(&sdk, "claims", "instance-f").sharing(share_fast.clone());
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
    let item = ms.boto3(
        "dynamodb",
        "get_item",
        json!({ "TableName": "claims", "Key": { "certificateId": { "S": "instances" } } }),
    );
    let names: Vec<&String> = item["Item"].as_object().unwrap().keys().collect();
    assert!(names.iter().any(|n| *n == "beat_fast_instance-f"), "{item}");
}
