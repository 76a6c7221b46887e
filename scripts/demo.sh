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

step "6. First connect of three devices: AWS IoT registers each PENDING_ACTIVATION and publishes the event"
for n in 0001 0002 0003; do
    id=$(python3 -c 'import boto3,sys; c=boto3.client("iot"); print(c.register_certificate(certificatePem=open(sys.argv[1]).read(), caCertificatePem=open(sys.argv[2]).read(), status="PENDING_ACTIVATION")["certificateId"])' \
        devices/robot-$n/device.crt issuing-ca/ca.crt)
    printf '{"certificateId":"%s","caCertificateId":"%s","timestamp":%s,"certificateStatus":"PENDING_ACTIVATION","awsAccountId":"123456789012"}' \
        "$id" "$CA_ID" "$(date +%s000)" > "event-$n.json"
    run cargo lambda invoke -A 127.0.0.1 -P "$LAMBDA_PORT" --data-file "event-$n.json" jitr-lambda
    echo
done

step "7. The devices connect over MQTT with client-certificate TLS (mosquitto trusting the root CA)"
MQTT_PORT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout broker.key -out broker.crt \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 2>/dev/null
printf 'listener %s 127.0.0.1\nuser root\nallow_anonymous true\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n' \
    "$MQTT_PORT" "$DEMO/root-ca/ca.crt" "$DEMO/broker.crt" "$DEMO/broker.key" > mosquitto.conf
setsid mosquitto -c mosquitto.conf >mosquitto.log 2>&1 & PIDS+=($!)
wait_port "$MQTT_PORT"
for n in 0001 0002 0003; do
    if mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" --cafile broker.crt --cert devices/robot-$n/device-and-ca.crt \
        --key devices/robot-$n/device.key -i robot-$n -t things/robot-$n/hello -m "hello from robot-$n" -q 1; then
        echo "robot-$n: delivered" >> delivered.txt
    fi
done

step "8. Result"
python3 - <<'PY'
import boto3, csv
c = boto3.client("iot")
delivered = set(l.split(":")[0] for l in open("delivered.txt")) if __import__("os").path.exists("delivered.txt") else set()
rows = {r["name"]: r for r in csv.DictReader(open("devices/manifest.csv"))}
print(f"{'device':<12} {'certificate id':<18} {'status':<19} {'thing':<12} {'policy':<12} message")
ok = True
for name in ["robot-0001", "robot-0002", "robot-0003"]:
    cid = rows[name]["certificate_id"]
    status = c.describe_certificate(certificateId=cid)["certificateDescription"]["status"]
    arn = f"arn:aws:iot:eu-west-1:123456789012:cert/{cid}"
    things = c.list_principal_things(principal=arn)["things"]
    policies = [p["policyName"] for p in c.list_attached_policies(target=arn)["policies"]]
    sent = "delivered" if name in delivered else "NOT delivered"
    ok &= status == "ACTIVE" and things == [name] and policies == ["jitr-device"] and name in delivered
    print(f"{name:<12} {cid[:16]}.. {status:<19} {','.join(things):<12} {','.join(policies):<12} {sent}")
print("\nall devices provisioned, activated and online" if ok else "\nSOMETHING FAILED")
raise SystemExit(0 if ok else 1)
PY
