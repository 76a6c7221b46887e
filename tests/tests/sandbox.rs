//! `make sandbox` as a new user runs it: in the background until it prints
//! its `export` lines, then the walkthrough in a shell that has only those
//! lines (no AWS profile, no jitr on the PATH before them), then Ctrl-C:
//! everything it started is gone and its ports are closed. Each test brings
//! a sandbox up (minutes): the slow tier (`make test-slow`).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jitr_tests::lambda::workspace;
use jitr_tests::{run, Run};
use serde_json::Value;

/// `make sandbox` in its own process group (a terminal's foreground job),
/// its state under `dir`. SIGINT is reset to its default first, as a
/// terminal's shell does for a foreground job: a test run started in the
/// background (CI, `nohup`) inherits SIGINT ignored, and a shell cannot trap
/// a signal ignored at its start, so Ctrl-C would never reach the script.
fn make_sandbox(dir: &Path) -> Command {
    let mut cmd = Command::new("env");
    cmd.args(["--default-signal=INT", "make", "sandbox"])
        .current_dir(workspace())
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    sandbox_env(&mut cmd, dir);
    cmd
}

fn sandbox_env(cmd: &mut Command, dir: &Path) {
    cmd.env("SANDBOX_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.with_extension("err")).unwrap())
        .process_group(0);
}

/// Starts `cmd`; returns it with the lines it printed on stdout up to the
/// last export line.
fn start_sandbox(mut cmd: Command, dir: &Path) -> (Child, Vec<String>) {
    let mut child = cmd.spawn().expect("the sandbox starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // `make sandbox` builds first (`deps build`): nothing to do after
    // `make build`, minutes on a fresh clone.
    let deadline = Instant::now() + Duration::from_secs(1200);
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.starts_with("export PATH=")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                panic!(
                    "make sandbox printed no exports: {lines:?}\n{}",
                    std::fs::read_to_string(dir.with_extension("err")).unwrap_or_default()
                );
            }
        }
    }
    (child, lines)
}

/// A command line run by bash in `cwd` after `exports`, with nothing else
/// from this process's environment but a bare system PATH and the CA
/// passphrase (what a user types at jitr's prompt; never on a command line).
fn shell(cwd: &Path, exports: &str, command: &str) -> Run {
    run(Command::new("bash")
        .arg("-c")
        .arg(format!("{exports}\n{command}"))
        .current_dir(cwd)
        .env_clear()
        .env("HOME", cwd)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("JITR_CA_PASSWORD", "sandbox walkthrough passphrase"))
}

/// The value an export line gives NAME.
fn exported(lines: &[String], name: &str) -> String {
    let prefix = format!("export {name}=");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no export of {name}: {lines:?}"))
        .to_string()
}

/// A process: its id and its start time (so a reused id is not mistaken for it).
type Process = (u32, u64);

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field, starttime the 22nd.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every living process descended from `root` (root included).
fn descendants(root: u32) -> Vec<Process> {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut out = Vec::new();
    for &pid in &pids {
        let mut p = pid;
        while p > 1 {
            if p == root {
                if let Some(t) = start_time(pid) {
                    out.push((pid, t));
                }
                break;
            }
            match parent(p) {
                Some(pp) => p = pp,
                None => break,
            }
        }
    }
    out
}

/// Processes whose environment or command line names `dir` (the sandbox's
/// state directory is the emulator's TMPDIR, inherited by what it starts).
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap().as_bytes().to_vec();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        for file in ["environ", "cmdline"] {
            let data = std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
            if data.windows(needle.len()).any(|w| w == needle.as_slice()) {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                found.push(format!(
                    "{pid}: {}",
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                ));
                break;
            }
        }
    }
    found
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The book's walkthrough (docs/src/guide/try-without-aws.md, the README's
/// user path) as written against `make sandbox`, in a shell holding only its
/// export lines: every line succeeds, and the device it connects is ACTIVE
/// with every doctor check passing; then SIGINT to its process group
/// (Ctrl-C) stops make, the script, the emulator and the functions it ran,
/// and closes the API and MQTT ports.
#[test]
#[ignore = "slow"]
fn make_sandbox_serves_the_walkthrough_and_ctrl_c_stops_everything() {
    let walkthrough = jitr_tests::walkthrough::walkthrough();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("sandbox");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (mut child, lines) = start_sandbox(make_sandbox(&state), &state);
    let exports: String = lines
        .iter()
        .filter(|l| l.starts_with("export "))
        .map(|l| format!("{l}\n"))
        .collect();
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "JITR_ENDPOINT",
        "JITR_BROKER_CA_FILE",
    ] {
        exported(&lines, name);
    }
    // The same lines, for another shell to source.
    assert_eq!(
        std::fs::read_to_string(state.join("env.sh")).unwrap(),
        exports
    );
    let api = port_of(&exported(&lines, "AWS_ENDPOINT_URL"));
    let mqtt = port_of(&exported(&lines, "JITR_ENDPOINT"));
    assert!(listening(api) && listening(mqtt));

    let step = |command: &str| {
        let out = shell(&work, &exports, command);
        assert!(
            out.ok(),
            "`{command}` failed ({:?})\nstdout:\n{}\nstderr:\n{}\nsandbox:\n{}",
            out.code,
            out.stdout,
            out.stderr,
            std::fs::read_to_string(state.join("emulator.log")).unwrap_or_default()
        );
        out
    };
    let mut device = None;
    for line in &walkthrough {
        // Sourcing the sandbox's env.sh: the export lines the shell already has.
        if line.starts_with(". ") || line.starts_with("source ") {
            assert!(line.ends_with("env.sh"), "{line}");
            continue;
        }
        step(line);
        if let Some(rest) = line.strip_prefix("jitr connect ") {
            device = rest.split_whitespace().next().map(str::to_string);
        }
    }
    let device = device.unwrap_or_else(|| panic!("no `jitr connect DIR` in {walkthrough:?}"));
    let doctor = step(&format!("jitr --json doctor {device}")).json();
    let checks = doctor["checks"].as_array().unwrap();
    for c in checks {
        assert_ne!(c["status"], "FAIL", "{c}\n{doctor:#}");
    }
    let certificate: &Value = checks
        .iter()
        .find(|c| c["name"] == "device certificate")
        .unwrap_or_else(|| panic!("{doctor:#}"));
    assert_eq!(certificate["status"], "PASS", "{certificate}");
    assert!(
        certificate["detail"]
            .as_str()
            .unwrap()
            .starts_with("ACTIVE"),
        "{certificate}"
    );

    // Everything it started, the functions the emulator runs included.
    let started = descendants(child.id());
    assert!(
        started.len() >= 4,
        "make, the script, the emulator and the function at least: {started:?}"
    );
    Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert_everything_stopped(&mut child, &started, &state, &[api, mqtt]);
}

/// `child` ends within 30 s, and with it every process in `started`; no
/// process names the sandbox directory `state`; nothing listens on `ports`.
fn assert_everything_stopped(child: &mut Child, started: &[Process], state: &Path, ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the sandbox still runs 30 s after the signal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<&Process> = started
        .iter()
        .filter(|(pid, t)| start_time(*pid) == Some(*t))
        .collect();
    assert!(left.is_empty(), "still running after the signal: {left:?}");
    assert_eq!(processes_naming(state), Vec::<String>::new());
    for port in ports {
        assert!(!listening(*port), "port {port} is still open");
    }
    let err = std::fs::read_to_string(state.with_extension("err")).unwrap();
    assert!(err.contains("sandbox: stopping"), "{err}");
}

/// SIGTERM to the script alone (as a service manager stops it, not to its
/// group) stops the emulator and the functions it ran as well.
#[test]
#[ignore = "slow"]
fn sigterm_to_the_sandbox_script_stops_everything_it_started() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("sandbox");
    let mut cmd = Command::new(workspace().join("scripts/sandbox.sh"));
    sandbox_env(&mut cmd, &state);
    let (mut child, lines) = start_sandbox(cmd, &state);
    let api = port_of(&exported(&lines, "AWS_ENDPOINT_URL"));
    let mqtt = port_of(&exported(&lines, "JITR_ENDPOINT"));
    assert!(listening(api) && listening(mqtt));
    let started = descendants(child.id());
    assert!(
        started.len() >= 2,
        "the script and the emulator: {started:?}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_everything_stopped(&mut child, &started, &state, &[api, mqtt]);
}
