#!/usr/bin/env bash
# Bulk issuance speed: `jitr device issue` (release build, all cores) side by
# side with the openssl recipe of the how-tos (three openssl processes per
# device, one device at a time). Prints a Markdown table.
# Then the same bulk run signed through each CA key store (file, encrypted
# file, pkcs11 on SoftHSM2, kms on the local ministack emulator), against the
# store's rate limit.
# Usage: scripts/bench.sh [EC_COUNT] [RSA_COUNT] [OPENSSL_COUNT]
# Environment: SECTIONS=issue,stores (default both), STORE_COUNT (2000),
# KMS_COUNT (1500), KMS_RATE (--sign-rate for kms; default the KMS quota, 300/s).
set -euo pipefail
SECTIONS=${SECTIONS:-issue,stores}
STORE_COUNT=${STORE_COUNT:-2000}
KMS_COUNT=${KMS_COUNT:-1500}
REPO=$(cd "$(dirname "$0")/.." && pwd)
EC_COUNT=${1:-10000}
RSA_COUNT=${2:-500}
OPENSSL_COUNT=${3:-200}
. "$REPO/scripts/target_dir.sh"
JITR=${JITR:-$TARGET_DIR/release/jitr}
JITR=$(realpath "$JITR")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; } # COUNT T0 T1

"$JITR" ca create ec-ca --key ec-p256 >/dev/null
"$JITR" ca create rsa-ca --key rsa-2048 >/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n' > device.ext

jitr_rate() { # KEY CA COUNT
    local t0 t1
    t0=$(now)
    "$JITR" device issue --ca "$2" --out "out-$1" --count "$3" --name-template "dev-{n}" --key "$1" >/dev/null
    t1=$(now)
    rate "$3" "$t0" "$t1"
}

openssl_rate() { # KEY CA COUNT
    local t0 t1 i d newkey
    case $1 in
        ec-p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
        rsa-2048) newkey=(-newkey rsa:2048) ;;
    esac
    mkdir -p "ossl-$1"
    t0=$(now)
    for i in $(seq 1 "$3"); do
        d="ossl-$1/dev-$i"; mkdir "$d"
        openssl req -new "${newkey[@]}" -nodes -keyout "$d/device.key" -out "$d/device.csr" -subj "/CN=dev-$i" 2>/dev/null
        openssl x509 -req -in "$d/device.csr" -CA "$2/ca.crt" -CAkey "$2/ca.key" -CAcreateserial -sha256 \
            -days 365 -extfile device.ext -out "$d/device.crt" 2>/dev/null
        cat "$d/device.crt" "$2/ca.crt" > "$d/device-and-ca.crt"
    done
    t1=$(now)
    rate "$3" "$t0" "$t1"
}

cores=$(nproc)
if [[ $SECTIONS == *issue* ]]; then
echo "| workload ($cores cores) | jitr devices/s | openssl recipe devices/s | speed-up |"
echo "|---|---:|---:|---:|"
for spec in "ec-p256 ec-ca $EC_COUNT" "rsa-2048 rsa-ca $RSA_COUNT"; do
    set -- $spec
    j=$(jitr_rate "$1" "$2" "$3")
    o=$(openssl_rate "$1" "$2" "$OPENSSL_COUNT")
    echo "| $1: jitr $3 devices, openssl $OPENSSL_COUNT | $j | $o | $(awk -v a="$j" -v b="$o" 'BEGIN { printf "%.1fx", a / b }') |"
done
fi

# --- Key stores -----------------------------------------------------------
store_rate() { # CA COUNT [extra flags...]; prints devices/s of the signing run
    local ca=$1 count=$2 t0 t1
    shift 2
    t0=$(now)
    "$JITR" device issue --ca "$ca" --out "out-store-$ca" --count "$count" --name-template "dev-{n}" "$@" >/dev/null
    t1=$(now)
    rate "$count" "$t0" "$t1"
}

start_ministack() { # prints the port; ministack's pid goes to ministack.pid
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p ms
    GATEWAY_PORT=$port BIND_HOST=127.0.0.1 MINISTACK_REGION=eu-west-1 LOG_LEVEL=WARNING \
        TMPDIR="$work/ms" STATE_DIR="$work/ms/state" S3_DATA_DIR="$work/ms/s3" \
        "$REPO/.venv/ministack/bin/ministack" >ms/log 2>&1 &
    echo $! > ministack.pid
    python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(600):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/_ministack/health", timeout=1)
        break
    except Exception:
        time.sleep(0.1)
else:
    sys.exit("ministack did not start")
PY
    echo "$port"
}

if [[ $SECTIONS == *stores* ]]; then
echo
echo "| key store ($cores cores, ec-p256 CA, $STORE_COUNT devices; kms $KMS_COUNT) | devices/s | store limit | ratio to limit |"
echo "|---|---:|---:|---:|"
f=$(store_rate ec-ca "$STORE_COUNT")
echo "| file | $f | none | - |"

echo "bench passphrase" > pw
"$JITR" ca create enc-ca --encrypt --password-file pw >/dev/null
e=$(store_rate enc-ca "$STORE_COUNT" --password-file pw)
echo "| file, encrypted (scrypt N=2^14) | $e | none | $(awk -v a="$e" -v b="$f" 'BEGIN { printf "%.0f%% of file", 100 * a / b }') |"

if command -v softhsm2-util >/dev/null; then
    module=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -1)
    mkdir -p tokens
    printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$work" > softhsm2.conf
    export SOFTHSM2_CONF=$work/softhsm2.conf
    softhsm2-util --init-token --free --label bench --so-pin 12345678 --pin 123456 >/dev/null
    echo 123456 > pin
    "$JITR" ca create hsm-ca --key-store pkcs11 --pkcs11-module "$module" --pkcs11-token bench --pin-file pin >/dev/null
    p=$(store_rate hsm-ca "$STORE_COUNT" --pin-file pin)
    echo "| pkcs11 (SoftHSM2) | $p | none | - |"
else
    echo "| pkcs11 (SoftHSM2) | not installed | | |"
fi

if [ -x "$REPO/.venv/ministack/bin/ministack" ]; then
    port=$(start_ministack)
    trap 'kill "$(cat "$work/ministack.pid")" 2>/dev/null; rm -rf "$work"' EXIT
    export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
        AWS_REGION=eu-west-1 AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    "$JITR" ca create kms-ca --key-store kms >/dev/null
    limit=${KMS_RATE:-300}
    k=$(store_rate kms-ca "$KMS_COUNT" --sign-rate "$limit")
    echo "| kms (ministack emulator) | $k | $limit/s | $(awk -v a="$k" -v b="$limit" 'BEGIN { printf "%.0f%%", 100 * a / b }') |"
else
    echo "| kms (ministack emulator) | not installed (make deps) | | |"
fi
fi
