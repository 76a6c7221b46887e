#!/usr/bin/env python3
"""A stand-in for the part of AWS IoT Core that does Just-in-Time Registration,
for tests and `make demo` (no AWS account).

It listens for MQTT over TLS, asks for a client certificate and accepts only
chains that end at a CA registered in the moto server (ACTIVE,
auto-registration ENABLED; changes to the CAs are seen within a second). Then,
as AWS IoT Core does:

- unknown device certificate: registers it PENDING_ACTIVATION in moto, delivers
  the `$aws/events/certificates/registered/<caId>` event to the function, and
  drops the connection;
- PENDING_ACTIVATION: delivers the event again and drops the connection;
- ACTIVE: passes the connection through to a real MQTT broker (plain TCP on
  loopback);
- anything else (REVOKED, INACTIVE): drops the connection.

Events go to the function through cargo-lambda's emulator (the Lambda Invoke
API of `cargo lambda watch`) from a queue drained by a few workers at a capped
rate (--rate, --workers): the throttling a deployment's maximum concurrency
imposes. An event already waiting for the same certificate is not queued
twice. A failed delivery is retried twice, like an asynchronous Lambda invoke,
then dropped (logged; `jitr reconcile` recovers such certificates).

Every connection and delivery is one JSON line on stdout.

Usage:
  iot_core.py --port P --state-dir DIR --moto URL --broker HOST:PORT --function URL
              [--rate N] [--workers N]
The CA clients must trust is written to DIR/server-ca.crt before the port opens.
"""
import argparse
import datetime
import hashlib
import ipaddress
import json
import os
import queue
import selectors
import socket
import ssl
import sys
import threading
import time
import urllib.request

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ACCOUNT = "123456789012"
_print_lock = threading.Lock()


def log(**fields):
    fields["t"] = round(time.time(), 3)
    with _print_lock:
        print(json.dumps(fields), flush=True)


