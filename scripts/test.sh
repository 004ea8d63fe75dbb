#!/usr/bin/env bash
# The README's second command (and what CI runs): the whole test suite.
#   formatting and lints (server and wasm sides), Rust unit and integration
#   tests on SQLite and PostgreSQL, the official OpenAI and Anthropic Python
#   SDKs against a real gateway, and Playwright browser tests in Chromium.
# PostgreSQL tests run when a server answers on 127.0.0.1:5432 (or
# KT_TEST_POSTGRES_URL); elsewhere they are skipped with a message, except
# under CI=true, where a missing server fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if [ "${CI:-}" = true ]; then
  # A clean clone builds once: incremental caches would only take disk
  # (several GB across the test binaries) and time to write.
  export CARGO_INCREMENTAL=0
fi
# A full build of the test suite needs about 10 GB; say so up front rather
# than failing later with "No space left on device" halfway through a link.
free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
if [ -n "$free_kb" ] && [ "$free_kb" -lt $((10 * 1024 * 1024)) ]; then
  printf 'warning: only %s MB free on %s; the build and test suite need about 10 GB\n' \
    "$((free_kb / 1024))" "$(df -P . | awk 'NR == 2 {print $6}')" >&2
fi

scripts/setup.sh --test

# Best effort: start the machine's PostgreSQL if it is installed but stopped.
if command -v pg_ctlcluster >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi

say "cargo fmt --check"
cargo fmt --all --check

say "clippy (server side, then the wasm side)"
cargo clippy --all-targets -- -D warnings
cargo clippy -p frontend -p app --target wasm32-unknown-unknown -- -D warnings

say "building the console's browser bundle"
scripts/build-site.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
say "Rust tests (SQLite and PostgreSQL)"
set +e
cargo test 2>&1 | tee "$log"
rust_status=${PIPESTATUS[0]}
set -e
rust_passed=$(awk '/^test result:/ {s += $4} END {print s+0}' "$log")
rust_failed=$(awk '/^test result:/ {s += $6} END {print s+0}' "$log")

say "SDK compatibility tests (official openai and anthropic Python packages)"
set +e
bash sdk-tests/run.sh 2>&1 | tee "$log"
sdk_status=${PIPESTATUS[0]}
set -e
sdk_passed=$( (grep -oE '[0-9]+ passed' "$log" || true) | tail -1 | awk '{print $1}')
sdk_failed=$( (grep -oE '[0-9]+ (failed|error)' "$log" || true) | awk '{s += $1} END {print s+0}')

say "browser tests (Playwright, Chromium)"
set +e
(cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npx playwright test) 2>&1 | tee "$log"
e2e_status=${PIPESTATUS[0]}
set -e
e2e_passed=$(awk '$2 == "passed" && $1 ~ /^[0-9]+$/ {print $1}' "$log" | tail -1)
e2e_failed=$(awk '$2 == "failed" && $1 ~ /^[0-9]+$/ {print $1}' "$log" | tail -1)

passed=$((rust_passed + ${sdk_passed:-0} + ${e2e_passed:-0}))
failed=$((rust_failed + ${sdk_failed:-0} + ${e2e_failed:-0}))
for status in "$rust_status" "$sdk_status" "$e2e_status"; do
  [ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
done
echo
echo "rust: ${rust_passed} passed, ${rust_failed} failed; SDKs: ${sdk_passed:-0} passed, ${sdk_failed:-0} failed; browser: ${e2e_passed:-0} passed, ${e2e_failed:-0} failed"
echo "${passed} passed, ${failed} failed"
[ "$rust_status" = 0 ] && [ "$sdk_status" = 0 ] && [ "$e2e_status" = 0 ]
