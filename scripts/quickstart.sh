#!/usr/bin/env bash
# The README's first command: installs what is needed, builds kt, and runs the
# console plus a bundled gateway on the embedded SQLite default with the
# built-in demo provider. Prints where to sign in and with what.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/setup.sh
printf '\033[1m==> %s\033[0m\n' "building kt (first build: a few minutes)"
scripts/build-site.sh
cargo build -p server
exec target/debug/kt demo "$@"
