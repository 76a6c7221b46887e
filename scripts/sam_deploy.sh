#!/usr/bin/env bash
# `make deploy`: the function built and infra/sam/template.yaml deployed with
# the SAM CLI (.venv/sam, `deps.sh --sam`), non-interactively:
#   sam build    builds the function with cargo-lambda (the template's
#                `BuildMethod: rust-cargolambda`) in the workspace's own
#                target directory, so an earlier `make build` or
#                `make build-lambda` is reused, never needed
#   sam deploy   uploads it (to S3_BUCKET, else the SAM CLI's managed bucket:
#                --resolve-s3) and creates or updates the stack through a
#                CloudFormation change set, without asking
# Settings (make variables or environment):
#   CA_ID      caCertificateId from `jitr ca register`, or `all` (required)
#   STACK      stack name (jitr)
#   REGION     AWS region (default: AWS_REGION, else the profile's)
#   PROFILE    AWS CLI profile (default: the default credential chain)
#   ARCH       arm64 (default, the template's) or x86_64
#   PARAMS     more template parameters, "K=V K=V" (e.g. "MaxConcurrency=4")
#   S3_BUCKET  bucket for the function's zip (default: --resolve-s3)
#   SAM_BUILD_DIR  where sam build writes (<target dir>/sam)
# AWS_ENDPOINT_URL aims every call elsewhere (the tests: the emulator), and
# CARGO_LAMBDA_COMPILER=cargo builds with this machine's own toolchain,
# without zig (only for ARCH = this machine's, and only for the emulator:
# AWS's provided.al2023 may lack the glibc this machine links against).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/target_dir.sh"
SAM=$ROOT/.venv/sam/bin/sam
STACK=${STACK:-jitr}
ARCH=${ARCH:-arm64}
BUILD_DIR=${SAM_BUILD_DIR:-$TARGET_DIR/sam}

fail() { printf 'make deploy: %s\n' "$*" >&2; exit 2; }

[ -n "${CA_ID:-}" ] || fail "CA_ID is required: the caCertificateId \`jitr ca register\` printed (\`jitr --json ca show CA\` shows it), or CA_ID=all for every CA of the account"
[[ $CA_ID =~ ^([0-9a-f]{64}|all)$ ]] || fail "CA_ID=$CA_ID: expected 64 lowercase hex digits (a caCertificateId) or all"
case "$ARCH" in arm64|x86_64) ;; *) fail "ARCH=$ARCH: expected arm64 or x86_64" ;; esac
[[ $STACK =~ ^[A-Za-z][A-Za-z0-9-]{0,127}$ ]] || fail "STACK=$STACK: a CloudFormation stack name is a letter then letters, digits and hyphens (at most 128)"
[ -x "$SAM" ] || fail "$SAM is missing: \`./scripts/deps.sh --sam\` installs it"

case "$(uname -m)" in aarch64|arm64) HOST_ARCH=arm64 ;; *) HOST_ARCH=x86_64 ;; esac
if [ "${CARGO_LAMBDA_COMPILER:-}" = cargo ]; then
    [ "$ARCH" = "$HOST_ARCH" ] || fail "CARGO_LAMBDA_COMPILER=cargo builds for this machine ($HOST_ARCH) only, not ARCH=$ARCH: unset it (zig cross-builds)"
else
    # cargo-lambda links with zig for Lambda's glibc, and cross-compiles.
    "$ROOT/scripts/deps.sh" --cross
fi

params=("CaCertificateId=$CA_ID" "Architecture=$ARCH")
read -r -a extra <<<"${PARAMS:-}"
for p in "${extra[@]}"; do
    [[ $p =~ ^[A-Za-z0-9]+=.*$ ]] || fail "PARAMS: \"$p\" is not NAME=VALUE (a parameter of infra/sam/template.yaml)"
    params+=("$p")
done
aws=()
[ -n "${REGION:-}" ] && aws+=(--region "$REGION")
[ -n "${PROFILE:-}" ] && aws+=(--profile "$PROFILE")
if [ -n "${S3_BUCKET:-}" ]; then bucket=(--s3-bucket "$S3_BUCKET"); else bucket=(--resolve-s3); fi

export SAM_CLI_TELEMETRY=0
run() { printf '$ %s\n' "$*"; "$@"; }
cd "$ROOT/infra/sam"
run "$SAM" build --template-file template.yaml --build-dir "$BUILD_DIR" --parameter-overrides "Architecture=$ARCH"
run "$SAM" deploy --template-file "$BUILD_DIR/template.yaml" --stack-name "$STACK" "${aws[@]}" "${bucket[@]}" \
    --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM CAPABILITY_AUTO_EXPAND \
    --parameter-overrides "${params[@]}" \
    --no-confirm-changeset --no-fail-on-empty-changeset
