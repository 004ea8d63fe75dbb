#!/usr/bin/env bash
# Installs what kt needs to build and run on a fresh Debian machine with the
# Rust toolchain (rustup) and Node.js/npm. Each tool is installed only when
# missing, from the package registries (crates.io, npm, Debian) and rustup;
# nothing is downloaded from anywhere else.
#
#   scripts/setup.sh          build and run needs: wasm target, wasm-bindgen CLI, npm packages
#   scripts/setup.sh --test   also what the tests need: Debian's Chromium, Python venv
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=false
[ "${1:-}" = "--test" ] && want_test=true
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=false
apt_install() {
  if [ "$apt_updated" = false ]; then
    as_root apt-get update -qq
    apt_updated=true
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

command -v cargo >/dev/null || { echo "error: cargo not found: install Rust with rustup first" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target (rustup)"
  rustup target add wasm32-unknown-unknown
fi

# The wasm-bindgen CLI must match the wasm-bindgen crate exactly (pinned in Cargo.toml).
wbg_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  say "installing wasm-bindgen-cli $wbg_version (crates.io, about 2 minutes)"
  # Not --locked: its lock file names a crate version this registry lacks (BUILD-NOTES).
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

if ! command -v npm >/dev/null; then
  say "installing Node.js and npm (Debian)"
  apt_install nodejs npm
fi
if [ ! -d end2end/node_modules ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "installing npm packages (ECharts, Playwright) in end2end/"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "$want_test" = true ] && ! python3 -m venv --help >/dev/null 2>&1; then
  say "installing Python 3 with venv (Debian) for the SDK compatibility tests"
  apt_install python3 python3-venv
fi

if [ "$want_test" = true ] && [ ! -x /usr/bin/chromium ]; then
  say "installing Chromium (Debian) for the browser tests"
  apt_install chromium
fi
