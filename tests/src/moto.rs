//! moto server as the local AWS IoT stand-in (`tests/moto/jitr_moto.py`),
//! on a free loopback port, with boto3 as an independent client to check
//! what our commands did.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{bin, free_port, run, wait_for_port, Guard, Run};

/// The stand-in's launcher script.
pub const LAUNCHER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/moto/jitr_moto.py");
pub const REGION: &str = "eu-west-1";

/// A running moto server; stopped on drop.
pub struct Moto {
    pub port: u16,
    pub url: String,
    _child: Guard,
}

impl Moto {
    /// Starts the stand-in.
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// Starts the stand-in with extra environment (e.g. moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT=0` to check credentials).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let mut child = Command::new("python3")
            .args([LAUNCHER, "-p", &port.to_string()])
            .env("JITR_MODEL_CHECK_DIR", crate::ministack::model_check_dir())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto[server] is installed (make test installs it)");
        wait_for_port(port, &mut child, "moto server");
        Moto {
            port,
            url: format!("http://127.0.0.1:{port}"),
            _child: Guard(child),
        }
    }

    /// Environment for any AWS client aimed at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }

    /// Runs `jitr ARGS` in `cwd` against this server.
    pub fn jitr(&self, cwd: &Path, args: &[&str]) -> Run {
        run(Command::new(bin("jitr"))
            .args(args)
            .current_dir(cwd)
            .envs(self.env()))
    }

    /// Calls an IoT API operation with boto3 (snake_case name, JSON params)
    /// and returns its answer, or the error code as `{"Error": CODE}`.
    pub fn boto3(&self, operation: &str, params: serde_json::Value) -> serde_json::Value {
        const SCRIPT: &str = r#"
import boto3, json, sys
c = boto3.client("iot")
try:
    out = getattr(c, sys.argv[1])(**json.loads(sys.argv[2]))
    out.pop("ResponseMetadata", None)
except c.exceptions.ClientError as e:
    out = {"Error": e.response["Error"]["Code"], "Message": e.response["Error"].get("Message", "")}
print(json.dumps(out, default=str))
"#;
        let out = run(Command::new("python3")
            .args(["-c", SCRIPT, operation, &params.to_string()])
            .envs(self.env()));
        out.json()
    }

    /// The stand-in with what JITR needs ([`Moto::jitr_setup`]) for a new
    /// temp dir: the stand-in, the dir and CA `root`'s certificate id.
    pub fn start_for_jitr() -> (Moto, tempfile::TempDir, String) {
        let moto = Moto::start();
        let tmp = tempfile::tempdir().unwrap();
        let ca = moto.jitr_setup(tmp.path());
        (moto, tmp, ca)
    }

    /// What JITR needs in the account: CA `root` in `dir` created and
    /// registered (ACTIVE, auto-registration on) and the device policy
    /// `jitr-device`. Returns the CA's certificate id.
    pub fn jitr_setup(&self, dir: &Path) -> String {
        crate::jitr(dir, &["ca", "create", "root"]).success();
        let id = self.jitr(dir, &["--json", "ca", "register", "root"]).json()["certificate_id"]
            .as_str()
            .unwrap()
            .to_string();
        let doc = serde_json::json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "iot:Connect", "Resource": "*" }] });
        let made = self.boto3(
            "create_policy",
            serde_json::json!({ "policyName": "jitr-device", "policyDocument": doc.to_string() }),
        );
        assert!(made.get("Error").is_none(), "{made}");
        id
    }

    /// Registers a device certificate PENDING_ACTIVATION under CA `root`,
    /// as AWS IoT does on a first connect; returns its certificate id.
    pub fn register_pending(&self, dir: &Path, cert: &str) -> String {
        self.register_pending_under(dir, cert, "root")
    }

    /// [`Moto::register_pending`] under the CA directory `ca` in `dir`.
    pub fn register_pending_under(&self, dir: &Path, cert: &str, ca: &str) -> String {
        let pem = std::fs::read_to_string(dir.join(cert)).unwrap();
        let ca = std::fs::read_to_string(dir.join(ca).join("ca.crt")).unwrap();
        let answer = self.boto3("register_certificate", serde_json::json!({ "certificatePem": pem, "caCertificatePem": ca, "status": "PENDING_ACTIVATION" }));
        answer["certificateId"]
            .as_str()
            .unwrap_or_else(|| panic!("{answer}"))
            .to_string()
    }

    /// The registration event AWS IoT publishes for `certificate_id`.
    pub fn event(certificate_id: &str, ca_id: &str) -> serde_json::Value {
        serde_json::json!({
            "certificateId": certificate_id, "caCertificateId": ca_id, "timestamp": 1_700_000_000_000_i64,
            "certificateStatus": "PENDING_ACTIVATION", "awsAccountId": "123456789012",
            "certificateRegistrationTimestamp": null
        })
    }

    /// DescribeCertificate's status.
    pub fn status(&self, certificate_id: &str) -> String {
        let d = self.boto3(
            "describe_certificate",
            serde_json::json!({ "certificateId": certificate_id }),
        );
        d["certificateDescription"]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("{d}"))
            .to_string()
    }

    /// The principals attached to a thing (empty if there is no such thing).
    pub fn thing_principals(&self, thing: &str) -> Vec<String> {
        let d = self.boto3(
            "list_thing_principals",
            serde_json::json!({ "thingName": thing }),
        );
        crate::principals_in(&d)
    }

    /// The policies attached to a certificate ARN.
    pub fn policies_of(&self, arn: &str) -> Vec<String> {
        let d = self.boto3(
            "list_attached_policies",
            serde_json::json!({ "target": arn }),
        );
        crate::policy_names_in(&d)
    }
}