def server_certificate(state_dir):
    """A throwaway CA and a server certificate for 127.0.0.1/localhost."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "jitr stand-in IoT Core CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    os.makedirs(state_dir, exist_ok=True)
    paths = {name: os.path.join(state_dir, name) for name in ("server.crt", "server.key", "server-ca.crt")}
    with open(paths["server.crt"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(paths["server.key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    tmp = paths["server-ca.crt"] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    os.rename(tmp, paths["server-ca.crt"])
    return paths


class Registry:
    """The CAs devices may chain to, read from moto (cached for a second)."""

    def __init__(self, iot, paths):
        self.iot, self.paths = iot, paths
        self.lock = threading.Lock()
        self.read_at, self.cas, self.contexts = 0.0, {}, {}

    def jitr_cas(self):
        """{caId: (pem, x509)} of the CAs ACTIVE with auto-registration ENABLED."""
        with self.lock:
            if time.monotonic() - self.read_at > 1.0:
                cas = {}
                for ca in self.iot.list_ca_certificates().get("certificates", []):
                    d = self.iot.describe_ca_certificate(certificateId=ca["certificateId"])["certificateDescription"]
                    if d["status"] == "ACTIVE" and d.get("autoRegistrationStatus") == "ENABLE":
                        pem = d["certificatePem"]
                        cas[d["certificateId"]] = (pem, x509.load_pem_x509_certificate(pem.encode()))
                self.cas, self.read_at = cas, time.monotonic()
            return self.cas

    def context(self):
        """A server TLS context that requires a client chain to one of the CAs."""
        cas = self.jitr_cas()
        key = frozenset(cas)
        with self.lock:
            if key not in self.contexts:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(self.paths["server.crt"], self.paths["server.key"])
                ctx.verify_mode = ssl.CERT_REQUIRED
                # A registered intermediate CA is a trust anchor of its own, as in AWS IoT.
                ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
                if cas:
                    ctx.load_verify_locations(cadata="".join(pem for pem, _ in cas.values()))
                self.contexts[key] = ctx
            return self.contexts[key], cas


class Delivery:
    """Events to the function: a queue, a few workers, a rate cap.

    batch == 1: one event per invocation, retried twice on failure (the rule's
    Lambda action, an asynchronous invoke). batch > 1: up to `batch` events per
    invocation in the SQS shape (the deployed rule -> queue -> function path);
    the records the function reports in batchItemFailures, or all of them if
    the invocation fails, are received again, up to 5 times, then
    dead-lettered."""

    MAX_RECEIVES = 5

    def __init__(self, url, rate, workers, batch):
        self.url, self.interval, self.batch = url, 1.0 / rate, batch
        self.queue, self.waiting = queue.Queue(), set()
        self.lock, self.next_slot = threading.Lock(), time.monotonic()
        self.serial = 0
        for _ in range(workers):
            threading.Thread(target=self.work, daemon=True).start()

    def submit(self, certificate_id, ca_id):
        with self.lock:
            if certificate_id in self.waiting:
                return
            self.waiting.add(certificate_id)
        now = int(time.time() * 1000)
        event = {
            "certificateId": certificate_id, "caCertificateId": ca_id, "timestamp": now,
            "certificateStatus": "PENDING_ACTIVATION", "awsAccountId": ACCOUNT,
            "certificateRegistrationTimestamp": str(now),
        }
        self.queue.put((event, 1))

    def slot(self):
        """Sleeps until this worker may invoke (at most `rate` invocations a second)."""
        with self.lock:
            at = max(self.next_slot, time.monotonic())
            self.next_slot = at + self.interval
        time.sleep(max(0.0, at - time.monotonic()))

    def take(self):
        """The next events: one, or up to `batch` of those waiting."""
        items = [self.queue.get()]
        while len(items) < self.batch:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        with self.lock:
            for event, _ in items:
                self.waiting.discard(event["certificateId"])
        return items

    def work(self):
        while True:
            items = self.take()
            if self.batch == 1:
                self.deliver_one(items[0][0])
            else:
                self.deliver_batch(items)

    def deliver_one(self, event):
        for attempt in range(1, 4):
            ok, _, detail, timing = self.invoke(event)
            self.logged([event], attempt, ok, detail, **timing)
            if ok:
                return
            time.sleep(1.0)
        log(event="dropped", certificate_id=event["certificateId"])

    def deliver_batch(self, items):
        records = {}
        for event, receives in items:
            with self.lock:
                self.serial += 1
                message_id = f"m{self.serial}"
            records[message_id] = (event, receives)
        payload = {"Records": [{
            "messageId": mid, "receiptHandle": mid, "body": json.dumps(event),
            "attributes": {"ApproximateReceiveCount": str(receives)}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:jitr-events",
            "awsRegion": "eu-west-1",
        } for mid, (event, receives) in records.items()]}
        ok, answer, detail, timing = self.invoke(payload)
        failed = set(records) if not ok else {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        self.logged([e for e, _ in records.values()], 1, ok, detail, failed=len(failed), **timing)
        for mid in failed:
            event, receives = records[mid]
            if receives >= self.MAX_RECEIVES:
                log(event="dead-lettered", certificate_id=event["certificateId"])
            else:
                self.queue.put((event, receives + 1))

    def logged(self, events, attempt, ok, detail, **extra):
        for event in events:
            log(event="delivery", certificate_id=event["certificateId"], attempt=attempt, ok=ok,
                detail=detail, batch=len(events), **extra)

    def invoke(self, payload):
        """Invokes the function once the rate allows: (ok, answer, error detail, timing)."""
        self.slot()
        started, clock = time.time(), time.monotonic()
        req = urllib.request.Request(self.url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                body = resp.read().decode(errors="replace")
                failed = resp.headers.get("X-Amz-Function-Error") or '"errorType"' in body
                result = (not failed), (None if failed else json.loads(body or "null") or {}), (body[:300] if failed else None)
        except Exception as e:  # HTTP 4xx/5xx, connection refused: the platform retries
            result = False, None, str(e)[:300]
        timing = {"started": round(started, 3), "ms": round((time.monotonic() - clock) * 1000)}
        return result + (timing,)


def splice(tls, plain):
    """Copies bytes both ways until either side closes."""
    sel = selectors.DefaultSelector()
    sel.register(tls, selectors.EVENT_READ)
    sel.register(plain, selectors.EVENT_READ)
    try:
        while True:
            ready = [key.fileobj for key, _ in sel.select(timeout=300)]
            if not ready:
                return
            if tls.pending() and tls not in ready:
                ready.append(tls)
            for src in ready:
                dst = plain if src is tls else tls
                data = src.recv(65536)
                if not data:
                    return
                dst.sendall(data)
                while src is tls and tls.pending():
                    dst.sendall(tls.recv(65536))
    except (OSError, ssl.SSLError):
        return
    finally:
        sel.close()


def issuer_of(leaf, cas):
    """The id of the registered CA that signed `leaf`."""
    for ca_id, (_, ca) in cas.items():
        if leaf.issuer == ca.subject:
            try:
                leaf.verify_directly_issued_by(ca)
                return ca_id
            except Exception:
                continue
    return None


def handle(conn, peer, registry, iot, delivery, broker):
    conn.settimeout(10)
    try:
        ctx, cas = registry.context()
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        log(event="connect", peer=peer, outcome="refused", detail=f"TLS: {e}")
        conn.close()
        return
    try:
        der = tls.getpeercert(binary_form=True)
        leaf = x509.load_der_x509_certificate(der)
        certificate_id = hashlib.sha256(der).hexdigest()
        ca_id = issuer_of(leaf, cas)
        if ca_id is None:
            log(event="connect", peer=peer, certificate_id=certificate_id, outcome="refused",
                detail="not issued directly by a registered CA")
            return
        try:
            status = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]["status"]
        except iot.exceptions.ResourceNotFoundException:
            try:
                iot.register_certificate(certificatePem=leaf.public_bytes(serialization.Encoding.PEM).decode(),
                                         caCertificatePem=cas[ca_id][0], status="PENDING_ACTIVATION")
                status = "REGISTERED"
            except iot.exceptions.ResourceAlreadyExistsException:
                status = "PENDING_ACTIVATION"  # a concurrent connection registered it
        if status in ("REGISTERED", "PENDING_ACTIVATION"):
            delivery.submit(certificate_id, ca_id)
            log(event="connect", peer=peer, certificate_id=certificate_id, ca=ca_id,
                outcome="registered" if status == "REGISTERED" else "pending")
            return
        if status != "ACTIVE":
            log(event="connect", peer=peer, certificate_id=certificate_id, outcome="refused", detail=status)
            return
        log(event="connect", peer=peer, certificate_id=certificate_id, outcome="passed")
        tls.settimeout(None)
        with socket.create_connection(broker, timeout=10) as plain:
            plain.settimeout(None)
            splice(tls, plain)
    except Exception as e:  # one connection's trouble never stops the listener
        log(event="error", peer=peer, detail=repr(e))
    finally:
        try:
            tls.close()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--moto", required=True, help="moto server URL")
    p.add_argument("--broker", required=True, help="HOST:PORT of the plain MQTT broker")
    p.add_argument("--function", required=True, help="the function's Invoke URL")
    p.add_argument("--rate", type=float, default=10.0, help="invocations per second, at most")
    p.add_argument("--workers", type=int, default=2, help="concurrent invocations, at most")
    p.add_argument("--batch", type=int, default=1,
                   help="1: one event per invocation (rule -> function); N > 1: SQS batches of up to N")
    a = p.parse_args()

    iot = boto3.client("iot", endpoint_url=a.moto, region_name=os.environ.get("AWS_REGION", "eu-west-1"),
                       aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                       aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    host, port = a.broker.rsplit(":", 1)
    broker = (host, int(port))
    paths = server_certificate(a.state_dir)
    registry = Registry(iot, paths)
    delivery = Delivery(a.function, a.rate, a.workers, a.batch)

    listener = socket.create_server(("127.0.0.1", a.port), backlog=512)
    log(event="listening", port=a.port)
    while True:
        conn, peer = listener.accept()
        threading.Thread(target=handle, args=(conn, f"{peer[0]}:{peer[1]}", registry, iot, delivery, broker),
                         daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
