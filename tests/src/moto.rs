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
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto[server] is installed (make test installs it)");
        wait_for_port(port, &mut child, "moto server");
        Moto { port, url: format!("http://127.0.0.1:{port}"), _child: Guard(child) }
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
        run(Command::new(bin("jitr")).args(args).current_dir(cwd).envs(self.env()))
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
        let out = run(Command::new("python3").args(["-c", SCRIPT, operation, &params.to_string()]).envs(self.env()));
        out.json()
    }
}
