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
