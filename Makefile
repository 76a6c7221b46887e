# jitr: `make test` and `make demo` are all the set-up a fresh Debian machine needs.
SHELL := /bin/bash
export PATH := $(PATH):/usr/sbin

.PHONY: all deps build test demo bench clean-demo

all: build

# Debian packages (openssl, mosquitto) and Python tools (moto server,
# cfn-lint, cargo-lambda) the tests and the demo use; skips what is present.
deps:
	./scripts/deps.sh

# The binaries the end-to-end tests run (one target dir, dev profile).
build:
	cargo build --workspace --bins

# Every test: unit tests, then end-to-end tests against openssl, mosquitto,
# moto server and cargo-lambda's emulator on loopback.
test: deps build
	cargo test --workspace

# The main job end to end on the embedded default (no AWS account needed).
demo: deps build
	./scripts/demo.sh

# Bulk issuance speed, jitr side by side with the openssl recipe.
bench:
	cargo build --release -p jitr-cli
	./scripts/bench.sh

clean-demo:
	rm -rf .demo
