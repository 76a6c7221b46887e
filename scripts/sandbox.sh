#!/usr/bin/env bash
# `make sandbox`: jitr without an AWS account. Starts the ministack emulator
# on 127.0.0.1 (IAM enforced, AWS IoT with its MQTT/TLS broker), deploys
# infra/sam/template.yaml to it for every CA of the account
# (CaCertificateId=all, as the demo deploys it: scripts/emulator_deploy.py),
# prints the `export` lines a shell needs to use it (also written to
# SANDBOX_DIR/env.sh) and stays up until SIGINT (Ctrl-C) or SIGTERM, then
# stops everything it started. Progress goes to stderr, the exports to stdout.
#
#   SANDBOX_DIR   where the emulator's state, log and broker CA live (.sandbox)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/target_dir.sh"
. "$ROOT/scripts/emulator.sh"
SANDBOX=${SANDBOX_DIR:-$ROOT/.sandbox}
STACK=jitr

say() { printf 'sandbox: %s\n' "$*" >&2; }

# Nothing of an earlier sandbox is kept: the emulator starts empty.
rm -rf "$SANDBOX/emulator" "$SANDBOX/env.sh" "$SANDBOX/stack.json"
mkdir -p "$SANDBOX"
SANDBOX=$(cd "$SANDBOX" && pwd)

say "building the function for this machine"
host_function_zip >&2

trap emulator_stop EXIT
trap 'say "stopping"; exit 0' INT TERM

say "starting ministack on 127.0.0.1 (log: $SANDBOX/emulator.log)"
emulator_start "$SANDBOX"

say "deploying infra/sam/template.yaml as stack $STACK (CaCertificateId=all, Architecture=$ARCH)"
"$EMULATOR_PY" "$ROOT/scripts/emulator_deploy.py" sam --stack "$STACK" --zip "$ZIP" \
    --param CaCertificateId=all --param "Architecture=$ARCH" >"$SANDBOX/stack.json"

emulator_get /_ministack/iot/ca.pem >"$SANDBOX/broker-ca.pem"
emulator_warm_broker "$SANDBOX/broker-ca.pem"

# What a shell needs: the emulator's API for every AWS call (jitr, the AWS
# CLI, boto3), its region and credentials, jitr itself, and the broker
# devices connect to with the CA that verifies it (`jitr connect` and
# `jitr doctor` read JITR_ENDPOINT and JITR_BROKER_CA_FILE).
{
    printf 'export %s=%q\n' \
        AWS_ENDPOINT_URL "$AWS_ENDPOINT_URL" \
        AWS_REGION "$AWS_REGION" \
        AWS_DEFAULT_REGION "$AWS_DEFAULT_REGION" \
        AWS_ACCESS_KEY_ID "$AWS_ACCESS_KEY_ID" \
        AWS_SECRET_ACCESS_KEY "$AWS_SECRET_ACCESS_KEY" \
        AWS_EC2_METADATA_DISABLED true \
        JITR_ENDPOINT "127.0.0.1:$MQTT_PORT" \
        JITR_BROKER_CA_FILE "$SANDBOX/broker-ca.pem"
    printf 'export PATH=%q:"$PATH"\n' "$TARGET_DIR/debug"
} >"$SANDBOX/env.sh"

say "ready: stack $STACK deployed; in another shell paste these lines (or \`. $SANDBOX/env.sh\`):"
cat "$SANDBOX/env.sh"
say "jitr connect and jitr doctor then reach the sandbox's broker (JITR_ENDPOINT, JITR_BROKER_CA_FILE)"
say "Ctrl-C stops the sandbox"

# `wait` returns when a trapped signal arrives (the trap then exits), or
# when the emulator itself ends.
wait "${PIDS[0]}" || true
say "the emulator stopped by itself; the last lines of $SANDBOX/emulator.log:"
tail -20 "$SANDBOX/emulator.log" >&2
exit 1
