#!/usr/bin/env bash
# make bench-burst: BURST_DEVICES devices (default 2000) power on at once
# (scripts/fleet.py: reconnecting as the AWS IoT Device SDKs do, 1 s doubling
# to 120 s, full jitter) through the ministack emulator with the deployed SAM
# stack's rule, queues (bulk lane, fast lane) and function, behind the
# fault-injecting proxy (scripts/throttle_proxy.py) that enforces AWS IoT's
# quotas x BURST_SCALE (default 1). Also BURST_MAX_CONCURRENCY (the template's
# MaxConcurrency, default 2) and BURST_ERROR_RATE (injected 5xx, default 0).
# The function deployed is the release build for this machine (as `make build`
# makes it); JITR_SAM_TEMPLATE=FILE deploys another SAM template (to compare
# designs). Prints a table and one line:
#   burst: N devices, X devices/s = P% of the binding limit, throttled T% of calls, ...
# and draws the run as a chart (activations/s and throttled calls/s over time,
# scripts/burst_chart.py) into BURST_CHART (default docs/src/images/burst.svg).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/target_dir.sh
export BURST_DEVICES="${BURST_DEVICES:-2000}" BURST_SCALE="${BURST_SCALE:-1}"
export BURST_MAX_CONCURRENCY="${BURST_MAX_CONCURRENCY:-2}" BURST_ERROR_RATE="${BURST_ERROR_RATE:-0}"
case "$(uname -m)" in aarch64 | arm64) arch=--arm64 ;; *) arch=--x86-64 ;; esac
cargo build --workspace --bins --tests --examples
cargo lambda build --release "$arch" --compiler cargo -p jitr-lambda --lambda-dir "$TARGET_DIR/lambda-host"
export JITR_FUNCTION_BOOTSTRAP="$TARGET_DIR/lambda-host/jitr-lambda/bootstrap"
echo "bench-burst: $(uptime)"
export BURST_TIMELINE="$TARGET_DIR/burst-timeline.json"
rm -f "$BURST_TIMELINE"
# The benchmark is an example of the tests package (tests/examples/bench_burst.rs),
# not a test: `cargo test` compiles it and never runs it.
bench="$TARGET_DIR/debug/examples/bench_burst"
"$bench" burst 2>&1 | grep -E '^\||^burst:|panicked|proxy:|fleet:|claims:'
python3 scripts/burst_chart.py "$BURST_TIMELINE" "${BURST_CHART:-docs/src/images/burst.svg}" \
    --limit "$(python3 -c "print(10 * float('$BURST_SCALE'))")"
unset BURST_TIMELINE
# A lone device on a quiet deployment (MaxConcurrency 20), three times.
"$bench" lone 2>&1 | grep -E '^lone:|panicked'
echo "bench-burst: $(uptime)"
