#!/usr/bin/env bash
# The main job end to end, on the embedded default: everything under .demo/,
# no AWS account needed. Each step prints the command it runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JITR=${JITR:-$ROOT/target/debug/jitr}
DEMO=${DEMO_DIR:-$ROOT/.demo}
rm -rf "$DEMO" && mkdir -p "$DEMO" && cd "$DEMO"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. The administrator creates a root CA and an intermediate (ECDSA P-256)"
run "$JITR" ca create root-ca --subject "CN=Demo Root CA,O=Demo Corp,C=DE"
run "$JITR" ca create issuing-ca --issuer root-ca --path-len 0 --subject "CN=Demo Issuing CA,O=Demo Corp,C=DE"

step "2. A production run of device certificates, issued offline"
run "$JITR" device issue --ca issuing-ca --out devices --count 100 --name-template 'robot-{n:04}'
run head -3 devices/manifest.csv

step "3. Checks: jitr's linter, then openssl as an independent verifier"
run "$JITR" check issuing-ca/ca.crt devices/robot-0001/device-and-ca.crt --ca root-ca
run openssl verify -CAfile root-ca/ca.crt -untrusted issuing-ca/ca.crt devices/robot-0001/device.crt

# ---------------------------------------------------------------------------
# The AWS side, on the embedded default: the moto stand-in for AWS IoT on
# loopback, the function under cargo-lambda's emulator, and mosquitto with
# client-certificate TLS. Everything is stopped on exit.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; return 1; }

MOTO_PORT=$(free_port)
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
       AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true
setsid python3 "$ROOT/tests/moto/jitr_moto.py" -p "$MOTO_PORT" >moto.log 2>&1 & PIDS+=($!)
wait_port "$MOTO_PORT"

step "4. Register the CAs with AWS IoT (local stand-in at $AWS_ENDPOINT_URL; --profile/--region talk to AWS)"
run "$JITR" ca register root-ca --no-auto-registration
run "$JITR" ca register issuing-ca
CA_ID=$("$JITR" --json ca show issuing-ca | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificate_id"])')
python3 - <<'PY'
import boto3, json
doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect",
       "Resource": "arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}"}]}
boto3.client("iot").create_policy(policyName="jitr-device", policyDocument=json.dumps(doc))
print("device policy jitr-device created (the infrastructure's job in AWS)")
PY

step "5. The JITR function under cargo lambda watch"
LAMBDA_PORT=$(free_port)
(cd "$ROOT/lambda" && exec setsid cargo lambda watch --ignore-changes -q -A 127.0.0.1 -P "$LAMBDA_PORT" \
    --env-var "JITR_POLICY_NAME=jitr-device,JITR_ALLOWED_CA_IDS=$CA_ID") >lambda.log 2>&1 & PIDS+=($!)
wait_port "$LAMBDA_PORT"

step "6. A real MQTT broker (mosquitto) behind the stand-in, and a subscriber on things/#"
MQTT_PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MQTT_PORT" > mosquitto.conf
setsid mosquitto -c mosquitto.conf >mosquitto.log 2>&1 & PIDS+=($!)
wait_port "$MQTT_PORT"
setsid mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t 'things/#' -v >received.txt 2>&1 & PIDS+=($!)

step "7. The stand-in for AWS IoT Core's JITR on loopback (TLS 8883-style, client certificates; tests/standin/iot_core.py)"
IOT_PORT=$(free_port)
setsid python3 "$ROOT/tests/standin/iot_core.py" --port "$IOT_PORT" --state-dir iot-core --moto "$AWS_ENDPOINT_URL" \
    --broker "127.0.0.1:$MQTT_PORT" --function "http://127.0.0.1:$LAMBDA_PORT/2015-03-31/functions/jitr-lambda/invocations" \
    >iot-core.log 2>&1 & PIDS+=($!)
wait_port "$IOT_PORT"
echo "unknown certificate -> registered PENDING_ACTIVATION, event to the function, connection dropped;"
echo "pending -> event again, dropped; ACTIVE -> passed through to mosquitto"

step "8. First connect of three devices: refused while pending, accepted once the function activated them"
FAILED=0
for n in 0001 0002 0003; do
    run "$JITR" connect devices/robot-$n --endpoint "127.0.0.1:$IOT_PORT" --ca-file iot-core/server-ca.crt \
        --message "hello from robot-$n" --timeout 60 || FAILED=1
done
sleep 0.5

step "9. What the stand-in saw for robot-0001"
ID1=$(awk -F, '$1=="robot-0001"{print $2}' devices/manifest.csv)
python3 - "$ID1" <<'PY'
import json, sys
for line in open("iot-core.log"):
    e = json.loads(line)
    if e.get("certificate_id") == sys.argv[1]:
        what = e.get("outcome") or ("event delivered" if e.get("ok") else "delivery failed")
        print(f"  {e['event']:<9} {what}")
PY

step "10. Result"
python3 - "$FAILED" <<'PY'
import boto3, csv, sys
c = boto3.client("iot")
received = open("received.txt").read()
rows = {r["name"]: r for r in csv.DictReader(open("devices/manifest.csv"))}
print(f"{'device':<12} {'certificate id':<18} {'status':<19} {'thing':<12} {'policy':<12} message")
ok = sys.argv[1] == "0"
for name in ["robot-0001", "robot-0002", "robot-0003"]:
    cid = rows[name]["certificate_id"]
    status = c.describe_certificate(certificateId=cid)["certificateDescription"]["status"]
    arn = f"arn:aws:iot:eu-west-1:123456789012:cert/{cid}"
    things = c.list_principal_things(principal=arn)["things"]
    policies = [p["policyName"] for p in c.list_attached_policies(target=arn)["policies"]]
    got = f"things/{name}/hello hello from {name}" in received
    ok &= status == "ACTIVE" and things == [name] and policies == ["jitr-device"] and got
    print(f"{name:<12} {cid[:16]}.. {status:<19} {','.join(things):<12} {','.join(policies):<12} {'delivered' if got else 'NOT delivered'}")
print("\nall devices registered on first connect, provisioned, activated and online" if ok else "\nSOMETHING FAILED")
raise SystemExit(0 if ok else 1)
PY
