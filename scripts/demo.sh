#!/usr/bin/env bash
# The main job end to end, on the embedded default, the ministack AWS
# emulator: everything under .demo/, no AWS account needed. The function is
# built with cargo-lambda for this machine, infra/sam/template.yaml is
# deployed through the emulator's CloudFormation, and devices do JITR against
# the emulator's IoT MQTT/TLS endpoint. Each step prints the command it runs;
# any failure exits non-zero. The stack is removed at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/target_dir.sh"
. "$ROOT/scripts/emulator.sh"
JITR=${JITR:-$TARGET_DIR/debug/jitr}
DEMO=${DEMO_DIR:-$ROOT/.demo}
PY=$EMULATOR_PY
rm -rf "$DEMO" && mkdir -p "$DEMO" && cd "$DEMO"
T0=$(date +%s.%N)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
run_to() { local out=$1; shift; printf '$ %s > %s\n' "$*" "$out"; "$@" >"$out"; }

step "1. The administrator creates a root CA and an intermediate (ECDSA P-256)"
run "$JITR" ca create root-ca --subject "CN=Demo Root CA,O=Demo Corp,C=DE"
run "$JITR" ca create issuing-ca --issuer root-ca --path-len 0 --subject "CN=Demo Issuing CA,O=Demo Corp,C=DE"

step "2. A production run of device certificates, issued offline"
run "$JITR" device issue --ca issuing-ca --out devices --count 100 --name-template 'robot-{n:04}'
run head -3 devices/manifest.csv

step "3. Checks: jitr's linter, then openssl as an independent verifier"
run "$JITR" check issuing-ca/ca.crt devices/robot-0001/device-and-ca.crt --ca root-ca
run openssl verify -CAfile root-ca/ca.crt -untrusted issuing-ca/ca.crt devices/robot-0001/device.crt

step "4. The function, built with cargo-lambda for this machine ($(uname -m)), packaged as a Lambda zip"
host_function_zip
ls -l "$ZIP"

# ---------------------------------------------------------------------------
# The AWS side: ministack on loopback (IAM enforced, IoT MQTT/TLS listener on
# a free port), stopped on exit.
trap emulator_stop EXIT

step "5. The AWS emulator: ministack $("$PY" -m pip show ministack 2>/dev/null | sed -n 's/^Version: //p') with IAM enforced (AUTH=true), every listener on 127.0.0.1"
emulator_start "$DEMO"
echo "API at $AWS_ENDPOINT_URL, devices connect to 127.0.0.1:$MQTT_PORT (MQTT over TLS, client certificates)"

step "6. Register the CAs with AWS IoT (here the emulator; --profile/--region talk to AWS)"
run "$JITR" ca register root-ca --no-auto-registration
run "$JITR" ca register issuing-ca
CA_ID=$("$JITR" --json ca show issuing-ca | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificate_id"])')

step "7. Deploy infra/sam/template.yaml through the emulator's CloudFormation (parameters only)"
run_to stack.json "$PY" "$ROOT/scripts/emulator_deploy.py" sam --stack jitr --zip "$ZIP" \
    --param "CaCertificateId=$CA_ID" --param "AllowedCaIds=$CA_ID" --param "Architecture=$ARCH"
"$PY" - <<'PY'
import json
s = json.load(open("stack.json"))
print(f"stack {s['stack']}: {s['status']}")
for r in s["resources"]:
    print(f"  {r['logical']:<24} {r['type']:<34} {r['status']}")
print("outputs:")
for k, v in s["outputs"].items():
    print(f"  {k:<20} {v}")
PY

step "8. A subscriber on things/# at the emulator's broker"
emulator_get /_ministack/iot/ca.pem >broker-ca.pem   # verifies the broker, as Amazon's roots do in AWS
emulator_warm_broker broker-ca.pem
setsid stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" --cafile broker-ca.pem -t 'things/#' -v -q 1 >received.txt 2>subscriber.err & PIDS+=($!)
for _ in $(seq 1 50); do
    timeout 2 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile broker-ca.pem -t things/probe -m probe -q 1 2>/dev/null || true
    grep -q things/probe received.txt && break; sleep 0.2
done
grep -q things/probe received.txt || { echo "the subscriber receives nothing: $(cat subscriber.err)" >&2; exit 1; }
echo "subscribed"

step "9. First connect of three devices: refused while pending, accepted once the deployed function activated them"
FAILED=0
for n in 0001 0002 0003; do
    run "$JITR" connect devices/robot-$n --endpoint "127.0.0.1:$MQTT_PORT" --ca-file broker-ca.pem \
        --message "hello from robot-$n" --timeout 60 || FAILED=1
done
sleep 0.5

step "10. What the emulator logged: robot-0001 registered on CONNECT, the deployed function invoked from the queue"
ID1=$(awk -F, '$1=="robot-0001"{print $2}' devices/manifest.csv)
grep -E "certificate $ID1|ESM: Lambda [^ ]+ processed [0-9]+ SQS" emulator.log | sed -E 's/^[0-9-]+ //' | head -6 || true

step "11. Result"
"$PY" - "$FAILED" <<'PY'
import boto3, csv, json, sys
c = boto3.client("iot")
outputs = json.load(open("stack.json"))["outputs"]
policy = outputs["DevicePolicyName"]
group = outputs["DeviceGroupName"]
received = open("received.txt").read()
rows = {r["name"]: r for r in csv.DictReader(open("devices/manifest.csv"))}
print(f"{'device':<12} {'certificate id':<18} {'status':<19} {'thing':<12} {'policy (group)':<12} message")
ok = sys.argv[1] == "0"
for name in ["robot-0001", "robot-0002", "robot-0003"]:
    cid = rows[name]["certificate_id"]
    status = c.describe_certificate(certificateId=cid)["certificateDescription"]["status"]
    arn = c.describe_certificate(certificateId=cid)["certificateDescription"]["certificateArn"]
    things = c.list_principal_things(principal=arn)["things"]
    # The device policy reaches a device through the device group its thing
    # joined, never attached to the certificate itself.
    own = [p["policyName"] for p in c.list_attached_policies(target=arn)["policies"]]
    groups = [g for g in c.list_thing_groups_for_thing(thingName=name)["thingGroups"] if g["groupName"] == group]
    policies = [p["policyName"] for g in groups for p in c.list_attached_policies(target=g["groupArn"])["policies"]]
    got = f"things/{name}/hello hello from {name}" in received
    ok &= status == "ACTIVE" and things == [name] and not own and policies == [policy] and got
    print(f"{name:<12} {cid[:16]}.. {status:<19} {','.join(things):<12} {','.join(policies):<12} {'delivered' if got else 'NOT delivered'}")
print("\nall devices registered on first connect, provisioned by the deployed stack, activated and online" if ok else "\nSOMETHING FAILED")
raise SystemExit(0 if ok else 1)
PY

step "12. Remove the deployment: the stack, then the retained device policy (detached from the device group first) and the group"
run "$PY" "$ROOT/scripts/emulator_deploy.py" delete --stack jitr --device-policy
python3 -c "import time; print(f'\ndemo finished in {time.time() - $T0:.1f} s')"
