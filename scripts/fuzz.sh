#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for FUZZ_SECONDS seconds (default 60),
# one after another at the lowest CPU priority, and prints executions per
# target. FUZZ_RUNS=N stops a target after N executions instead (whichever
# comes first); FUZZ_TARGETS="event csr" picks targets. Exits non-zero if
# any target found a crash, panic, hang or failed assertion: the input is
# in fuzz/artifacts/<target>/, the log in fuzz/logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:--1}
targets=${FUZZ_TARGETS:-"event sqs_batch cert_facts subject name_template names_file csr"}

# cargo-fuzz drives libFuzzer (built from source by libfuzzer-sys, needs a
# C++ compiler). On stable Rust it works without a sanitizer: ASan needs
# nightly, but the coverage instrumentation it uses does not, and Rust's
# own checks (bounds, unwrap, overflow: cargo-fuzz turns on debug
# assertions) still turn bugs into crashes.
version=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$version"; then
    cargo install cargo-fuzz --locked --version "$version"
fi
fuzz=(cargo fuzz)
common=(--sanitizer none --fuzz-dir "$root/fuzz")
nice -n 19 "${fuzz[@]}" build "${common[@]}"

mkdir -p fuzz/logs
failed=()
rows=()
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    extra=()
    case $t in event | sqs_batch) extra=(-dict="$root/fuzz/dict/json.dict") ;; esac
    log=fuzz/logs/$t.log
    echo "fuzzing $t for ${seconds}s ..." >&2
    started=$(date +%s)
    if nice -n 19 "${fuzz[@]}" run "${common[@]}" "$t" "$root/fuzz/corpus/$t" "$root/fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
        -close_fd_mask=1 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1; then
        result=ok
    else
        result="FAILED: see $log and fuzz/artifacts/$t/"
        failed+=("$t")
    fi
    # libFuzzer's own count of seconds (without the build), else the wall clock.
    elapsed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    elapsed=${elapsed:-$(($(date +%s) - started))}
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    rows+=("$(printf '%-14s %12s %8s %9s %7s  %s' "$t" "${execs:-?}" "${elapsed}s" "${rate:-?}" "$corpus" "$result")")
done

printf '%-14s %12s %8s %9s %7s  %s\n' target executions time exec/s corpus result
printf '%s\n' "${rows[@]}"
if ((${#failed[@]})); then
    echo "fuzzing found problems in: ${failed[*]}" >&2
    exit 1
fi
