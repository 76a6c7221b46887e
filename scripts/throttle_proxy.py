#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an AWS emulator (test support).

  throttle_proxy.py --port P --upstream http://127.0.0.1:U [--scale S]
                    [--error-rate F] [--drop-rate F] [--seed N]
                    [--limit-exceeded OP]... [--detach-propagation SECONDS]
                    [--answer OP=STATUS:CODE:MESSAGE]...

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
connections without an answer.

AWS IoT's other answers the emulators do not give:
--limit-exceeded OP answers every OP call as AWS IoT answers a resource quota
reached (e.g. AttachPolicy on a certificate that has 10 policies): HTTP 410,
`x-amzn-ErrorType: LimitExceededException`, body {"message": ...}.
--detach-propagation S: DetachThingPrincipal "is asynchronous. It might take
several seconds for the detachment to propagate", so for S seconds after one
reaches the upstream, DeleteThing of that thing is refused as AWS IoT refuses
it: HTTP 400, InvalidRequestException, "Cannot delete. Thing NAME is still
attached to one or more principals" (counted as `refused`), and
ListThingPrincipals of that thing still lists the detached principal.

--answer OP=STATUS:CODE:MESSAGE answers every OP call (any operation the
proxy can name: IoT REST routes, or X-Amz-Target's, e.g. SQS's GetQueueUrl)
with that error, without forwarding, as AWS shapes it: REST-JSON (AWS IoT)
with `x-amzn-ErrorType: CODE` and {"message": ...}; JSON protocol (SQS)
with {"__type": CODE, "message": ...}, and CODE of the form
"QUERY_CODE;TYPE|JSON_CODE" (e.g. "AWS.SimpleQueueService.NonExistentQueue;
Sender|com.amazonaws.sqs#QueueDoesNotExist") adds the query-compatible
header `x-amzn-query-error: QUERY_CODE;TYPE`. E.g. AWS IoT's GetTopicRule of a
rule that does not exist: GetTopicRule=401:UnauthorizedException:Access to
topic rule 'NAME' was denied (counted as `refused`). GetTopicRule and
ListTopicRules are counted when forwarded too.

Counts per operation (calls, passed, throttled, errors, dropped, refused, and the Unix time of
the first and last call answered by the upstream): GET /__proxy/stats.
Per second (Unix time, whole seconds) the calls answered and throttled, per
operation, for the burst benchmark's chart: GET /__proxy/timeline.
PUT /__proxy/faults?error_rate=F&drop_rate=F&limit_exceeded=OP,OP&detach_propagation=S&answers=JSON
(JSON: {"OP": "STATUS:CODE:MESSAGE", ...}, URL-encoded) changes the faults while it runs (a window of 100% 5xx, say; each parameter
given replaces its setting).
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

# AWS IoT's default quotas, requests per second per account and region (AWS
# IoT Core endpoints and quotas, "AWS IoT Core API throttling limits";
# UpdateCertificate's is not published: 10 assumed).
QUOTAS = {
    "DescribeCertificate": 10,
    "UpdateCertificate": 10,
    "CreateThing": 100,
    "AttachPolicy": 15,
    "AttachThingPrincipal": 100,
    "AddThingToThingGroup": 100,
    "ListThingPrincipals": 10,
    "ListCertificatesByCA": 10,
}

# What AWS IoT says when an operation's resource quota is reached.
LIMITS = {
    "AttachPolicy": "The number of policies attached to the target exceeds the limit of 10",
}

# Operations counted though not rate-limited (doctor's reads of the rule).
COUNTED = ("GetTopicRule", "ListTopicRules")

# The calls whose AWS semantics the proxy adds (not throttled by it).
DETACH = ("DELETE", r"^/things/([^/]+)/principals$")
DELETE_THING = ("DELETE", r"^/things/([^/]+)$")
LIST_PRINCIPALS = ("GET", r"^/things/([^/]+)/principals$")

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
    ("GET", r"^/rules$", "ListTopicRules"),
    ("GET", r"^/rules/[^/]+$", "GetTopicRule"),
]


def named(method, path, headers):
    """The operation a request calls, if the proxy can name it."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    path = urllib.parse.urlsplit(path).path
    for m, pattern, op in ROUTES:
        if m == method and re.match(pattern, path):
            return op
    return None


def operation(method, path, headers):
    """The rate-limited operation a request calls, else None."""
    op = named(method, path, headers)
    return op if op in QUOTAS else None


def parse_answer(spec):
    """"STATUS:CODE:MESSAGE" as (status, code, message)."""
    status, code, message = spec.split(":", 2)
    return int(status), code, message


def thing_of(route, method, path):
    """The thing name of a call matching `route`, else None."""
    m = method == route[0] and re.match(route[1], urllib.parse.urlsplit(path).path)
    return urllib.parse.unquote(m.group(1)) if m else None


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
        self.limit_exceeded = set(args.limit_exceeded)
        self.detach_propagation = args.detach_propagation
        self.answers = {op: parse_answer(spec) for op, spec in (a.split("=", 1) for a in args.answer)}
        # Thing name -> (monotonic time its last detachment has propagated,
        # the principals detached meanwhile).
        self.detaching = {}
        self.random = random.Random(args.seed)
        self.lock = threading.Lock()
        self.stats = {}
        # Unix second -> operation -> {"passed": n, "throttled": n}.
        self.timeline = {}

    def count(self, op, what):
        with self.lock:
            s = self.stats.setdefault(op, {"calls": 0, "passed": 0, "throttled": 0, "errors": 0, "dropped": 0, "refused": 0})
            s[what] += 1
            if what in ("passed", "throttled"):
                second = self.timeline.setdefault(int(time.time()), {})
                per_op = second.setdefault(op, {"passed": 0, "throttled": 0})
                per_op[what] += 1
            if what == "passed":
                now = time.time()
                s.setdefault("first_passed_at", now)
                s["last_passed_at"] = now

    def propagating(self, thing):
        """The principals detached from `thing` whose detachment has not
        propagated yet (empty: none)."""
        with self.lock:
            until, detached = self.detaching.get(thing, (0, set()))
            return sorted(detached) if until > time.monotonic() else []

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

    def answer_as_aws(self, status, code, message):
        """An error as AWS shapes it for the request's protocol."""
        if not self.headers.get("X-Amz-Target"):
            self.error(status, code, message)
            return
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", "proxy")]
        query, _, code = code.rpartition("|")
        if query:
            headers.append(("x-amzn-query-error", query))
        self.answer(status, headers, json.dumps({"__type": code, "message": message}).encode())

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
        if self.path == "/__proxy/timeline":
            with st.lock:
                timeline = json.dumps(st.timeline).encode()
            self.answer(200, [("Content-Type", "application/json")], timeline)
            return
        if self.path.startswith("/__proxy/faults"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            with st.lock:
                st.error_rate = float(query.get("error_rate", [st.error_rate])[0])
                st.drop_rate = float(query.get("drop_rate", [st.drop_rate])[0])
                if "limit_exceeded" in query:
                    st.limit_exceeded = {o for o in query["limit_exceeded"][0].split(",") if o}
                if "detach_propagation" in query:
                    st.detach_propagation = float(query["detach_propagation"][0])
                if "answers" in query:
                    st.answers = {op: parse_answer(spec) for op, spec in json.loads(query["answers"][0]).items()}
            self.answer(200, [("Content-Type", "application/json")], b"{}")
            return
        if self.detachment(body):
            return
        name = named(self.command, self.path, self.headers)
        with st.lock:
            answer = st.answers.get(name)
        if answer is not None:
            st.count(name, "calls")
            st.count(name, "refused")
            self.answer_as_aws(*answer)
            return
        op = operation(self.command, self.path, self.headers)
        if op is None:
            if name in COUNTED:
                st.count(name, "calls")
                st.count(name, "passed")
            self.answer(*self.forward(body))
            return
        st.count(op, "calls")
        if op in st.limit_exceeded:
            st.count(op, "refused")
            self.error(410, "LimitExceededException", LIMITS.get(op, "A limit has been exceeded."))
            return
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
        thing = thing_of(LIST_PRINCIPALS, self.command, self.path)
        if thing is not None and status == 200 and st.propagating(thing):
            listed = json.loads(data)
            listed["principals"] = sorted(set(listed.get("principals", [])) | set(st.propagating(thing)))
            data = json.dumps(listed).encode()
        self.answer(status, headers, data)

    def detachment(self, body):
        """DetachThingPrincipal and DeleteThing with AWS's propagation delay
        between them; whether this call was one of them (and answered)."""
        st = self.state
        thing = thing_of(DETACH, self.command, self.path)
        if thing is not None:
            st.count("DetachThingPrincipal", "calls")
            status, headers, data = self.forward(body)
            if status == 200:
                principal = self.headers.get("x-amzn-principal", "")
                with st.lock:
                    _, detached = st.detaching.get(thing, (0, set()))
                    st.detaching[thing] = (time.monotonic() + st.detach_propagation, detached | {principal})
                st.count("DetachThingPrincipal", "passed")
            self.answer(status, headers, data)
            return True
        thing = thing_of(DELETE_THING, self.command, self.path)
        if thing is None:
            return False
        st.count("DeleteThing", "calls")
        if st.propagating(thing):
            st.count("DeleteThing", "refused")
            self.error(400, "InvalidRequestException", f"Cannot delete. Thing {thing} is still attached to one or more principals")
            return True
        st.count("DeleteThing", "passed")
        self.answer(*self.forward(body))
        return True

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--scale", type=float, default=1.0, help="quotas = AWS's defaults x SCALE")
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--limit-exceeded", action="append", default=[], metavar="OP",
                   help="answer every OP call 410 LimitExceededException")
    p.add_argument("--detach-propagation", type=float, default=0.0, metavar="SECONDS",
                   help="refuse DeleteThing this long after a DetachThingPrincipal of the thing")
    p.add_argument("--answer", action="append", default=[], metavar="OP=STATUS:CODE:MESSAGE",
                   help="answer every OP call with this error, as AWS shapes it")
    args = p.parse_args()
    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"throttle proxy on 127.0.0.1:{args.port} -> {args.upstream}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
