//! A minimal Lambda Runtime API (the protocol a `provided.al2023` function's
//! bootstrap speaks) on a free 127.0.0.1 port: enough to start the built
//! function as Lambda would and read what it answers.

/// What the function answered to one invocation, and when.
pub struct Answer {
    /// The request path: /2018-06-01/runtime/invocation/req-N/response or .../error.
    pub path: String,
    pub body: serde_json::Value,
    pub at: std::time::Instant,
}

/// A minimal Lambda Runtime API on a free 127.0.0.1 port: hands out
/// `events` one per `next` request, each with a deadline `budget` from
/// then (epoch milliseconds, as Lambda sends), and reports each answer
/// with the deadline it had.
pub fn runtime_api(
    events: Vec<serde_json::Value>,
    budget: std::time::Duration,
) -> (u16, std::sync::mpsc::Receiver<(Answer, std::time::Instant)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    let events = std::sync::Arc::new(std::sync::Mutex::new((events, Vec::new())));
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (events, tx) = (events.clone(), tx.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = header.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let reply = if path.ends_with("/invocation/next") {
                        let next = {
                            let mut e = events.lock().unwrap();
                            (!e.0.is_empty()).then(|| e.0.remove(0))
                        };
                        let Some(event) = next else {
                            return; // no more events: the function waits
                        };
                        let deadline = std::time::Instant::now() + budget;
                        let epoch_ms = (std::time::SystemTime::now() + budget)
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_millis();
                        let n = {
                            let mut e = events.lock().unwrap();
                            e.1.push(deadline);
                            e.1.len()
                        };
                        let data = event.to_string();
                        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nLambda-Runtime-Aws-Request-Id: req-{n}\r\nLambda-Runtime-Deadline-Ms: {epoch_ms}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:123456789012:function:jitr\r\nLambda-Runtime-Trace-Id: Root=1-0-0\r\n\r\n{data}", data.len())
                    } else {
                        let n: usize = path
                            .split("/req-")
                            .nth(1)
                            .and_then(|rest| rest.split('/').next())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let deadline = events.lock().unwrap().1.get(n.wrapping_sub(1)).copied();
                        let answer = Answer {
                            path: path.clone(),
                            body: serde_json::from_slice(&body).unwrap_or_default(),
                            at: std::time::Instant::now(),
                        };
                        let _ = tx.send((answer, deadline.unwrap_or_else(std::time::Instant::now)));
                        "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".to_string()
                    };
                    if conn.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

/// The environment Lambda gives a function (no others: the caller clears
/// its own), with its Runtime API on 127.0.0.1:`runtime_port` and AWS calls
/// aimed at `aws_endpoint`.
pub fn function_env(runtime_port: u16, aws_endpoint: String) -> Vec<(&'static str, String)> {
    vec![
        (
            "AWS_LAMBDA_RUNTIME_API",
            format!("127.0.0.1:{runtime_port}"),
        ),
        ("AWS_ENDPOINT_URL", aws_endpoint),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_LAMBDA_FUNCTION_NAME", "jitr".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
        ("JITR_POLICY_NAME", "jitr-device".into()),
    ]
}

/// Starts the built function as Lambda would, with `vars` besides the
/// Runtime API's and the policy, and returns the init error it reports to
/// the Runtime API; asserts that it then exits, non-zero.
pub fn init_error(vars: &[(&str, &str)]) -> serde_json::Value {
    use std::time::{Duration, Instant};
    let (runtime, answers) = runtime_api(vec![], Duration::from_secs(30));
    let aws = format!("http://127.0.0.1:{}", crate::free_port());
    let mut function = crate::Guard(
        std::process::Command::new(crate::bin("jitr-lambda"))
            .env_clear()
            .envs(function_env(runtime, aws))
            .envs(vars.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (answer, _) = answers
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{vars:?}: no init error reported to the Runtime API"));
    assert!(
        answer.path.ends_with("/runtime/init/error"),
        "{}",
        answer.path
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = function.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{vars:?}: the function did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{vars:?}: {status}");
    answer.body
}
