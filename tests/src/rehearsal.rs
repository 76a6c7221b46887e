//! The local JITR rehearsal: moto (AWS IoT's API), the function under
//! `cargo lambda watch`, mosquitto (the MQTT broker, plain TCP on loopback)
//! with a subscriber on `things/#`, and `standin/iot_core.py` (AWS IoT Core's
//! TLS front door with JITR) in front of them. Everything stops on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::lambda::Watch;
use crate::moto::Moto;
use crate::{free_port, wait_for_port, Guard, Run};

/// The stand-in's script.
pub const IOT_CORE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/standin/iot_core.py");

/// How the rehearsal is set up.
pub struct Options<'a> {
    /// Extra `JITR_*` settings for the function (JITR_POLICY_NAME is set).
    pub settings: &'a [(&'a str, &'a str)],
    /// Invocations per second the stand-in delivers, at most.
    pub rate: u32,
    /// Concurrent invocations, at most.
    pub workers: u32,
    /// 1: one event per invocation (rule -> function); more: SQS-shaped
    /// batches of up to this many (rule -> queue -> function).
    pub batch: u32,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            settings: &[],
            rate: 10,
            workers: 2,
            batch: 1,
        }
    }
}

/// Everything running, with CA `root` (in `dir`) registered for JITR and
/// the device policy `jitr-device`.
pub struct Rehearsal {
    pub dir: PathBuf,
    pub moto: Moto,
    pub ca_id: String,
    /// host:port devices connect to.
    pub endpoint: String,
    /// The CA that verifies the stand-in's server certificate.
    pub server_ca: PathBuf,
    // Dropped in field order: the front door first.
    _iot_core: Guard,
    _subscriber: Guard,
    _broker: Guard,
    _watch: Watch,
}

impl Rehearsal {
    pub fn start(dir: &Path, options: Options) -> Rehearsal {
        let moto = Moto::start();
        let ca_id = moto.jitr_setup(dir);
        let mut env = moto.env();
        env.push(("JITR_POLICY_NAME", "jitr-device".into()));
        for (k, v) in options.settings {
            env.push((k, v.to_string()));
        }
        let watch = Watch::start(&env, &dir.join("watch.log"));

        let mqtt_port = free_port();
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!("listener {mqtt_port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\nlog_dest stderr\n"),
        )
        .unwrap();
        let mut broker = Command::new("mosquitto")
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mosquitto.log")).unwrap())
            .spawn()
            .expect("mosquitto is installed (make test installs it)");
        wait_for_port(mqtt_port, &mut broker, "mosquitto");
        let subscriber = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &mqtt_port.to_string(),
                "-t",
                "things/#",
                "-v",
                "-q",
                "1",
            ])
            .stdout(std::fs::File::create(dir.join("received.txt")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub is installed");
        wait_for_subscriber(&dir.join("mosquitto.log"));

        let port = free_port();
        let function = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/jitr-lambda/invocations",
            watch.port
        );
        let mut iot_core = Command::new("python3")
            .arg(IOT_CORE)
            .args(["--port", &port.to_string(), "--moto", &moto.url])
            .arg("--state-dir")
            .arg(dir.join("iot-core"))
            .args(["--broker", &format!("127.0.0.1:{mqtt_port}")])
            .args(["--function", &function])
            .args(["--rate", &options.rate.to_string()])
            .args(["--workers", &options.workers.to_string()])
            .args(["--batch", &options.batch.to_string()])
            .envs(moto.env())
            .stdout(std::fs::File::create(dir.join("iot-core.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("iot-core.err")).unwrap())
            .spawn()
            .expect("python3 with boto3 is installed (make test installs it)");
        wait_for_port(port, &mut iot_core, "the IoT Core stand-in");
        Rehearsal {
            dir: dir.to_path_buf(),
            ca_id,
            endpoint: format!("127.0.0.1:{port}"),
            server_ca: dir.join("iot-core/server-ca.crt"),
            moto,
            _iot_core: Guard(iot_core),
            _subscriber: Guard(subscriber),
            _broker: Guard(broker),
            _watch: watch,
        }
    }

    /// `jitr --json connect ARGS` against the stand-in, within `timeout` seconds.
    pub fn connect(&self, args: &[&str], timeout: &str) -> Run {
        crate::run(&mut self.connect_command(args, timeout))
    }

    /// The command `connect` runs, to start many at once.
    pub fn connect_command(&self, args: &[&str], timeout: &str) -> Command {
        let mut cmd = Command::new(crate::bin("jitr"));
        cmd.args(["--json", "connect"])
            .args(args)
            .args(["--endpoint", &self.endpoint, "--timeout", timeout])
            .arg("--ca-file")
            .arg(&self.server_ca)
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        cmd
    }

    /// What the stand-in logged: one JSON object per connection or delivery.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("iot-core.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The stand-in's entries about one certificate, as (event, outcome-or-ok).
    pub fn history(&self, certificate_id: &str) -> Vec<(String, String)> {
        self.log()
            .into_iter()
            .filter(|e| e["certificate_id"] == certificate_id)
            .map(|e| {
                let what = match &e["outcome"] {
                    Value::String(s) => s.clone(),
                    _ => e["ok"].to_string(),
                };
                (e["event"].as_str().unwrap().to_string(), what)
            })
            .collect()
    }

    /// Lines the subscriber on `things/#` received ("topic message").
    pub fn received(&self) -> String {
        std::fs::read_to_string(self.dir.join("received.txt")).unwrap()
    }
}

/// Waits until the broker has logged the subscriber's connection (its
/// SUBSCRIBE follows in the same round trip).
fn wait_for_subscriber(log: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("New client connected")
        {
            std::thread::sleep(std::time::Duration::from_millis(200));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("mosquitto_sub did not connect within 10 s");
}
