# Sourced by scripts/demo.sh and scripts/sandbox.sh (after ROOT and
# TARGET_DIR are set): the ministack AWS emulator on loopback, the
# function built for it, and stopping everything started here.
#
#   emulator_start DIR   starts ministack (IAM enforced, every listener on
#                        127.0.0.1, state and emulator.log under DIR), exports
#                        the AWS_* variables aimed at it; sets PORT, MQTT_PORT
#   emulator_get PATH    GET PATH on the emulator's API (stdout)
#   emulator_warm_broker CAFILE   one bounded connection to the broker
#   host_function_zip    cargo lambda build --release for this machine, as a
#                        Lambda zip; sets ARCH (Lambda's name) and ZIP
#   emulator_stop        stops every process group in PIDS (the EXIT trap)

EMULATOR_PY=$ROOT/.venv/ministack/bin/python   # ministack's venv: boto3 for the deploy tool and the checks
EMULATOR_REGION=eu-west-1
PIDS=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Each process was started with setsid, so its group holds whatever it
# started (the functions ministack runs); TERM to the group, then KILL to
# what is left after 5 s.
emulator_stop() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}

emulator_get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$AWS_ENDPOINT_URL$1" 2>/dev/null; }

emulator_start() {
    local dir=$1
    [ -x "$EMULATOR_PY" ] || { echo "$EMULATOR_PY is missing: run \`make deps\`" >&2; return 1; }
    PORT=$(free_port); MQTT_PORT=$(free_port)
    export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
           AWS_REGION=$EMULATOR_REGION AWS_DEFAULT_REGION=$EMULATOR_REGION AWS_EC2_METADATA_DISABLED=true \
           AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    mkdir -p "$dir/emulator"
    GATEWAY_PORT=$PORT IOT_MTLS_PORT=$MQTT_PORT AUTH=true MINISTACK_REGION=$EMULATOR_REGION LOG_LEVEL=INFO \
        TMPDIR=$dir/emulator STATE_DIR=$dir/emulator/state S3_DATA_DIR=$dir/emulator/s3 \
        setsid "$EMULATOR_PY" "$ROOT/scripts/ministack_loopback.py" >"$dir/emulator.log" 2>&1 </dev/null & PIDS+=($!)
    for _ in $(seq 1 300); do emulator_get /_ministack/health >/dev/null && break; sleep 0.1; done
    emulator_get /_ministack/health >/dev/null || {
        echo "ministack did not start; $dir/emulator.log:" >&2; tail -20 "$dir/emulator.log" >&2; return 1
    }
}

# The emulator builds its TLS context on the first connection, which stalls:
# one bounded probe, so the first device does not wait for it.
emulator_warm_broker() {
    timeout 3 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile "$1" -t things/probe -m probe -q 1 2>/dev/null || true
}

host_function_zip() {
    local flag
    case "$(uname -m)" in
        x86_64) ARCH=x86_64; flag=--x86-64 ;;
        aarch64|arm64) ARCH=arm64; flag=--arm64 ;;
        *) echo "no Lambda architecture for $(uname -m)" >&2; return 1 ;;
    esac
    # --compiler cargo: this machine's own toolchain builds for its own
    # architecture (no zig); `make build-lambda` cross-builds arm64 for AWS.
    (cd "$ROOT" && printf '$ %s\n' "cargo lambda build --release $flag --compiler cargo --output-format zip -p jitr-lambda" &&
        cargo lambda build --release "$flag" --compiler cargo --output-format zip -p jitr-lambda)
    ZIP=$TARGET_DIR/lambda/jitr-lambda/bootstrap.zip
}
