#!/usr/bin/env python3
"""A fleet of devices powering on at once (test and bench support).

  fleet.py --endpoint HOST:PORT --ca-file PEM --timeout SECONDS
           [--min-delay 1] [--max-delay 120] [--attempts-at-once 200] FLEET_DIR

FLEET_DIR holds one directory per device (`jitr device issue --count N --out FLEET_DIR`).

Every device powers on at the same moment and connects as the AWS IoT Device
SDKs do: MQTT 3.1.1 over mutual TLS with its certificate and CA chain
(device-and-ca.crt + device.key), client id = the directory's name (the
thing name), and while the broker refuses it (its certificate is pending)
it reconnects with exponential backoff and full jitter: the n-th retry
waits a random time in [0, min(max-delay, min-delay x 2^(n-1))] (the SDK v2
MQTT 5 client's defaults: 1 s doubling to 120 s, full jitter; the embedded
C SDK's retry utilities use the same formula). Once in, it publishes one
QoS 1 message on things/<id>/hello, waits for the PUBACK and disconnects.

--attempts-at-once bounds connection attempts in progress (a TLS handshake
and CONNECT each), not devices: every device is powered on and waiting.

Prints one JSON object: devices, connected, attempts (all CONNECTs sent),
refused, first_connect_s / last_connect_s (seconds after power-on),
per-device attempts histogram.
"""
import argparse
import asyncio
import json
import os
import random
import ssl
import sys
import time


def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id, keepalive=60):
    body = utf8("MQTT") + bytes([4, 0x02]) + keepalive.to_bytes(2, "big") + utf8(client_id)
    return b"\x10" + remaining_length(len(body)) + body


def publish_packet(topic, payload, packet_id=1):
    body = utf8(topic) + packet_id.to_bytes(2, "big") + payload
    return b"\x32" + remaining_length(len(body)) + body


async def read_packet(reader):
    head = await reader.readexactly(1)
    n, shift = 0, 0
    while True:
        b = (await reader.readexactly(1))[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return head[0], await reader.readexactly(n)


def backoff(retry, min_delay, max_delay, rng):
    """The delay before retry `retry` (1-based): full jitter, capped."""
    return rng.uniform(0, min(max_delay, min_delay * 2 ** (retry - 1)))


class Fleet:
    def __init__(self, args):
        self.args = args
        host, _, port = args.endpoint.rpartition(":")
        self.host, self.port = host, int(port)
        self.gate = asyncio.Semaphore(args.attempts_at_once)
        self.rng = random.Random(args.seed)
        self.start = time.monotonic()
        self.attempts = 0
        self.refused = 0
        self.connected_at = []
        self.per_device = {}

    def tls(self, device):
        ctx = ssl.create_default_context(cafile=self.args.ca_file)
        ctx.check_hostname = False
        ctx.load_cert_chain(os.path.join(device, "device-and-ca.crt"), os.path.join(device, "device.key"))
        return ctx

    async def attempt(self, ctx, client_id):
        """One connection: True once the message is acknowledged."""
        async with self.gate:
            self.attempts += 1
            writer = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=ctx), 10)
                writer.write(connect_packet(client_id))
                await writer.drain()
                kind, body = await asyncio.wait_for(read_packet(reader), 10)
                if kind != 0x20 or len(body) < 2 or body[1] != 0:
                    return False
                writer.write(publish_packet(f"things/{client_id}/hello", b"hello from the fleet"))
                await writer.drain()
                kind, _ = await asyncio.wait_for(read_packet(reader), 10)
                if kind >> 4 != 4:
                    return False
                writer.write(b"\xe0\x00")
                await writer.drain()
                return True
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError, ssl.SSLError):
                return False
            finally:
                if writer is not None:
                    writer.close()

    async def device(self, path):
        client_id = os.path.basename(os.path.normpath(path))
        ctx = self.tls(path)
        deadline = self.start + self.args.timeout
        for n in range(1, 1_000_000):
            if await self.attempt(ctx, client_id):
                self.connected_at.append(time.monotonic() - self.start)
                self.per_device[client_id] = n
                return
            self.refused += 1
            delay = backoff(n, self.args.min_delay, self.args.max_delay, self.rng)
            if time.monotonic() + delay >= deadline:
                self.per_device[client_id] = n
                return
            await asyncio.sleep(delay)

    async def run(self, devices):
        await asyncio.gather(*(self.device(d) for d in devices))
        histogram = {}
        for n in self.per_device.values():
            histogram[n] = histogram.get(n, 0) + 1
        done = sorted(self.connected_at)
        return {
            "devices": len(devices),
            "connected": len(done),
            "attempts": self.attempts,
            "refused": self.refused,
            "first_connect_s": round(done[0], 3) if done else None,
            "last_connect_s": round(done[-1], 3) if done else None,
            "attempts_per_device": {str(k): v for k, v in sorted(histogram.items())},
        }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("--timeout", type=float, required=True)
    p.add_argument("--min-delay", type=float, default=1.0)
    p.add_argument("--max-delay", type=float, default=120.0)
    p.add_argument("--attempts-at-once", type=int, default=200)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("fleet_dir")
    args = p.parse_args()
    devices = sorted(e.path for e in os.scandir(args.fleet_dir) if e.is_dir())
    if not devices:
        sys.exit(f"fleet.py: {args.fleet_dir}: no device directories")
    summary = asyncio.run(Fleet(args).run(devices))
    print(json.dumps(summary), flush=True)
    sys.exit(0 if summary["connected"] == summary["devices"] else 1)


if __name__ == "__main__":
    main()
