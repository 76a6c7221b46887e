# jitr: `make test` and `make demo` are all the set-up a fresh Debian machine needs.
SHELL := /bin/bash
# Python tools live in project-local virtual environments (scripts/deps.sh):
# every target, and every test it runs, finds them first on PATH.
export PATH := $(CURDIR)/.venv/tools/bin:$(PATH):/usr/sbin

.PHONY: all deps build test test-slow check-fuzz demo bench bench-burst clean-demo build-lambda build-lambda-x86_64 install deploy deploy-cdk

all: build

# Debian packages (openssl, mosquitto) and Python tools (ministack, moto
# server, cfn-lint, cargo-lambda) the tests and the demo use; skips what is present.
deps:
	./scripts/deps.sh

# The binaries the end-to-end tests run (one target dir, dev profile), built
# with the tests so both resolve features alike (aws-sdk-iot's test-util, which
# core's tests enable) and share one build of the SDK with `cargo test`. The
# function is also built on its own, as `cargo lambda watch` builds it (its
# own feature resolution), so the emulator tests start without compiling;
# the first-connect tests deploy this host build (debug info stripped) to ministack.
build:
	cargo build --workspace --bins --tests
	cargo build -p jitr-lambda
	cargo lambda build --release $(HOST_LAMBDA_ARCH) --compiler cargo -p jitr-lambda --lambda-dir "$$($(TARGET_DIR))/lambda-host"

# The release bootstrap for this machine (no cross-compilation) that the tests
# start under a Lambda Runtime API (tests/tests/bootstrap.rs).
HOST_LAMBDA_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),--arm64,--x86-64)
# Where cargo builds (honours CARGO_TARGET_DIR), asked of cargo.
TARGET_DIR = cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'

# Every test (the book: Contributing, Tests): the fast tier, which is what
# `cargo test` runs (unit tests, then end-to-end tests against openssl,
# mosquitto, ministack (the deployed templates), moto server and cargo-lambda
# on loopback), the fuzz workspace compiled, then the slow tier; every part
# runs even when an earlier one failed; then how many of the emulators'
# requests AWS's API models checked. Fails if any part failed, naming it.
test: deps build
	rm -rf "$$($(TARGET_DIR))/model-check"
	failed=""; \
	$(TEST_FAST) || failed="$$failed fast-tier"; \
	$(CHECK_FUZZ) || failed="$$failed fuzz-check"; \
	$(TEST_SLOW) || failed="$$failed slow-tier"; \
	$(MODEL_CHECK_SUMMARY) || failed="$$failed model-check"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi

# The slow tier alone: end-to-end scenarios of minutes each (fleets powering
# on at once, `make deploy`, `make sandbox`), marked #[ignore = "slow"] so
# `cargo test` leaves them out while developing. They live in the files
# SLOW_TESTS names, where nothing else is ignored (tests/tests/shell.rs
# holds this list to the marks), so `--ignored` runs exactly them.
test-slow: deps build
	rm -rf "$$($(TARGET_DIR))/model-check"
	$(TEST_SLOW)
	$(MODEL_CHECK_SUMMARY)

# fuzz/ (a workspace of its own, which `cargo test --workspace` never
# builds) compiled on stable Rust: a fuzz target once stopped compiling
# when the handler's signature changed and nothing noticed. Into the
# target dir's fuzz/ (CARGO_TARGET_DIR honoured, as everywhere).
check-fuzz:
	$(CHECK_FUZZ)

TEST_FAST = cargo test --workspace --no-fail-fast
SLOW_TESTS := burst deploy first_connect sandbox
TEST_SLOW = cargo test -p jitr-tests --no-fail-fast --test tests -- --ignored --test-threads=1 $(addsuffix ::,$(SLOW_TESTS))
CHECK_FUZZ = cargo check --manifest-path fuzz/Cargo.toml --bins --target-dir "$$($(TARGET_DIR))/fuzz"
MODEL_CHECK_SUMMARY = .venv/ministack/bin/python scripts/model_check_server.py summary "$$($(TARGET_DIR))/model-check"

# The main job end to end on the embedded default, the ministack emulator (no
# AWS account needed): the demo builds the function with `cargo lambda build
# --release` for this machine and deploys infra/sam/template.yaml to it.
demo: deps build
	./scripts/demo.sh

# Bulk issuance speed side by side with the openssl recipe; the function's
# cold start, RSS and latency side by side with a Python + boto3 handler.
bench:
	cargo build --release -p jitr-cli -p jitr-lambda
	./scripts/bench.sh
	./scripts/lambda_bench.py

# A fleet powering on at once, AWS IoT's quotas enforced by a proxy in front
# of the emulator: BURST_DEVICES (2000), BURST_SCALE (1), BURST_MAX_CONCURRENCY
# (2), BURST_ERROR_RATE (0). Prints the table and a one-line summary.
bench-burst: deps
	./scripts/bench_burst.sh

