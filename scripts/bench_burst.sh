#!/usr/bin/env bash
# make bench-burst: BURST_DEVICES devices (default 2000) power on at once
# (scripts/fleet.py: reconnecting as the AWS IoT Device SDKs do, 1 s doubling
# to 120 s, full jitter) through the ministack emulator with the deployed SAM
# stack's rule, queue and function, behind the fault-injecting proxy (scripts/throttle_proxy.py)
# that enforces AWS IoT's quotas x BURST_SCALE (default 1). Also
# BURST_MAX_CONCURRENCY (the template's MaxConcurrency, default 2) and
# BURST_ERROR_RATE (injected 5xx, default 0). Prints a table and one line:
#   burst: N devices, X devices/s = P% of the binding limit, throttled T% of calls, ...
set -euo pipefail
cd "$(dirname "$0")/.."
export BURST_DEVICES="${BURST_DEVICES:-2000}" BURST_SCALE="${BURST_SCALE:-1}"
export BURST_MAX_CONCURRENCY="${BURST_MAX_CONCURRENCY:-2}" BURST_ERROR_RATE="${BURST_ERROR_RATE:-0}"
cargo build --workspace --bins --tests
cargo test -p jitr-tests --test burst -- --ignored --exact bench_burst --nocapture 2>&1 \
    | grep -E '^\||^burst:|panicked|proxy:|fleet:'
# A lone device on a quiet deployment (MaxConcurrency 20), three times.
cargo test -p jitr-tests --test burst -- --ignored --exact bench_lone_device --nocapture 2>&1 \
    | grep -E '^lone:|panicked'
