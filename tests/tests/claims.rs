//! The function's claims table (`jitr_core::claims_table`) against a real
//! DynamoDB API (ministack's): the conditional writes that let one instance
//! provision a certificate while the others acknowledge its duplicates.

use jitr_core::claims::{Claim, Claims};
use jitr_core::claims_table::ClaimsTable;
use jitr_tests::ministack::Ministack;

const CERT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The function's SDK configuration for `ms`.
async fn sdk(ms: &Ministack) -> aws_config::SdkConfig {
    jitr_tests::sdk::function_config(&ms.env()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn one_instance_holds_a_claim_and_the_others_see_it_held_then_done() {
    let ms = Ministack::start();
    ms.create_claims_table("claims");
    let sdk = sdk(&ms).await;
    let (a, b) = (
        ClaimsTable::new(&sdk, "claims", "instance-a"),
        ClaimsTable::new(&sdk, "claims", "instance-b"),
    );
    let now = 1_800_000_000;
    assert_eq!(a.claim(CERT, now, now + 60).await.unwrap(), Claim::Mine);
    assert_eq!(
        b.claim(CERT, now, now + 60).await.unwrap(),
        Claim::Elsewhere
    );
    // The holder may claim again (a record of its own delivered twice).
    assert_eq!(a.claim(CERT, now + 1, now + 60).await.unwrap(), Claim::Mine);
    // Another instance cannot give it up.
    b.release(CERT).await.unwrap();
    assert_eq!(
        b.claim(CERT, now + 2, now + 60).await.unwrap(),
        Claim::Elsewhere
    );
    // Done: everyone (the holder too) finds it done until it lapses.
    a.finish(CERT, now + 600).await.unwrap();
    assert_eq!(b.claim(CERT, now + 3, now + 60).await.unwrap(), Claim::Done);
    assert_eq!(a.claim(CERT, now + 3, now + 60).await.unwrap(), Claim::Done);
    a.release(CERT).await.unwrap();
    assert_eq!(
        b.claim(CERT, now + 4, now + 60).await.unwrap(),
        Claim::Done,
        "release leaves done alone"
    );
    // Lapsed: the next event claims it.
    assert_eq!(
        b.claim(CERT, now + 601, now + 660).await.unwrap(),
        Claim::Mine
    );
    // Given up: claimable at once.
    b.release(CERT).await.unwrap();
    assert_eq!(
        a.claim(CERT, now + 602, now + 660).await.unwrap(),
        Claim::Mine
    );
    // A claim whose holder vanished lapses at its deadline.
    assert_eq!(
        b.claim(CERT, now + 661, now + 700).await.unwrap(),
        Claim::Mine
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn of_many_instances_claiming_at_once_exactly_one_holds_the_claim() {
    let ms = Ministack::start();
    ms.create_claims_table("claims");
    let sdk = sdk(&ms).await;
    let owners: Vec<String> = (0..20).map(|i| format!("instance-{i}")).collect();
    let tables: Vec<ClaimsTable> = owners
        .iter()
        .map(|o| ClaimsTable::new(&sdk, "claims", o))
        .collect();
    let now = 1_800_000_000;
    let claims =
        futures::future::join_all(tables.iter().map(|t| t.claim(CERT, now, now + 60))).await;
    let mine = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Mine)))
        .count();
    assert_eq!(mine, 1, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|c| matches!(c, Ok(Claim::Mine | Claim::Elsewhere))),
        "{claims:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_is_an_error_naming_it() {
    let ms = Ministack::start();
    let sdk = sdk(&ms).await;
    let t = ClaimsTable::new(&sdk, "no-such-table", "instance-a");
    let e = t.claim(CERT, 0, 60).await.unwrap_err();
    assert_eq!(e.table, "no-such-table");
    assert!(e.to_string().contains("ResourceNotFound"), "{e}");
}
