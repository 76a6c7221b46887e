#!/usr/bin/env bash
# Installs what the tests and the demo need that a fresh Debian machine
# lacks: Debian packages with apt-get, Python tools with pip. Idempotent:
# anything already present is left alone.
set -euo pipefail

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null || need_apt+=(mosquitto-clients)
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "deps: apt-get install ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
need_pip=()
$PY -c 'import moto.server, flask_cors' 2>/dev/null || need_pip+=("moto[server]==5.2.1")
command -v cfn-lint >/dev/null || need_pip+=("cfn-lint==1.51.0")
command -v cargo-lambda >/dev/null || need_pip+=("cargo-lambda==1.9.2")
if [ ${#need_pip[@]} -gt 0 ]; then
    echo "deps: pip install ${need_pip[*]}"
    $PY -m pip install -q "${need_pip[@]}"
    # pyenv installs console scripts behind shims that need a rehash.
    command -v pyenv >/dev/null && pyenv rehash || true
fi
# The CDK app's packages, exactly as locked (cdk synth runs in the tests).
cdk=$(dirname "$0")/../infra/cdk
if [ ! -f "$cdk/node_modules/.package-lock.json" ] || [ "$cdk/package-lock.json" -nt "$cdk/node_modules/.package-lock.json" ]; then
    echo "deps: npm ci in infra/cdk"
    (cd "$cdk" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "deps: ready (openssl $(openssl version | cut -d' ' -f2), $(PATH=$PATH:/usr/sbin mosquitto -h | head -1), moto $($PY -c 'import moto; print(moto.__version__)'))"
