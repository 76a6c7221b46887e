#!/usr/bin/env python3
"""Cold start, peak RSS and provisioning latency of the JITR function.

One local HTTP server plays both the Lambda Runtime API (the function asks it
for the next event) and an AWS IoT endpoint that answers every call after an
injected delay (default 50 ms), so the critical path shows. The function runs
as Lambda runs it: the release binary with AWS_LAMBDA_RUNTIME_API set.
Compared with what the AWS samples do before their handler can run: a Python
process that imports boto3 and creates an IoT client.

Usage: scripts/lambda_bench.py [--binary <target dir>/release/jitr-lambda] [--runs 5] [--delay-ms 50]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CERT_ID = "0123456789abcdef" * 4


def device_pem():
    """A throwaway device certificate made with openssl (CN robot-1)."""
    out = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "/dev/null", "-subj", "/CN=robot-1", "-days", "2", "-addext", "basicConstraints=critical,CA:FALSE"],
        check=True, capture_output=True, text=True)
    return out.stdout


class State:
    def __init__(self, delay):
        self.delay = delay
        self.pem = device_pem()
        self.reset()

    def reset(self):
        self.ready = threading.Event()
        self.done = threading.Event()
        self.t_ready = self.t_delivered = self.t_done = None
        self.calls = []
        self.served = False


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 65536  # one write per response: no Nagle / delayed-ACK stalls

        def log_message(self, *args):
            pass

        def reply(self, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self):
            if self.path.startswith("/2018-06-01/runtime/invocation/next"):
                now = time.perf_counter()
                if state.t_ready is None:
                    state.t_ready = now
                    state.ready.set()
                if state.served:  # one invocation per process; hold the rest
                    time.sleep(30)
                state.served = True
                state.t_delivered = time.perf_counter()
                event = {"certificateId": CERT_ID, "certificateStatus": "PENDING_ACTIVATION", "timestamp": 1}
                self.reply(event, [("Lambda-Runtime-Aws-Request-Id", "req-1"),
                                   ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000)),
                                   ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:jitr"),
                                   ("Lambda-Runtime-Trace-Id", "Root=1-0-0")])
                return
            if "/principals" in self.path:  # a new thing: no principals yet
                self.iot("ListThingPrincipals", {"principals": []})
                return
            self.iot("DescribeCertificate", {"certificateDescription": {
                "certificateArn": f"arn:aws:iot:eu-west-1:123456789012:cert/{CERT_ID}", "certificateId": CERT_ID,
                "status": "PENDING_ACTIVATION", "certificatePem": state.pem}})

        def do_POST(self):
            self.body()
            if self.path.startswith("/2018-06-01/runtime/"):
                state.t_done = time.perf_counter()
                self.reply({})
                state.done.set()
                return
            self.iot("CreateThing", {"thingName": "robot-1", "thingArn": "arn", "thingId": "id"})

        def do_PUT(self):
            self.body()
            name = {"target-policies": "AttachPolicy", "things": "AttachThingPrincipal"}.get(self.path.split("/")[1], "UpdateCertificate")
            self.iot(name, {})

        def iot(self, name, answer):
            start = time.perf_counter()
            time.sleep(state.delay)
            state.calls.append((name, start, time.perf_counter()))
            self.reply(answer)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed function resets its connection: expected


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run_function(binary, port, state):
    state.reset()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
               AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="eu-west-1",
               AWS_LAMBDA_FUNCTION_NAME="jitr", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", AWS_LAMBDA_FUNCTION_VERSION="1",
               AWS_LAMBDA_LOG_FORMAT="json", JITR_POLICY_NAME="jitr-device")
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not state.ready.wait(10) or not state.done.wait(10):
            raise SystemExit("the function did not reach the runtime API")
        rss = peak_rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    stages = sequential_stages(state.calls)
    return (state.t_ready - t0) * 1000, rss, (state.t_done - state.t_delivered) * 1000, stages, [c[0] for c in state.calls]


def sequential_stages(calls):
    """Calls that overlap in time form one stage (one round trip)."""
    stages, end = 0, None
    for _, start, stop in sorted(calls, key=lambda c: c[1]):
        if end is None or start >= end:
            stages += 1
            end = stop
        else:
            end = max(end, stop)
    return stages


def run_python():
    code = "import boto3\nc = boto3.client('iot', region_name='eu-west-1')\nprint('ready', flush=True)\nimport time; time.sleep(30)\n"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        ready = (time.perf_counter() - t0) * 1000
        rss = peak_rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return ready, rss


def target_dir():
    """Where cargo builds this workspace (honours CARGO_TARGET_DIR)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                          cwd=root, check=True, capture_output=True, text=True).stdout
    return json.loads(meta)["target_directory"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=None, help="default: <cargo target dir>/release/jitr-lambda")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--delay-ms", type=float, default=50)
    a = ap.parse_args()
    if a.binary is None:
        a.binary = os.path.join(target_dir(), "release", "jitr-lambda")
    state = State(a.delay_ms / 1000)
    server = Server(("127.0.0.1", 0), make_handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    rust = [run_function(a.binary, port, state) for _ in range(a.runs)]
    py = [run_python() for _ in range(a.runs)]
    med = lambda xs: statistics.median(xs)
    print(f"| JITR function ({a.runs} runs, median) | jitr-lambda (Rust) | Python + boto3 client |")
    print("|---|---:|---:|")
    print(f"| cold start: process start to ready for the first event | {med([r[0] for r in rust]):.1f} ms | {med([p[0] for p in py]):.1f} ms |")
    print(f"| peak RSS | {med([r[1] for r in rust]) / 1024:.1f} MiB | {med([p[1] for p in py]) / 1024:.1f} MiB |")
    print(f"| provisioning latency, {a.delay_ms:.0f} ms per IoT call | {med([r[2] for r in rust]):.0f} ms | - |")
    print(f"| sequential round trips / IoT calls | {rust[0][3]} / {len(rust[0][4])} ({', '.join(rust[0][4])}) | - |")


if __name__ == "__main__":
    main()
