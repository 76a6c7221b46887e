#!/usr/bin/env bash
# Bulk issuance speed: `jitr device issue` (release build, all cores) side by
# side with the openssl recipe of the how-tos (three openssl processes per
# device, one device at a time). Prints a Markdown table.
# Usage: scripts/bench.sh [EC_COUNT] [RSA_COUNT] [OPENSSL_COUNT]
set -euo pipefail
EC_COUNT=${1:-10000}
RSA_COUNT=${2:-500}
OPENSSL_COUNT=${3:-200}
JITR=${JITR:-target/release/jitr}
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
echo "| workload ($cores cores) | jitr devices/s | openssl recipe devices/s | speed-up |"
echo "|---|---:|---:|---:|"
for spec in "ec-p256 ec-ca $EC_COUNT" "rsa-2048 rsa-ca $RSA_COUNT"; do
    set -- $spec
    j=$(jitr_rate "$1" "$2" "$3")
    o=$(openssl_rate "$1" "$2" "$OPENSSL_COUNT")
    echo "| $1: jitr $3 devices, openssl $OPENSSL_COUNT | $j | $o | $(awk -v a="$j" -v b="$o" 'BEGIN { printf "%.1fx", a / b }') |"
done
