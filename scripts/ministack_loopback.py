#!/usr/bin/env python3
"""Runs ministack 1.5.33 on loopback only, with one IAM authorisation bug
corrected, SQS event source mappings' batches up to their BatchSize, and the
MQTT listener's certificate lookups indexed (it scanned every certificate on
every handshake).

ministack 1.5.33 honours BIND_HOST for its gateway but binds its IoT MQTT/TLS
listener (services/iot.py, `_mtls_start_locked`) on host "0.0.0.0", which
would expose the broker on every interface. Rather than patching one private
function, this wraps the event loop's `create_server` (the call every asyncio
listener goes through) so a wildcard host becomes BIND_HOST; listeners already
on a specific host or given a bound socket are left alone. Run with the ministack venv's python.
"""
import asyncio
import os
import sys

HOST = os.environ.setdefault("BIND_HOST", "127.0.0.1")
_WILDCARDS = (None, "", "0.0.0.0", "::")
_create_server = asyncio.BaseEventLoop.create_server


async def _loopback_create_server(self, protocol_factory, host=None, port=None, **kwargs):
    if host in _WILDCARDS and kwargs.get("sock") is None:
        host = HOST
    return await _create_server(self, protocol_factory, host, port, **kwargs)


asyncio.BaseEventLoop.create_server = _loopback_create_server

import json  # noqa: E402

from ministack.core import iam_actions  # noqa: E402

_iot_resource_arns = iam_actions.iot_resource_arns


def _iot_resource_arns_with_attach_policy(method, path, body, region, account_id):
    """Under AUTH=true ministack 1.5.33 authorises AttachPolicy/DetachPolicy
    (`PUT|POST /target-policies/NAME`) against resource `*`, so a role allowed
    to attach one policy to certificates only is refused. AWS authorises them
    on the resources they name; this checks the policy's ARN and then the
    target's (the certificate), through the hook ministack already uses to
    check a thing-group membership call on both resources it names."""
    if method in ("PUT", "POST") and path.startswith("/target-policies/"):
        name = path[len("/target-policies/"):]
        arns = [f"arn:aws:iot:{region}:{account_id}:policy/{name}"]
        try:
            target = json.loads(body or b"{}").get("target")
        except (ValueError, AttributeError):
            target = None
        if isinstance(target, str) and target.startswith("arn:"):
            arns.append(target)
        return arns
    return _iot_resource_arns(method, path, body, region, account_id)


iam_actions.iot_resource_arns = _iot_resource_arns_with_attach_policy

from ministack.services import sqs as _sqs  # noqa: E402


def _receive_messages_for_esm_up_to_batch_size(queue_url, max_number):
    """ministack 1.5.33 hands an SQS event source mapping at most 10 messages
    a batch whatever its BatchSize; AWS delivers up to BatchSize (up to 10,000
    on a standard queue with a batching window). The same receive as
    ministack's (`sqs._receive_messages_for_esm`), up to BatchSize."""
    with _sqs._queues_lock:
        q = _sqs._get_q(queue_url)
        max_n = min(int(max_number or 1), 10000)
        vis = int(q["attributes"].get("VisibilityTimeout", "30"))
        _sqs._expire_retained(q)
        _sqs._dlq_sweep(q)
        return _sqs._collect_msgs(q, max_n, vis)


_sqs._receive_messages_for_esm = _receive_messages_for_esm_up_to_batch_size

import collections  # noqa: E402
import hashlib  # noqa: E402

from ministack.services import iot as _iot  # noqa: E402


class _IndexedByCertificateId(dict):
    """`_certificates._data` ((account, region, certificate id) -> record),
    which also keeps the keys holding each certificate id."""

    def __init__(self, items=()):
        super().__init__()
        self.by_id = {}
        # Keys set since the MQTT listener last looked (its trust anchors).
        self.added = collections.deque()
        self.update(items)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.by_id.setdefault(key[-1], set()).add(key)
        self.added.append(key)

    def __delitem__(self, key):
        super().__delitem__(key)
        self.by_id.get(key[-1], set()).discard(key)

    def pop(self, key, *default):
        if key in self:
            self.by_id.get(key[-1], set()).discard(key)
        return super().pop(key, *default)

    def popitem(self):
        key, value = super().popitem()
        self.by_id.get(key[-1], set()).discard(key)
        return key, value

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self):
        super().clear()
        self.by_id.clear()
        self.added.clear()


_iot._certificates._data = _IndexedByCertificateId(_iot._certificates._data)
_scan_registrations = _iot._mtls_active_registrations


def _registrations_by_index(cert_id, status="ACTIVE"):
    """ministack 1.5.33 finds the registrations of a certificate presented to
    its MQTT listener by scanning every registered certificate, on every
    CONNECT (twice when it refuses one): with 10,000 devices reconnecting
    while pending the emulator spends its time scanning and stops answering
    (a fleet powering on, tests/tests/burst.rs). The same answer, from an
    index of the certificates by id."""
    data = _iot._certificates._data
    if not isinstance(data, _IndexedByCertificateId):
        return _scan_registrations(cert_id, status)
    found = []
    for key in list(data.by_id.get(cert_id, ())):
        record = data.get(key)
        if isinstance(record, dict) and (status is None or record.get("status") == status):
            found.append((key[0], key[1], record))
    return found


def _refusal_reason_by_index(cert_id):
    """`_mtls_refusal_reason` (why a certificate was refused), from the index."""
    active = _registrations_by_index(cert_id)
    if len(active) > 1:
        scopes = ", ".join(f"{a}/{r}" for a, r, _record in sorted(active, key=lambda m: m[:2]))
        return f"registered ACTIVE in {len(active)} scopes ({scopes}); owner is ambiguous"
    for _account, _region, record in _registrations_by_index(cert_id, None):
        return f"status {record.get('status')!r}"
    return "not registered"


_scan_trust_anchors = _iot._mtls_trust_anchors


def _new_trust_anchors():
    """ministack 1.5.33 gathers the PEM of every registered certificate on
    every TLS handshake (`_mtls_trust_anchors`, called from the ClientHello
    hook) to load the ones its context lacks: with 10,000 devices that scan
    was most of the emulator's time. The same anchors for the hook to load:
    the local CA and the CA certificates (few) as before, and of the device
    certificates only those registered since the last handshake."""
    data = _iot._certificates._data
    if not isinstance(data, _IndexedByCertificateId) or not _iot._mtls_loaded_anchors:
        # A new SSL context (none loaded yet): every anchor, as ministack does.
        if isinstance(data, _IndexedByCertificateId):
            data.added.clear()
        return _scan_trust_anchors()
    local = _iot.get_ca_cert_pem()
    anchors = [(hashlib.sha256(local.encode("utf-8")).hexdigest(), local)]
    records = list(_iot._ca_certificates._data.values())
    while True:
        try:
            records.append(data.get(data.added.popleft()))
        except IndexError:
            break
    for record in records:
        pem = record.get("certificatePem") if isinstance(record, dict) else None
        if isinstance(pem, str) and pem.strip():
            anchor_id = record.get("certificateId") or hashlib.sha256(pem.encode("utf-8")).hexdigest()
            anchors.append((anchor_id, pem))
    return anchors


_iot._mtls_trust_anchors = _new_trust_anchors
_iot._mtls_active_registrations = _registrations_by_index
_iot._mtls_refusal_reason = _refusal_reason_by_index

import ministack.app as _app  # noqa: E402
import model_check_server  # noqa: E402  (scripts/: AWS's API models checked first)

_app.app = model_check_server.asgi(_app.app)

import ministack_patches_groups  # noqa: E402,F401  (thing-group policies, AttachPolicy on its target)
from ministack.app import main  # noqa: E402  (after the patches, on purpose)

sys.exit(main())
