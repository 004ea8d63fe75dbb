#!/usr/bin/env bash
# Compatibility tests with the official OpenAI and Anthropic Python SDKs against `kt demo`.
#
#   bash sdk-tests/run.sh [pytest args…]
#
# Needs Python 3 (with venv) and target/debug/kt (built by `cargo build -p server` or
# scripts/test.sh). The virtualenv lives in sdk-tests/.venv and is (re)built only when missing
# or when requirements.txt is newer than it. KT_BIN overrides the kt binary under test.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
marker="$venv/.requirements-installed"
python="${PYTHON:-python3}"

if [[ ! -x "$venv/bin/python" || ! -f "$marker" || "$here/requirements.txt" -nt "$marker" ]]; then
    echo "sdk-tests: creating $venv from requirements.txt" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$here/requirements.txt"
    touch "$marker"
fi

cd "$here"
[[ $# -gt 0 ]] || set -- "$here"
set +e
"$venv/bin/python" -m pytest -q "$@"
status=$?
set -e
exit "$status"
