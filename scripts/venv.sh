#!/usr/bin/env bash
# venv.sh DIR PKG...: makes DIR a Python virtual environment holding PKG...
# (pip requirement strings), and does nothing when the requirement list is
# the one installed there last time (DIR/.jitr-requirements).
#
# Safe under concurrency and after kill -9: runs for the same DIR take turns
# on DIR.lock (two tests both running `make deploy` on a fresh clone once
# raced here: the second saw bin/python before ensurepip had put pip in and
# failed with "No module named pip"), and a DIR without a working pip (a
# creation killed half-way) is created afresh.
set -euo pipefail
dir=$1; shift
SYS_PY=/usr/bin/python3
[ -x "$SYS_PY" ] || SYS_PY=$(command -v python3)

mkdir -p "$(dirname "$dir")"
exec {lock}>"$dir.lock"
flock "$lock"

want=$(printf '%s\n' "$@")
if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.jitr-requirements" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
echo "deps: pip install into ${dir#"${JITR_ROOT:-$PWD}/"}: $*"
if ! { [ -x "$dir/bin/python" ] && "$dir/bin/python" -m pip --version >/dev/null 2>&1; }; then
    "$SYS_PY" -m venv --clear "$dir"
fi
rm -f "$dir/.jitr-requirements"
"$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
printf '%s\n' "$want" >"$dir/.jitr-requirements"
