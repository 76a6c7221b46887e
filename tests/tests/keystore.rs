//! Key stores: encrypted CA key files (openssl decrypts them), CA keys on a
//! PKCS#11 token (SoftHSM2) and in AWS KMS (the ministack emulator, whose
//! Sign with MessageType DIGEST was checked to sign the digest as given);
//! devices verified by openssl.

use std::path::Path;
use std::process::Command;

use jitr_tests::ministack::Ministack;
use jitr_tests::softhsm::{SoftHsm, PIN};
use jitr_tests::{bin, kms, list_dir, mode, openssl, run, words, Run};
use serde_json::json;

const PASSPHRASE: &str = "correct horse battery";

/// `jitr ARGS` in `cwd` with exactly the key-store environment `env`.
fn jitr_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run(Command::new(bin("jitr"))
        .args(args)
        .current_dir(cwd)
        .env_remove("JITR_CA_PASSWORD")
        .env_remove("JITR_PKCS11_PIN")
        .envs(env.iter().copied()))
}

fn write(d: &Path, name: &str, text: &str) {
    std::fs::write(d.join(name), text).unwrap();
}

/// The SHA-256 of a certificate's or key's public key, as openssl sees it.
fn public_key_of(d: &Path, args: &[&str]) -> String {
    let pem = openssl(d, args).success().to_string();
    let p = tempfile::NamedTempFile::new_in(d).unwrap();
    std::fs::write(p.path(), pem).unwrap();
    openssl(
        d,
        &[
            "pkey",
            "-pubin",
            "-in",
            p.path().to_str().unwrap(),
            "-outform",
            "DER",
        ],
    );
    openssl(
        d,
        &[
            "pkey",
            "-pubin",
            "-in",
            p.path().to_str().unwrap(),
            "-text_pub",
            "-noout",
        ],
    )
    .success()
    .to_string()
}

fn verify(d: &Path, root: &str, untrusted: Option<&str>, cert: &str) {
    let mut args = vec!["verify", "-CAfile", root];
    if let Some(u) = untrusted {
        args.extend(["-untrusted", u]);
    }
    args.push(cert);
    let out = openssl(d, &args).success().to_string();
    assert!(out.contains(": OK"), "{out}");
}

/// Every file under `dir`, recursively, with its contents.
fn all_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            out.push((path.display().to_string(), text));
        }
    }
    out
}

#[test]
fn encrypted_file_ca_is_openssl_readable_and_signs_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "pw", &format!("{PASSPHRASE}\n"));
    let created = jitr_env(
        d,
        &words("--json ca create root --key ec-p384 --encrypt --password-file pw"),
        &[],
    );
    let report = created.json();
    assert_eq!(report["key_store"], "file");
    assert_eq!(report["encrypted"], true);
    assert_eq!(list_dir(&d.join("root")), ["ca.crt", "ca.key", "chain.pem"]);
    assert_eq!(mode(&d.join("root/ca.key")), 0o600);
    let key_text = std::fs::read_to_string(d.join("root/ca.key")).unwrap();
    assert!(
        key_text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{key_text}"
    );
    assert!(!key_text.contains("BEGIN PRIVATE KEY"));
    // openssl decrypts it with the passphrase (PBES2, scrypt, AES-256-CBC)...
    let asn1 = openssl(d, &["asn1parse", "-in", "root/ca.key"])
        .success()
        .to_string();
    assert!(
        asn1.contains("PBES2") && asn1.contains(":scrypt") && asn1.contains("aes-256-cbc"),
        "{asn1}"
    );
    let from_key = public_key_of(d, &words("pkey -in root/ca.key -passin file:pw -pubout"));
    let from_cert = public_key_of(d, &["x509", "-in", "root/ca.crt", "-pubkey", "-noout"]);
    assert_eq!(from_key, from_cert);
    // ... and not without it.
    write(d, "wrong", "Correct horse battery\n");
    openssl(d, &words("pkey -in root/ca.key -passin file:wrong -noout")).failure();

    // Every signing command takes the same sources: file, environment.
    jitr_env(
        d,
        &words("device issue --ca root --out dev --name d1 --password-file pw"),
        &[],
    )
    .success();
    jitr_env(
        d,
        &words("device issue --ca root --out dev --count 3 --name-template b{n}"),
        &[("JITR_CA_PASSWORD", PASSPHRASE)],
    )
    .success();
    for name in ["d1", "b1", "b3"] {
        verify(d, "root/ca.crt", None, &format!("dev/{name}/device.crt"));
    }
    jitr_env(
        d,
        &words(
            "ca create int --issuer root --issuer-password-file pw --encrypt --password-file pw",
        ),
        &[],
    )
    .success();
    jitr_env(
        d,
        &words("ca verification-cert int --code abc123 --out v.crt --password-file pw"),
        &[],
    )
    .success();
    verify(d, "root/ca.crt", Some("int/ca.crt"), "v.crt");
}

#[test]
fn wrong_or_missing_passphrase_fails_in_one_sentence_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "pw", PASSPHRASE);
    jitr_env(
        d,
        &["ca", "create", "root", "--encrypt", "--password-file", "pw"],
        &[],
    )
    .success();
    let before = std::fs::read(d.join("root/ca.key")).unwrap();

    write(d, "wrong", "hunter2-wrong");
    let run = jitr_env(
        d,
        &words("device issue --ca root --out dev --name x --password-file wrong"),
        &[],
    );
    let err = run.failure();
    assert!(
        err.contains("key store file") && err.contains("passphrase is wrong"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2-wrong") && !run.stdout.contains("hunter2-wrong"),
        "{err}"
    );
    assert!(!d.join("dev").exists(), "nothing written");

    let run = jitr_env(
        d,
        &words("device issue --ca root --out dev --name x"),
        &[("JITR_CA_PASSWORD", "hunter2-wrong")],
    );
    assert!(
        run.failure().contains("passphrase is wrong"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("hunter2-wrong"));

    // No source and stdin is not a terminal: no prompt, one sentence.
    let err = jitr_env(
        d,
        &words("ca verification-cert root --code abc --out v.crt"),
        &[],
    )
    .failure()
    .to_string();
    assert!(
        err.contains("key store file")
            && err.contains("--password-file")
            && err.contains("JITR_CA_PASSWORD")
            && err.contains("not a terminal"),
        "{err}"
    );
    assert!(!d.join("v.crt").exists());
    let err = jitr_env(d, &["ca", "create", "other", "--encrypt"], &[])
        .failure()
        .to_string();
    assert!(err.contains("not a terminal"), "{err}");
    assert!(!d.join("other").exists(), "nothing written");

    // Options of one store are refused for another.
    let err = jitr_env(d, &["ca", "create", "x", "--pkcs11-token", "t"], &[])
        .failure()
        .to_string();
    assert!(
        err.contains("--pkcs11-token") && err.contains("pkcs11"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(d.join("root/ca.key")).unwrap(),
        before,
        "the CA is untouched"
    );
}

#[test]
fn import_takes_openssl_encrypted_keys_and_reencrypts_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "pw", PASSPHRASE);
    // A vendor's CA: key encrypted by openssl (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC).
    openssl(
        d,
        &words("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out plain.key"),
    )
    .success();
    openssl(
        d,
        &words("pkcs8 -topk8 -in plain.key -v2 aes-256-cbc -passout file:pw -out vendor.key"),
    )
    .success();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "plain.key",
            "-subj",
            "/CN=Vendor CA",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "vendor.crt",
        ],
    )
    .success();
    let vendor_key = std::fs::read_to_string(d.join("vendor.key")).unwrap();
    assert!(vendor_key.contains("ENCRYPTED PRIVATE KEY"));

    // Without a passphrase source: refused, nothing written.
    let err = jitr_env(
        d,
        &words("ca import kept --cert vendor.crt --key vendor.key"),
        &[],
    )
    .failure()
    .to_string();
    assert!(err.contains("not a terminal"), "{err}");
    assert!(!d.join("kept").exists());

    // Imported as given: still encrypted, byte for byte.
    let report = jitr_env(
        d,
        &words("--json ca import kept --cert vendor.crt --key vendor.key --password-file pw"),
        &[],
    )
    .json();
    assert_eq!(report["encrypted"], true);
    assert_eq!(
        std::fs::read_to_string(d.join("kept/ca.key")).unwrap(),
        vendor_key
    );
    jitr_env(
        d,
        &words("device issue --ca kept --out dev --name k1 --password-file pw"),
        &[],
    )
    .success();
    verify(d, "vendor.crt", None, "dev/k1/device.crt");

    // --encrypt re-encrypts (scrypt) under the same passphrase.
    jitr_env(
        d,
        &words("ca import re --cert vendor.crt --key vendor.key --password-file pw --encrypt"),
        &[],
    )
    .success();
    let asn1 = openssl(d, &["asn1parse", "-in", "re/ca.key"])
        .success()
        .to_string();
    assert!(asn1.contains(":scrypt"), "{asn1}");
    let a = public_key_of(
        d,
        &["pkey", "-in", "re/ca.key", "-passin", "file:pw", "-pubout"],
    );
    assert_eq!(
        a,
        public_key_of(d, &["x509", "-in", "vendor.crt", "-pubkey", "-noout"])
    );

    // A plaintext key imported with --encrypt is stored encrypted.
    jitr_env(
        d,
        &words("ca import enc --cert vendor.crt --key plain.key --encrypt"),
        &[("JITR_CA_PASSWORD", PASSPHRASE)],
    )
    .success();
    let text = std::fs::read_to_string(d.join("enc/ca.key")).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{text}"
    );
    openssl(
        d,
        &["pkey", "-in", "enc/ca.key", "-passin", "file:pw", "-noout"],
    )
    .success();

    // A wrong passphrase on import writes nothing.
    write(d, "wrong", "nope-nope");
    let run = jitr_env(
        d,
        &words("ca import bad --cert vendor.crt --key vendor.key --password-file wrong"),
        &[],
    );
    assert!(
        run.failure().contains("passphrase is wrong"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("nope-nope"));
    assert!(!d.join("bad").exists());
}

/// CA `root`, just made with its key in key store `store`: the report
/// says so, the directory holds the key's reference and no key; that
/// reference.
#[track_caller]
fn root_in_key_store(d: &Path, report: &serde_json::Value, store: &str) -> serde_json::Value {
    assert_eq!(report["key_store"], store);
    assert_eq!(
        list_dir(&d.join("root")),
        ["ca.crt", "chain.pem", "key.json"]
    );
    let reference = key_reference(d, "root");
    assert_eq!(reference["store"], store);
    reference
}

/// The key reference (`key.json`) of CA directory `ca` whose key is in a key store.
fn key_reference(d: &Path, ca: &str) -> serde_json::Value {
    let path = d.join(ca).join("key.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `args` followed by `store`'s flags.
fn with<'a>(mut args: Vec<&'a str>, store: &'a [String]) -> Vec<&'a str> {
    args.extend(store.iter().map(String::as_str));
    args
}

#[test]
fn pkcs11_root_and_intermediate_on_a_token_sign_devices() {
    let hsm = SoftHsm::start("jitr-ca");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pin_file = hsm.pin_file.display().to_string();
    let store = hsm.store_args();

    let report = hsm
        .jitr(
            d,
            &with(
                vec![
                    "--json",
                    "ca",
                    "create",
                    "root",
                    "--subject",
                    "CN=HSM Root",
                    "--pin-file",
                    &pin_file,
                ],
                &store,
            ),
            &[],
        )
        .json();
    let reference = root_in_key_store(d, &report, "pkcs11");
    assert_eq!(reference["token"], "jitr-ca");
    assert_eq!(reference["key_label"], "HSM Root");

    for (dir, key) in [("int", "ec-p384"), ("intr", "rsa-2048")] {
        let subject = format!("CN=HSM {dir}");
        let args = vec![
            "ca",
            "create",
            dir,
            "--key",
            key,
            "--issuer",
            "root",
            "--subject",
            &subject,
        ];
        hsm.jitr(d, &with(args, &store), &[("JITR_PKCS11_PIN", PIN)])
            .success();
    }
    // Devices: single, bulk, from a CSR; signed on the token, verified by openssl.
    let env = [("JITR_PKCS11_PIN", PIN)];
    hsm.jitr(
        d,
        &words("device issue --ca int --out dev --name one"),
        &env,
    )
    .success();
    hsm.jitr(
        d,
        &words("device issue --ca intr --out devr --count 25 --name-template r{n:02}"),
        &env,
    )
    .success();
    jitr_tests::ec_csr(d, "csr.key", "dev.csr", "/CN=from-csr");
    hsm.jitr(
        d,
        &words("device issue --ca int --out dev --name from-csr --csr dev.csr"),
        &env,
    )
    .success();
    verify(d, "root/ca.crt", Some("int/ca.crt"), "dev/one/device.crt");
    verify(
        d,
        "root/ca.crt",
        Some("int/ca.crt"),
        "dev/from-csr/device.crt",
    );
    for n in 1..=25 {
        verify(
            d,
            "root/ca.crt",
            Some("intr/ca.crt"),
            &format!("devr/r{n:02}/device.crt"),
        );
    }
    hsm.jitr(
        d,
        &words("ca verification-cert intr --code abc --out v.crt"),
        &env,
    )
    .success();
    verify(d, "root/ca.crt", Some("intr/ca.crt"), "v.crt");

    // The token holds three private keys, all sensitive and never extractable.
    let objects = hsm
        .tool(&["--list-objects", "--type", "privkey"])
        .success()
        .to_string();
    assert_eq!(
        objects.matches("Private Key Object").count(),
        3,
        "{objects}"
    );
    assert_eq!(objects.matches("never extractable").count(), 3, "{objects}");
    assert!(
        !objects.contains("decrypt"),
        "a CA key only signs: {objects}"
    );
    assert_eq!(
        objects.matches("Access:     sensitive").count(),
        3,
        "{objects}"
    );
    // No private key anywhere in the CA directories.
    for dir in ["root", "int", "intr"] {
        for (path, text) in all_files(&d.join(dir)) {
            assert!(!text.contains("PRIVATE KEY"), "{path}");
        }
    }
}

#[test]
fn stores_mix_root_in_an_encrypted_file_intermediate_on_a_token() {
    let hsm = SoftHsm::start("mix");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "pw", PASSPHRASE);
    hsm.jitr(
        d,
        &["ca", "create", "root", "--encrypt", "--password-file", "pw"],
        &[],
    )
    .success();
    let mut args = vec![
        "ca",
        "create",
        "int",
        "--issuer",
        "root",
        "--issuer-password-file",
        "pw",
    ];
    let store = hsm.store_args();
    args.extend(store.iter().map(String::as_str));
    hsm.jitr(d, &args, &[("JITR_PKCS11_PIN", PIN)]).success();
    assert!(!d.join("int/ca.key").exists());
    hsm.jitr(
        d,
        &words("device issue --ca int --out dev --name m"),
        &[("JITR_PKCS11_PIN", PIN)],
    )
    .success();
    verify(d, "root/ca.crt", Some("int/ca.crt"), "dev/m/device.crt");
}

#[test]
fn pkcs11_bad_input_is_one_sentence_and_changes_nothing() {
    let hsm = SoftHsm::start("bad");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let store = hsm.store_args();
    let create = |dir: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["ca", "create", dir];
        args.extend(store.iter().map(String::as_str));
        args.extend(extra);
        hsm.jitr(d, &args, env)
    };
    create("root", &[], &[("JITR_PKCS11_PIN", PIN)]).success();

    let run = create("x1", &[], &[("JITR_PKCS11_PIN", "999999")]);
    assert!(
        run.failure()
            .contains("key store pkcs11: token \"bad\" refused the PIN"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("999999"));
    let run = hsm.jitr(
        d,
        &words("device issue --ca root --out dev --name a"),
        &[("JITR_PKCS11_PIN", "999999")],
    );
    assert!(run.failure().contains("refused the PIN"), "{}", run.stderr);
    assert!(!d.join("dev").exists());

    let err = create("x2", &[], &[]).failure().to_string();
    assert!(
        err.contains("key store pkcs11")
            && err.contains("--pin-file")
            && err.contains("not a terminal"),
        "{err}"
    );

    let mut args = vec![
        "ca",
        "create",
        "x3",
        "--key-store",
        "pkcs11",
        "--pkcs11-token",
        "bad",
        "--pkcs11-module",
        "/nonexistent/libpkcs11.so",
    ];
    let err = hsm
        .jitr(d, &args, &[("JITR_PKCS11_PIN", PIN)])
        .failure()
        .to_string();
    assert!(
        err.contains("cannot load the PKCS#11 module /nonexistent/libpkcs11.so"),
        "{err}"
    );
    args[6] = "missing";
    args[8] = store[3].as_str();
    let err = hsm
        .jitr(d, &args, &[("JITR_PKCS11_PIN", PIN)])
        .failure()
        .to_string();
    assert!(
        err.contains("no initialised token labelled \"missing\"") && err.contains("\"bad\""),
        "{err}"
    );

    // The default label (the CN) is taken: no silent adoption.
    let err = create("x4", &[], &[("JITR_PKCS11_PIN", PIN)])
        .failure()
        .to_string();
    assert!(
        err.contains("already holds a key labelled \"jitr Root CA\""),
        "{err}"
    );
    // Adopting by label checks the kind.
    let err = create(
        "x5",
        &["--pkcs11-key-label", "jitr Root CA", "--key", "rsa-2048"],
        &[("JITR_PKCS11_PIN", PIN)],
    )
    .failure()
    .to_string();
    assert!(err.contains("is ec-p256, expected rsa-2048"), "{err}");
    for dir in ["x1", "x2", "x3", "x4", "x5"] {
        assert!(!d.join(dir).exists(), "{dir} written");
    }
    let objects = hsm
        .tool(&["--list-objects", "--type", "privkey"])
        .success()
        .to_string();
    assert_eq!(
        objects.matches("Private Key Object").count(),
        1,
        "{objects}"
    );

    // Adopting an existing key by label: the same public key, a second CA.
    create(
        "again",
        &[
            "--pkcs11-key-label",
            "jitr Root CA",
            "--subject",
            "CN=again",
        ],
        &[("JITR_PKCS11_PIN", PIN)],
    )
    .success();
    let a = public_key_of(d, &["x509", "-in", "root/ca.crt", "-pubkey", "-noout"]);
    assert_eq!(
        a,
        public_key_of(d, &["x509", "-in", "again/ca.crt", "-pubkey", "-noout"])
    );
}

/// The base64 of a certificate's SubjectPublicKeyInfo, as openssl prints it.
fn cert_spki_base64(d: &Path, cert: &str) -> String {
    openssl(d, &["x509", "-in", cert, "-pubkey", "-noout"])
        .success()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

#[test]
fn kms_creates_and_adopts_keys_that_sign_devices_and_register() {
    let ms = Ministack::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let report = kms::jitr(
        &ms,
        d,
        &[
            "--json",
            "ca",
            "create",
            "root",
            "--key-store",
            "kms",
            "--subject",
            "CN=KMS Root",
        ],
    )
    .json();
    let reference = root_in_key_store(d, &report, "kms");
    assert_eq!(reference["key_spec"], "ECC_NIST_P256");
    let arn = reference["key_id"].as_str().unwrap().to_string();
    // The alias and description jitr gave it, as KMS reports them.
    let described = kms::call(
        &ms,
        "describe_key",
        json!({ "KeyId": "alias/jitr/KMS-Root" }),
    );
    assert_eq!(described["KeyMetadata"]["Arn"], arn.as_str(), "{described}");
    assert_eq!(described["KeyMetadata"]["KeyUsage"], "SIGN_VERIFY");
    assert_eq!(
        described["KeyMetadata"]["Description"],
        "jitr CA key: KMS Root"
    );
    // The certificate's public key is KMS's.
    assert_eq!(
        cert_spki_base64(d, "root/ca.crt"),
        kms::public_key(&ms, &arn)
    );

    // Adopt keys made elsewhere, by ARN, for RSA and P-384 intermediates.
    for (dir, spec, key) in [
        ("intr", "RSA_2048", "rsa-2048"),
        ("int", "ECC_NIST_P384", "ec-p384"),
    ] {
        let key_arn = kms::create_key(&ms, spec, "SIGN_VERIFY");
        kms::jitr(
            &ms,
            d,
            &[
                "ca",
                "create",
                dir,
                "--key",
                key,
                "--issuer",
                "root",
                "--key-store",
                "kms",
                "--kms-key-id",
                &key_arn,
                "--subject",
                &format!("CN={dir}"),
            ],
        )
        .success();
        assert_eq!(
            cert_spki_base64(d, &format!("{dir}/ca.crt")),
            kms::public_key(&ms, &key_arn)
        );
    }
    // Devices: bulk and CSR, verified by openssl.
    kms::jitr(
        &ms,
        d,
        &words("--json device issue --ca intr --out dev --count 20 --name-template k{n:02}"),
    )
    .json();
    jitr_tests::ec_csr(d, "csr.key", "dev.csr", "/CN=from-csr");
    kms::jitr(
        &ms,
        d,
        &words("device issue --ca int --out dev --name from-csr --csr dev.csr"),
    )
    .success();
    for n in 1..=20 {
        verify(
            d,
            "root/ca.crt",
            Some("intr/ca.crt"),
            &format!("dev/k{n:02}/device.crt"),
        );
    }
    verify(
        d,
        "root/ca.crt",
        Some("int/ca.crt"),
        "dev/from-csr/device.crt",
    );
    // ca register: the verification certificate is signed in KMS.
    let registered = kms::jitr(&ms, d, &["--json", "ca", "register", "int"]).json();
    assert_eq!(registered["outcome"], "registered", "{registered}");
    assert_eq!(registered["status"], "ACTIVE");
    kms::jitr(
        &ms,
        d,
        &words("ca verification-cert int --code abc123 --out v.crt"),
    )
    .success();
    verify(d, "root/ca.crt", Some("int/ca.crt"), "v.crt");
}

#[test]
fn kms_keys_of_the_wrong_kind_or_state_are_refused_and_nothing_is_written() {
    let ms = Ministack::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let adopt = |dir: &str, key_id: &str, key: &str| {
        kms::jitr(
            &ms,
            d,
            &words(&format!(
                "ca create {dir} --key-store kms --kms-key-id {key_id} --key {key}"
            )),
        )
    };
    let rsa = kms::create_key(&ms, "RSA_2048", "SIGN_VERIFY");
    let err = adopt("a", &rsa, "ec-p256").failure().to_string();
    assert!(
        err.contains("key store kms") && err.contains("is RSA_2048, expected ECC_NIST_P256"),
        "{err}"
    );
    let encrypting = kms::create_key(&ms, "RSA_2048", "ENCRYPT_DECRYPT");
    let err = adopt("b", &encrypting, "rsa-2048").failure().to_string();
    assert!(
        err.contains("key usage ENCRYPT_DECRYPT, expected SIGN_VERIFY"),
        "{err}"
    );
    let disabled = kms::create_key(&ms, "ECC_NIST_P256", "SIGN_VERIFY");
    kms::call(&ms, "disable_key", json!({ "KeyId": disabled }));
    let err = adopt("c", &disabled, "ec-p256").failure().to_string();
    assert!(err.contains("is Disabled, expected Enabled"), "{err}");
    let doomed = kms::create_key(&ms, "ECC_NIST_P256", "SIGN_VERIFY");
    kms::call(
        &ms,
        "schedule_key_deletion",
        json!({ "KeyId": doomed, "PendingWindowInDays": 7 }),
    );
    let err = adopt("e", &doomed, "ec-p256").failure().to_string();
    assert!(
        err.contains("is PendingDeletion, expected Enabled"),
        "{err}"
    );
    let err = adopt("f", "alias/jitr/none-such", "ec-p256")
        .failure()
        .to_string();
    assert!(
        err.contains("key store kms") && err.contains("not found"),
        "{err}"
    );
    for dir in ["a", "b", "c", "e", "f"] {
        assert!(!d.join(dir).exists(), "{dir} written");
    }

    // A CA whose key is disabled later: signing commands say so, write nothing.
    kms::jitr(&ms, d, &["ca", "create", "root", "--key-store", "kms"]).success();
    let reference = key_reference(d, "root");
    kms::call(&ms, "disable_key", json!({ "KeyId": reference["key_id"] }));
    let err = kms::jitr(&ms, d, &words("device issue --ca root --out dev --name x"))
        .failure()
        .to_string();
    assert!(
        err.contains("key store kms") && err.contains("Disabled"),
        "{err}"
    );
    assert!(!d.join("dev").exists());
    // The alias is taken now: a second CA of the same name is not silently given the key.
    let err = kms::jitr(&ms, d, &["ca", "create", "again", "--key-store", "kms"])
        .failure()
        .to_string();
    assert!(
        err.contains("alias/jitr/jitr-Root-CA already exists"),
        "{err}"
    );
}

#[test]
fn kms_throttling_is_retried_and_every_device_is_signed() {
    let ms = Ministack::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    kms::jitr(&ms, d, &["ca", "create", "root", "--key-store", "kms"]).success();
    // Every other Sign call is refused with ThrottlingException.
    let proxy = kms::ThrottlingProxy::start(&ms);
    let run = kms::jitr(
        &ms,
        d,
        &[
            "--json",
            "device",
            "issue",
            "--ca",
            "root",
            "--out",
            "dev",
            "--count",
            "12",
            "--name-template",
            "t{n:02}",
            "--endpoint-url",
            &proxy.url,
        ],
    );
    let report = run.json();
    assert_eq!(report["issued"].as_array().unwrap().len(), 12, "{report}");
    assert_eq!(report["key_store"], "kms");
    assert_eq!(
        report["sign_rate"], 300,
        "the KMS quota for ECC keys is the default"
    );
    let stats = proxy.stats();
    assert!(stats["throttled"].as_u64().unwrap() >= 12, "{stats}");
    assert_eq!(
        stats["sign"].as_u64().unwrap(),
        2 * stats["throttled"].as_u64().unwrap(),
        "{stats}"
    );
    for n in 1..=12 {
        verify(d, "root/ca.crt", None, &format!("dev/t{n:02}/device.crt"));
    }
}

/// Runs `jitr ARGS` in `cwd` on a pseudo-terminal, typing `answers` one per
/// prompt; returns what the terminal showed and the exit code.
fn on_terminal(cwd: &Path, args: &[&str], answers: &[&str]) -> (String, i32) {
    const SCRIPT: &str = r#"
import json, os, pty, sys, termios, time
args, answers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execv(args[0], args)
out = b""
def read_until(marker):
    global out
    deadline = time.time() + 30
    while marker not in out and time.time() < deadline:
        try:
            out += os.read(fd, 4096)
        except OSError:
            break
def echo_off():
    # The prompt can be out before the program turns echo off: typing
    # then would echo (a race in the test, not the program).
    deadline = time.time() + 5
    while time.time() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
        time.sleep(0.01)
for n, answer in enumerate(answers):
    read_until(b": ")
    out = out.replace(b": ", b":\n", 1)
    echo_off()
    os.write(fd, answer.encode() + b"\n")
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
print(json.dumps({"out": out.decode(errors="replace"), "code": os.waitstatus_to_exitcode(status)}))
"#;
    let mut argv = vec![bin("jitr").display().to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let run = run(Command::new("python3")
        .args([
            "-c",
            SCRIPT,
            &json!(argv).to_string(),
            &json!(answers).to_string(),
        ])
        .current_dir(cwd)
        .env_remove("JITR_CA_PASSWORD")
        .env_remove("JITR_PKCS11_PIN"));
    let v = run.json();
    (
        v["out"].as_str().unwrap().to_string(),
        v["code"].as_i64().unwrap() as i32,
    )
}

#[test]
fn on_a_terminal_the_passphrase_is_prompted_twice_on_create_and_never_echoed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (shown, code) = on_terminal(
        d,
        &["ca", "create", "root", "--encrypt"],
        &["typed-secret-1", "typed-secret-1"],
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(
        shown.matches("passphrase of the CA key").count(),
        2,
        "{shown}"
    );
    assert!(!shown.contains("typed-secret-1"), "echoed: {shown}");
    write(d, "pw", "typed-secret-1");
    openssl(
        d,
        &["pkey", "-in", "root/ca.key", "-passin", "file:pw", "-noout"],
    )
    .success();

    let (shown, code) = on_terminal(
        d,
        &["ca", "create", "other", "--encrypt"],
        &["one-thing", "another"],
    );
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("the two entries of the passphrase of the CA key differ"),
        "{shown}"
    );
    assert!(!d.join("other").exists());

    // Using the CA asks once.
    let (shown, code) = on_terminal(
        d,
        &words("device issue --ca root --out dev --name t"),
        &["typed-secret-1"],
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(
        shown.matches("passphrase of the CA key").count(),
        1,
        "{shown}"
    );
    verify(d, "root/ca.crt", None, "dev/t/device.crt");
}

#[test]
fn ca_register_signs_the_proof_with_an_encrypted_key_and_registers_nothing_without_it() {
    let ms = Ministack::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "pw", PASSPHRASE);
    write(d, "wrong", "not-the-passphrase");
    jitr_env(
        d,
        &["ca", "create", "root", "--encrypt", "--password-file", "pw"],
        &[],
    )
    .success();

    let run = kms::jitr(
        &ms,
        d,
        &["ca", "register", "root", "--password-file", "wrong"],
    );
    assert!(
        run.failure().contains("passphrase is wrong"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not-the-passphrase"));
    let listed = kms::jitr(&ms, d, &["--json", "ca", "list"]).json();
    assert_eq!(
        listed.to_string().matches("certificate_id").count(),
        0,
        "nothing registered: {listed}"
    );

    let registered = kms::jitr(
        &ms,
        d,
        &["--json", "ca", "register", "root", "--password-file", "pw"],
    )
    .json();
    assert_eq!(registered["outcome"], "registered", "{registered}");
    assert_eq!(registered["status"], "ACTIVE");
    let listed = kms::jitr(&ms, d, &["--json", "ca", "list"]).json();
    assert_eq!(
        listed.to_string().matches("certificate_id").count(),
        1,
        "{listed}"
    );
}

#[test]
fn pkcs11_adopts_key_pairs_made_by_other_tools() {
    let hsm = SoftHsm::start("ext");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for (kind, label, id) in [
        ("EC:secp384r1", "ext p384", "42"),
        ("rsa:3072", "ext rsa", "43"),
    ] {
        hsm.tool(&[
            "--keypairgen",
            "--key-type",
            kind,
            "--label",
            label,
            "--id",
            id,
        ])
        .success();
    }
    let store = hsm.store_args();
    let env = [("JITR_PKCS11_PIN", PIN)];
    let args = vec![
        "ca",
        "create",
        "root",
        "--key",
        "ec-p384",
        "--pkcs11-key-label",
        "ext p384",
    ];
    hsm.jitr(d, &with(args, &store), &env).success();
    let args = vec![
        "ca",
        "create",
        "int",
        "--key",
        "rsa-3072",
        "--pkcs11-key-label",
        "ext rsa",
        "--issuer",
        "root",
    ];
    hsm.jitr(d, &with(args, &store), &env).success();
    let reference = key_reference(d, "int");
    assert_eq!(reference["key_id"], "43", "the key's CKA_ID is recorded");
    hsm.jitr(d, &words("device issue --ca int --out dev --name z"), &env)
        .success();
    verify(d, "root/ca.crt", Some("int/ca.crt"), "dev/z/device.crt");
    // The certificate carries the token's public key, as pkcs11-tool reads it.
    let der = d.join("pub.der").display().to_string();
    hsm.tool(&[
        "--read-object",
        "--type",
        "pubkey",
        "--label",
        "ext rsa",
        "-o",
        &der,
    ])
    .success();
    let from_token: String = openssl(d, &["pkey", "-pubin", "-inform", "DER", "-in", "pub.der"])
        .success()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert_eq!(from_token, cert_spki_base64(d, "int/ca.crt"));
}

// ---- Hardening: mismatched key pairs, migration, secrets files, labels ----

/// A P-256 key made by openssl: `NAME.pem`, its PKCS#8 DER `NAME.der` and
/// its public key `NAME.pub.der`.
fn openssl_key(d: &Path, name: &str) {
    let pem = format!("{name}.pem");
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &pem,
        ],
    )
    .success();
    to_der(d, &pem, name);
}

/// `NAME.der` (PKCS#8) and `NAME.pub.der` from the PEM key `pem`.
fn to_der(d: &Path, pem: &str, name: &str) {
    let der = format!("{name}.der");
    let pubder = format!("{name}.pub.der");
    openssl(d, &["pkey", "-in", pem, "-outform", "DER", "-out", &der]).success();
    openssl(
        d,
        &[
            "pkey", "-in", pem, "-pubout", "-outform", "DER", "-out", &pubder,
        ],
    )
    .success();
}

#[test]
fn readme_migrations_of_a_file_ca_key_verify_with_openssl_and_mismatched_pairs_are_refused() {
    let hsm = SoftHsm::start("move");
    let ms = Ministack::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let env = [("JITR_PKCS11_PIN", PIN)];
    let store = hsm.store_args();
    jitr_env(d, &words("ca create old --subject CN=Old"), &[]).success();

    // Encrypted file: `ca import NEWDIR --cert DIR/ca.crt --key DIR/ca.key --chain DIR/chain.pem --encrypt`.
    write(d, "pw", &format!("{PASSPHRASE}\n"));
    jitr_env(
        d,
        &words("ca import enc --cert old/ca.crt --key old/ca.key --chain old/chain.pem --encrypt --password-file pw"),
        &[],
    )
    .success();
    // PKCS#11: the key and its public key written under one label, adopted.
    to_der(d, "old/ca.key", "old");
    hsm.write_object(d, "old.der", "privkey", "moved", "0a");
    hsm.write_object(d, "old.pub.der", "pubkey", "moved", "0a");
    let args = vec![
        "ca",
        "create",
        "hsm",
        "--subject",
        "CN=Moved",
        "--pkcs11-key-label",
        "moved",
    ];
    hsm.jitr(d, &with(args, &store), &env).success();
    assert_eq!(
        cert_spki_base64(d, "old/ca.crt"),
        cert_spki_base64(d, "hsm/ca.crt"),
        "the same key, a new certificate"
    );
    // KMS: a new intermediate in KMS signed by the file CA.
    kms::jitr(
        &ms,
        d,
        &words("ca create kmsint --issuer old --key-store kms --subject CN=KMS-Int"),
    )
    .success();

    // What each migrated CA makes verifies with openssl: a device certificate and a CRL.
    for (ca, root, untrusted) in [
        ("enc", "enc/ca.crt", None),
        ("hsm", "hsm/ca.crt", None),
        ("kmsint", "old/ca.crt", Some("kmsint/ca.crt")),
    ] {
        let issue = format!("device issue --ca {ca} --out dev-{ca} --name d");
        let crl = format!("ca crl {ca}");
        let extra: Vec<&str> = match ca {
            "enc" => vec!["--password-file", "pw"],
            _ => vec![],
        };
        for cmd in [issue, crl] {
            let mut args = words(&cmd);
            args.extend(&extra);
            let mut all_env: Vec<(&str, String)> = ms.env();
            all_env.push(("JITR_PKCS11_PIN", PIN.into()));
            run(Command::new(bin("jitr"))
                .args(&args)
                .current_dir(d)
                .env("SOFTHSM2_CONF", &hsm.conf)
                .env_remove("JITR_CA_PASSWORD")
                .envs(all_env))
            .success();
        }
        verify(d, root, untrusted, &format!("dev-{ca}/d/device.crt"));
        jitr_tests::assert_crl_verifies(d, ca);
    }

    // A private and a public key object of two different pairs under one
    // label: refused at create, with one sentence naming the mismatch.
    openssl_key(d, "other");
    hsm.write_object(d, "old.der", "privkey", "mixed", "0b");
    hsm.write_object(d, "other.pub.der", "pubkey", "mixed", "0b");
    let args = vec!["ca", "create", "mix", "--pkcs11-key-label", "mixed"];
    let err = hsm.jitr(d, &with(args, &store), &env).failure().to_string();
    assert!(
        err.contains("key store pkcs11")
            && err.contains("\"mixed\"")
            && err.contains("does not match"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!d.join("mix").exists());

    // And at open: the private key behind a working CA swapped for another.
    hsm.tool(&["--delete-object", "--type", "privkey", "--label", "moved"])
        .success();
    hsm.write_object(d, "other.der", "privkey", "moved", "0a");
    let err = hsm
        .jitr(
            d,
            &words("device issue --ca hsm --out dev-bad --name d"),
            &env,
        )
        .failure()
        .to_string();
    assert!(
        err.contains("key store pkcs11") && err.contains("does not match"),
        "{err}"
    );
    assert!(!d.join("dev-bad").exists());
    let err = hsm
        .jitr(d, &words("ca crl hsm --out bad.crl"), &env)
        .failure()
        .to_string();
    assert!(err.contains("does not match"), "{err}");
    assert!(!d.join("bad.crl").exists());
}

#[test]
fn parallel_token_creates_of_one_subject_make_one_key_and_ambiguous_labels_are_refused() {
    let hsm = SoftHsm::start("race");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let store = hsm.store_args();
    let children: Vec<_> = (0..4)
        .map(|n| {
            let dir = format!("c{n}");
            let mut args = vec!["ca", "create", dir.as_str(), "--subject", "CN=Same"];
            args.extend(store.iter().map(String::as_str));
            Command::new(bin("jitr"))
                .args(&args)
                .current_dir(d)
                .env("SOFTHSM2_CONF", &hsm.conf)
                .env("JITR_PKCS11_PIN", PIN)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won: Vec<_> = outs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(won.len(), 1, "{outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("already holds a key labelled \"Same\""),
            "{err}"
        );
    }
    assert_eq!(hsm.count("privkey", "Same"), 1);
    assert_eq!(hsm.count("pubkey", "Same"), 1);
    let winner = (0..4)
        .find(|n| d.join(format!("c{n}/key.json")).exists())
        .unwrap();
    let ca = format!("c{winner}");

    // Several private (or public) keys under one label: adopting it would guess.
    let adopt = |dir: &str, label: &str| {
        let args = vec!["ca", "create", dir, "--pkcs11-key-label", label];
        hsm.jitr(d, &with(args, &store), &[("JITR_PKCS11_PIN", PIN)])
    };
    for id in ["01", "02"] {
        hsm.tool(&[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "dup",
            "--id",
            id,
        ])
        .success();
    }
    let err = adopt("a1", "dup").failure().to_string();
    assert!(err.contains("2 private keys labelled \"dup\""), "{err}");
    hsm.tool(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "pubs",
        "--id",
        "03",
    ])
    .success();
    openssl_key(d, "stray");
    hsm.write_object(d, "stray.pub.der", "pubkey", "pubs", "04");
    let err = adopt("a2", "pubs").failure().to_string();
    assert!(err.contains("2 public keys labelled \"pubs\""), "{err}");
    assert!(!d.join("a1").exists() && !d.join("a2").exists());

    // key.json's key_id must be hex: a damaged one is refused by file and field.
    let ref_path = d.join(&ca).join("key.json");
    let mut reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&ref_path).unwrap()).unwrap();
    reference["key_id"] = json!("not-hex!");
    std::fs::write(&ref_path, reference.to_string()).unwrap();
    let err = hsm
        .jitr(
            d,
            &[
                "device", "issue", "--ca", &ca, "--out", "dev", "--name", "x",
            ],
            &[("JITR_PKCS11_PIN", PIN)],
        )
        .failure()
        .to_string();
    assert!(
        err.contains("key.json") && err.contains("key_id") && err.contains("not-hex!"),
        "{err}"
    );
    assert!(!d.join("dev").exists());
}

/// Runs `jitr ARGS` in `cwd`, killing it after 20 s: reading a FIFO could hang.
fn jitr_bounded(cwd: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(bin("jitr"))
        .args(args)
        .current_dir(cwd)
        .env_remove("JITR_CA_PASSWORD")
        .env_remove("JITR_PKCS11_PIN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("jitr {args:?} still running after 20 s: {out:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn password_files_are_read_as_openssl_reads_them_and_never_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // The first line only, and a CR before the newline is part of it, as
    // for `openssl -passin file:`.
    write(d, "two", "first-line\nsecond-line\n");
    write(d, "crlf", "windows-pw\r\n");
    for (dir, file) in [("ca-two", "two"), ("ca-crlf", "crlf")] {
        jitr_env(
            d,
            &["ca", "create", dir, "--encrypt", "--password-file", file],
            &[],
        )
        .success();
        let key = format!("{dir}/ca.key");
        let passin = format!("file:{file}");
        openssl(d, &["pkey", "-in", &key, "-passin", &passin, "-noout"]).success();
        jitr_env(
            d,
            &[
                "device",
                "issue",
                "--ca",
                dir,
                "--out",
                "dev",
                "--name",
                dir,
                "--password-file",
                file,
            ],
            &[],
        )
        .success();
    }
    // A key openssl encrypted with a CRLF file: jitr opens it with the same file.
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "ca-two/ca.key",
            "-passin",
            "file:two",
            "-passout",
            "file:crlf",
            "-v2",
            "aes-256-cbc",
            "-out",
            "by-openssl.key",
        ],
    )
    .success();
    jitr_env(
        d,
        &words("ca import imp --cert ca-two/ca.crt --key by-openssl.key --password-file crlf"),
        &[],
    )
    .success();

    // Only regular files, of a bounded size, with one line openssl reads whole.
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(d.join("adir")).unwrap();
    std::fs::write(d.join("big"), vec![b'a'; 100 * 1024]).unwrap();
    write(d, "long", &format!("{}\n", "b".repeat(2000)));
    for (file, expected) in [
        ("fifo", "not a regular file"),
        ("/dev/urandom", "not a regular file"),
        ("adir", "not a regular file"),
        ("big", "larger than 64 KiB"),
        ("long", "1023"),
    ] {
        let run = jitr_bounded(
            d,
            &["ca", "create", "x", "--encrypt", "--password-file", file],
        );
        let err = run.failure();
        assert!(
            err.contains("--password-file") && err.contains(expected),
            "{file}: {err}"
        );
        assert!(!d.join("x").exists(), "{file}");
    }

    // A passphrase given where nothing is encrypted is refused, not ignored.
    write(d, "pw", &format!("{PASSPHRASE}\n"));
    let err = jitr_env(d, &words("ca create plain --password-file pw"), &[])
        .failure()
        .to_string();
    assert!(
        err.contains("--password-file") && err.contains("--encrypt"),
        "{err}"
    );
    assert!(!d.join("plain").exists());
    jitr_env(d, &words("ca create plain"), &[]).success();
    for cmd in [
        "device issue --ca plain --out dev --name p --password-file pw",
        "ca crl plain --password-file pw",
        "device issue --ca plain --out dev --name p --pin-file pw",
    ] {
        let err = jitr_env(d, &words(cmd), &[]).failure().to_string();
        assert!(
            err.contains("plain") && err.contains("would be ignored"),
            "{cmd}: {err}"
        );
    }
    assert!(!d.join("dev/p").exists() && !d.join("plain/crl.pem").exists());
    // Used for an encrypted issuer, the same flag is not ignored.
    jitr_env(
        d,
        &words("ca create int --issuer ca-two --password-file two"),
        &[],
    )
    .success();
    verify(d, "ca-two/ca.crt", Some("int/ca.crt"), "int/ca.crt");
}

#[test]
fn kms_errors_name_kms() {
    let ms = Ministack::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Nothing listens on this port.
    let closed = format!("http://127.0.0.1:{}", jitr_tests::free_port());
    let err = kms::jitr(
        &ms,
        d,
        &[
            "ca",
            "create",
            "x",
            "--key-store",
            "kms",
            "--endpoint-url",
            &closed,
        ],
    )
    .failure()
    .to_string();
    assert!(
        err.contains("key store kms") && err.contains("KMS") && !err.contains("AWS IoT"),
        "{err}"
    );
    assert!(!d.join("x").exists());
}
