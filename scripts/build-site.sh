#!/usr/bin/env bash
# Builds the console's browser side into target/site (what `kt serve` serves):
#   pkg/kt.js + pkg/kt_bg.wasm  the hydrate entry (frontend crate → wasm32 → wasm-bindgen)
#   pkg/kt.css                  style/main.css
#   echarts.min.js              from npm (end2end/node_modules), never a CDN
#   charts.js, favicon.svg      public/
# This is the documented equivalent of `cargo leptos build` (see README), with
# one debug profile shared with the server build.
set -euo pipefail
cd "$(dirname "$0")/.."

site=target/site
cargo build -p frontend --lib --target wasm32-unknown-unknown
mkdir -p "$site/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$site/pkg" --out-name kt \
  target/wasm32-unknown-unknown/debug/frontend.wasm
cp style/main.css "$site/pkg/kt.css"
cp public/* "$site/"
cp end2end/node_modules/echarts/dist/echarts.min.js "$site/echarts.min.js"
echo "site built in $site"
