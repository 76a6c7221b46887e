# jitr: `make test` and `make demo` are all the set-up a fresh Debian machine needs.
SHELL := /bin/bash
# Python tools live in project-local virtual environments (scripts/deps.sh):
# every target, and every test it runs, finds them first on PATH.
export PATH := $(CURDIR)/.venv/tools/bin:$(PATH):/usr/sbin

.PHONY: all deps build test demo bench bench-burst clean-demo build-lambda deploy deploy-cdk

all: build

# Debian packages (openssl, mosquitto) and Python tools (ministack, moto
# server, cfn-lint, cargo-lambda) the tests and the demo use; skips what is present.
deps:
	./scripts/deps.sh

# The binaries the end-to-end tests run (one target dir, dev profile). The
# function is also built on its own, as `cargo lambda watch` builds it (its
# own feature resolution), so the emulator tests start without compiling;
# the first-connect tests deploy this host build (debug info stripped) to ministack.
build:
	cargo build --workspace --bins
	cargo build -p jitr-lambda

# Every test: unit tests, then end-to-end tests against openssl, mosquitto,
# ministack (the deployed templates), moto server and cargo-lambda on loopback.
test: deps build
	cargo test --workspace

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

# The function for Lambda (provided.al2023, arm64): target/lambda/jitr-lambda/bootstrap.
build-lambda:
	cargo lambda build --release --arm64 -p jitr-lambda

# Deploy with SAM (needs an AWS account and the SAM CLI; not part of the tests):
#   make deploy CA_ID=<caCertificateId from `jitr ca register`>
deploy:
	cd infra/sam && sam build && sam deploy --guided --parameter-overrides CaCertificateId=$(CA_ID)

# Deploy with CDK (needs an AWS account and `npx cdk bootstrap` once; not part of the tests):
#   make deploy-cdk CA_ID=<caCertificateId>
deploy-cdk: deps
	cd infra/cdk && npx cdk deploy --parameters CaCertificateId=$(CA_ID)

# Fuzz every parser of untrusted input (fuzz/, cargo-fuzz on stable Rust,
# installed on first use) for FUZZ_SECONDS each, one target at a time at
# the lowest priority; prints executions per target:
#   make fuzz FUZZ_SECONDS=600 [FUZZ_RUNS=10000000] [FUZZ_TARGETS="event csr"]
.PHONY: fuzz
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh
