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

/// A proxy in front of the emulator that answers every other KMS Sign call
/// with ThrottlingException (as KMS does over its quota) and forwards the
/// rest; `stats()` says how many Sign calls it saw and refused.
pub struct ThrottlingProxy {
    pub url: String,
    port: u16,
    _child: crate::Guard,
}

const PROXY: &str = r#"
import http.server, json, sys, threading, urllib.request, urllib.error
port, upstream = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
stats = {"sign": 0, "throttled": 0}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, ctype, data):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        with lock:
            self.reply(200, "application/json", json.dumps(stats).encode())
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("X-Amz-Target", "").endswith(".Sign"):
            with lock:
                stats["sign"] += 1
                throttle = stats["sign"] % 2 == 1
                stats["throttled"] += throttle
            if throttle:
                return self.reply(400, "application/x-amz-json-1.1",
                                  b'{"__type":"ThrottlingException","message":"Rate exceeded"}')
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(upstream + self.path, data=body, method="POST", headers=headers)
        try:
            resp = urllib.request.urlopen(req)
            status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type")
        self.reply(status, ctype or "application/x-amz-json-1.1", data)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"#;

impl ThrottlingProxy {
    pub fn start(ms: &Ministack) -> ThrottlingProxy {
        let port = crate::free_port();
        let mut child = Command::new(venv_program("tools", "python3"))
            .args(["-c", PROXY, &port.to_string(), &ms.url])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs");
        crate::wait_for_port(port, &mut child, "throttling proxy");
        ThrottlingProxy {
            url: format!("http://127.0.0.1:{port}"),
            port,
            _child: crate::Guard(child),
        }
    }

    /// `{"sign": calls seen, "throttled": calls refused}`.
    pub fn stats(&self) -> serde_json::Value {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}
