# Sourced by the scripts: TARGET_DIR is where cargo puts this workspace's
# builds, asked of cargo itself so a global CARGO_TARGET_DIR (or
# build.target-dir in a cargo config) is honoured.
TARGET_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." &&
    cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
