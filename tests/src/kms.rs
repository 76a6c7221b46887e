//! AWS KMS on the local emulator (ministack), with boto3 as the independent
//! client that makes, inspects and breaks keys for the tests.

use std::path::Path;
use std::process::Command;

use crate::ministack::{venv_program, Ministack};
use crate::{bin, run, Run};

/// Calls a KMS operation with boto3 (snake_case name, JSON params); binary
/// fields come back base64. Errors as `{"Error": CODE, "Message": ...}`.
pub fn call(ms: &Ministack, operation: &str, params: serde_json::Value) -> serde_json::Value {
    const SCRIPT: &str = r#"
import base64, boto3, json, sys
c = boto3.client("kms")
try:
    out = getattr(c, sys.argv[1])(**json.loads(sys.argv[2]))
    out.pop("ResponseMetadata", None)
except c.exceptions.ClientError as e:
    out = {"Error": e.response["Error"]["Code"], "Message": e.response["Error"].get("Message", "")}
def enc(v):
    return base64.b64encode(v).decode() if isinstance(v, bytes) else str(v)
print(json.dumps(out, default=enc))
"#;
    let out = run(Command::new(venv_program("tools", "python3"))
        .args(["-c", SCRIPT, operation, &params.to_string()])
        .envs(ms.env()));
    out.json()
}

/// Creates a key with boto3; returns its ARN.
pub fn create_key(ms: &Ministack, spec: &str, usage: &str) -> String {
    let made = call(
        ms,
        "create_key",
        serde_json::json!({ "KeySpec": spec, "KeyUsage": usage, "Description": "made by the test" }),
    );
    made["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap_or_else(|| panic!("{made}"))
        .to_string()
}

/// The DER SubjectPublicKeyInfo KMS gives for `key_id`, base64.
pub fn public_key(ms: &Ministack, key_id: &str) -> String {
    let answer = call(ms, "get_public_key", serde_json::json!({ "KeyId": key_id }));
    answer["PublicKey"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string()
}

/// Runs `jitr ARGS` in `cwd` against the emulator.
pub fn jitr(ms: &Ministack, cwd: &Path, args: &[&str]) -> Run {
    run(Command::new(bin("jitr"))
        .args(args)
        .current_dir(cwd)
        .envs(ms.env()))
}