clean-demo:
	rm -rf .demo

# The book (docs/, mdBook) into docs/book/: the reference pages regenerated
# from the command definition (jitr man --markdown), the flow diagram from its
# Graphviz source; tests/tests/docs.rs fails when the committed ones differ.
.PHONY: docs
docs: deps
	cargo run -q -p jitr-cli --bin jitr -- man --markdown docs/src/reference/cli
	dot -Tsvg docs/src/images/flow.dot -o docs/src/images/flow.svg
	mdbook build docs

# The function for Lambda (provided.al2023, arm64, the templates' default):
# <target dir>/lambda/jitr-lambda/bootstrap. cargo-lambda cross-links with
# zig; `deps.sh --cross` installs zig (PyPI's ziglang, in .venv/tools) and the
# rustup target first. No test code is in it (aws-sdk-iot's test-util is
# enabled for core's tests only). Not part of `make test`: a cold cross build
# takes long (the book: Contributing, Benchmarks).
build-lambda: deps
	./scripts/deps.sh --cross
	cargo lambda build --release --arm64 -p jitr-lambda

# The same for x86_64 functions (Architectures: x86_64), into <target dir>/lambda-x86_64/.
build-lambda-x86_64:
	cargo lambda build --release --x86-64 -p jitr-lambda --lambda-dir "$$($(TARGET_DIR))/lambda-x86_64"

# `jitr` on the PATH (cargo's bin directory, ~/.cargo/bin), its bash
# completion where bash-completion looks for a user's completions, and its
# man pages where man finds them for ~/.local/bin and ~/.cargo/bin users
# (MANPATH may need $(MAN_DIR)/..). Override the directories to install elsewhere.
BASH_COMPLETION_DIR ?= $${XDG_DATA_HOME:-$$HOME/.local/share}/bash-completion/completions
MAN_DIR ?= $${XDG_DATA_HOME:-$$HOME/.local/share}/man/man1
install:
	cargo install --locked --path cli
	JITR=$${CARGO_INSTALL_ROOT:-$${CARGO_HOME:-$$HOME/.cargo}}/bin/jitr && \
	mkdir -p "$(BASH_COMPLETION_DIR)" && \
	"$$JITR" completions bash > "$(BASH_COMPLETION_DIR)/jitr" && \
	"$$JITR" man "$(MAN_DIR)" && \
	"$$JITR" --version && \
	echo "bash completion: $(BASH_COMPLETION_DIR)/jitr (new shells); man pages: $(MAN_DIR)"

# Deploy with the SAM CLI (installed into .venv/sam on first use): `sam build`
# builds the function with cargo-lambda (no `make build-lambda` needed first),
# `sam deploy` deploys infra/sam/template.yaml without asking (scripts/sam_deploy.sh):
#   make deploy CA_ID=<caCertificateId from `jitr ca register`, or all> \
#       [STACK=jitr] [REGION=eu-west-1] [PROFILE=prod] [ARCH=arm64|x86_64] \
#       [PARAMS="MaxConcurrency=4 OnRotation=retire-previous"] [S3_BUCKET=my-bucket]
# tests/tests/deploy.rs runs exactly this against the emulator (AWS_ENDPOINT_URL).
deploy:
	./scripts/deps.sh --sam
	CA_ID="$(CA_ID)" STACK="$(STACK)" REGION="$(REGION)" PROFILE="$(PROFILE)" ARCH="$(ARCH)" \
	PARAMS="$(PARAMS)" S3_BUCKET="$(S3_BUCKET)" ./scripts/sam_deploy.sh

# Deploy with CDK (needs an AWS account and `npx cdk bootstrap` once; the
# function is built with cargo-lambda while synthesizing; not tested on the
# emulator, see scripts/sam_deploy.sh's notes in the book):
#   make deploy-cdk CA_ID=<caCertificateId>
deploy-cdk: deps
	cd infra/cdk && npx cdk deploy --parameters CaCertificateId=$(CA_ID)

# Try jitr without AWS: the emulator on 127.0.0.1 with the SAM stack deployed
# (CaCertificateId=all); prints the `export` lines for another shell (also in
# .sandbox/env.sh) and stays up until Ctrl-C, which stops everything it started.
.PHONY: sandbox
sandbox: deps build
	./scripts/sandbox.sh

# Fuzz every parser of untrusted input (fuzz/, cargo-fuzz on stable Rust,
# installed on first use) for FUZZ_SECONDS each, one target at a time at
# the lowest priority; prints executions per target:
#   make fuzz FUZZ_SECONDS=600 [FUZZ_RUNS=10000000] [FUZZ_TARGETS="event csr"]
.PHONY: fuzz
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh
