#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an AWS emulator (test support).

  throttle_proxy.py --port P --upstream http://127.0.0.1:U [--scale S]
                    [--error-rate F] [--drop-rate F] [--seed N]

Enforces AWS IoT's per-operation request rates as AWS does: one token bucket
per operation (refilled at the quota, holding one second's worth), and a
request finding its bucket empty is answered as AWS IoT answers it: HTTP 429,
`x-amzn-ErrorType: ThrottlingException`, body {"message": "Rate exceeded"}.
The quotas are AWS's defaults times --scale (so runs stay short). The
operation is read from the REST path (AWS IoT is a REST-JSON API) or from
X-Amz-Target; other requests (SQS, Lambda, ...) pass through unlimited.

--error-rate answers that fraction of IoT calls with a 500
InternalFailureException, half before forwarding and half after the upstream
did the work (as a real 5xx can); --drop-rate closes that fraction of
connections without an answer. Counts per operation (and the Unix time of
the first and last call answered by the upstream): GET /__proxy/stats.
PUT /__proxy/faults?error_rate=F&drop_rate=F changes the faults while it runs
(a window of 100% 5xx, say).
Listens on 127.0.0.1 only.
"""
import argparse
import http.client
import json
import random
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# AWS IoT's default quotas, requests per second per account and region.
QUOTAS = {
    "DescribeCertificate": 10,
    "UpdateCertificate": 10,
    "CreateThing": 15,
    "AttachPolicy": 15,
    "AttachThingPrincipal": 15,
    "AddThingToThingGroup": 60,
    "ListThingPrincipals": 10,
    "ListCertificatesByCA": 10,
}

# (method, path pattern) -> operation, for the IoT REST API.
ROUTES = [
    ("GET", r"^/certificates/[0-9a-f]{64}$", "DescribeCertificate"),
    ("PUT", r"^/certificates/[0-9a-f]{64}$", "UpdateCertificate"),
    ("POST", r"^/things/[^/]+$", "CreateThing"),
    ("PUT", r"^/target-policies/[^/]+$", "AttachPolicy"),
    ("PUT", r"^/things/[^/]+/principals$", "AttachThingPrincipal"),
    ("GET", r"^/things/[^/]+/principals(-v2)?$", "ListThingPrincipals"),
    ("PUT", r"^/thing-groups/addThingToThingGroup$", "AddThingToThingGroup"),
    ("GET", r"^/certificates-by-ca/[0-9a-f]{64}$", "ListCertificatesByCA"),
]


def operation(method, path, headers):
    target = headers.get("X-Amz-Target")
    if target:
        op = target.rsplit(".", 1)[-1]
        return op if op in QUOTAS else None
    path = urllib.parse.urlsplit(path).path
    for m, pattern, op in ROUTES:
        if m == method and re.match(pattern, path):
            return op
    return None


class Bucket:
    """A token bucket: `rate` tokens a second, at most `rate` (>= 1) held."""

    def __init__(self, rate):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class State:
    def __init__(self, args):
        self.upstream = urllib.parse.urlsplit(args.upstream)
        self.buckets = {op: Bucket(q * args.scale) for op, q in QUOTAS.items()}
        self.error_rate = args.error_rate
        self.drop_rate = args.drop_rate
        self.random = random.Random(args.seed)
        self.lock = threading.Lock()
        self.stats = {}

    def count(self, op, what):
        with self.lock:
            s = self.stats.setdefault(op, {"calls": 0, "passed": 0, "throttled": 0, "errors": 0, "dropped": 0})
            s[what] += 1
            if what == "passed":
                now = time.time()
                s.setdefault("first_passed_at", now)
                s["last_passed_at"] = now

    def roll(self):
        with self.lock:
            return self.random.random()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, *args):
        pass

    def answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message):
        body = json.dumps({"message": message}).encode()
        self.answer(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/coral/com.amazonaws.iot/"), ("x-amzn-RequestId", "proxy")], body)

    def forward(self, body):
        u = self.state.upstream
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.getheaders(), data

    def handle_any(self):
        st = self.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.path == "/__proxy/stats":
            with st.lock:
                stats = json.dumps(st.stats).encode()
            self.answer(200, [("Content-Type", "application/json")], stats)
            return
        if self.path.startswith("/__proxy/faults"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            with st.lock:
                st.error_rate = float(query.get("error_rate", [st.error_rate])[0])
                st.drop_rate = float(query.get("drop_rate", [st.drop_rate])[0])
            self.answer(200, [("Content-Type", "application/json")], b"{}")
            return
        op = operation(self.command, self.path, self.headers)
        if op is None:
            self.answer(*self.forward(body))
            return
        st.count(op, "calls")
        if not st.buckets[op].take():
            st.count(op, "throttled")
            self.error(429, "ThrottlingException", "Rate exceeded")
            return
        roll = st.roll()
        with st.lock:
            drop_rate, error_rate = st.drop_rate, st.error_rate
        if roll < drop_rate:
            st.count(op, "dropped")
            self.close_connection = True
            self.connection.shutdown(2)
            return
        roll -= drop_rate
        if roll < error_rate / 2:
            st.count(op, "errors")
            self.error(500, "InternalFailureException", "Internal failure (injected before the upstream)")
            return
        status, headers, data = self.forward(body)
        if roll < error_rate:
            st.count(op, "errors")
            self.error(500, "InternalFailureException", "Internal failure (injected after the upstream)")
            return
        st.count(op, "passed")
        self.answer(status, headers, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--scale", type=float, default=1.0, help="quotas = AWS's defaults x SCALE")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"throttle proxy on 127.0.0.1:{args.port} -> {args.upstream}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
