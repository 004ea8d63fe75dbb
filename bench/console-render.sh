#!/usr/bin/env bash
# Console render time with a large event history (issue: Dashboard and Cost
# Center under 50 ms with 10 million events).
#
#   bench/console-render.sh            # 10,000,000 events (seeding takes a while, once)
#   EVENTS=1000000 bench/console-render.sh
#
# Seeds an SQLite database (bench/console-<N>.db, reused on later runs)
# through the gateways' own batch path, starts a release `kt serve` on it,
# signs in, and times server-rendered page loads (curl, loopback, no
# JavaScript): 5 warm-up loads, then RUNS timed loads per page. Prints p50,
# p95 and max per page.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
EVENTS=${EVENTS:-10000000}
RUNS=${RUNS:-50}
PORT=${PORT:-3390}
export CARGO_TARGET_DIR=bench/target
db="bench/console-${EVENTS}.db"
export KT_DATABASE_URL="sqlite://$db"
export KT_DATA_DIR="bench/.console-data"
mkdir -p "$KT_DATA_DIR"

cargo build --release -q -p server
cargo build --release -q -p store --example seed_events
kt=bench/target/release/kt
if [ ! -f "$db.seeded" ]; then
  rm -f "$db" "$db-wal" "$db-shm"
  echo "seeding $EVENTS events into $db …"
  bench/target/release/examples/seed_events "$EVENTS"
  touch "$db.seeded"
fi
password=bench-password-$$
printf '%s\n' "$password" | "$kt" admin create-user --email "bench-$$@kt.local" --role admin >/dev/null

RUST_LOG=warn "$kt" serve --addr "127.0.0.1:$PORT" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

jar=$(mktemp)
curl -fsS -c "$jar" -b "$jar" -o /dev/null -H 'Accept: text/html' \
  --data-urlencode "email=bench-$$@kt.local" --data-urlencode "password=$password" \
  "http://127.0.0.1:$PORT/api/login"

gateway=$(curl -fsS -b "$jar" "http://127.0.0.1:$PORT/?range=30d" | grep -o 'data-gateway="bench-gw-03"><td><a href="/gateways/[^"]*' | sed 's|.*/gateways/||' || true)
echo "events: $EVENTS ($(du -h "$db" | cut -f1) database); $RUNS timed loads per page"
printf '%-22s %8s %8s %8s\n' page p50_ms p95_ms max_ms
for page in "/?range=24h" "/?range=7d" "/?range=30d" "/cost" "/cost?range=30d" "/gateways/${gateway:-missing}?range=30d"; do
  for _ in 1 2 3 4 5; do curl -fsS -b "$jar" -o /dev/null "http://127.0.0.1:$PORT$page"; done
  for _ in $(seq "$RUNS"); do
    curl -fsS -b "$jar" -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT$page"
  done | sort -n | awk -v page="$page" '{ t[NR] = $1 * 1000 } END {
    printf "%-22s %8.1f %8.1f %8.1f\n", page, t[int(NR * 0.5 + 0.5)], t[int(NR * 0.95 + 0.5)], t[NR] }'
done
rm -f "$jar"
