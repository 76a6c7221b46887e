//! Device files work as-is with a real TLS peer: mosquitto requiring client
//! certificates accepts devices of its CA (root or intermediate) and refuses
//! others.

use jitr_tests::mosquitto::Broker;
use jitr_tests::{jitr, jitr_args};

#[test]
fn mosquitto_accepts_devices_of_its_ca_and_refuses_others() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root", "--key", "ec-p384"]).success();
    jitr_args(d, "ca create inter --issuer root --key rsa-2048").success();
    jitr(d, &["ca", "create", "stranger"]).success();
    jitr_tests::issue_device(d, "root", "dev", "by-root");
    jitr_args(
        d,
        "device issue --ca inter --out dev --name by-inter --key rsa-2048",
    )
    .success();
    jitr_tests::issue_device(d, "stranger", "dev", "by-stranger");

    // The broker trusts only the root; the intermediate device presents its chain.
    let broker = Broker::start(&d.join("broker"), &d.join("root/ca.crt"));
    for name in ["by-root", "by-inter"] {
        let dir = d.join("dev").join(name);
        broker
            .publish(
                &dir.join("device-and-ca.crt"),
                &dir.join("device.key"),
                name,
            )
            .success();
    }
    let dir = d.join("dev/by-stranger");
    broker
        .publish(
            &dir.join("device-and-ca.crt"),
            &dir.join("device.key"),
            "by-stranger",
        )
        .failure();
    // Without its chain the intermediate's device cannot be verified.
    let dir = d.join("dev/by-inter");
    broker
        .publish(
            &dir.join("device.crt"),
            &dir.join("device.key"),
            "by-inter-leaf-only",
        )
        .failure();
}
