#!/usr/bin/env bash
# Gateway benchmark: added latency and throughput of kt (and LiteLLM for
# comparison) in front of a fast stand-in provider (nginx), black-box.
#
#   bash bench/run.sh               # MODE=closed: closed-loop wrk runs
#   MODE=rate bash bench/run.sh     # open-loop fixed-rate runs (bench/loadgen)
#
# End to end: installs what is missing (nginx, wrk from Debian; LiteLLM in
# bench/.venv), builds kt in release mode, starts nginx + kt + LiteLLM,
# runs the loads, stops everything and prints a summary table.
# Everything it writes goes under bench/out/<run id>/ (git-ignored).
#
# MODE=closed (default): closed-loop wrk loads at CONNS connections.
# MODE=rate: bench/loadgen (built in release into bench/loadgen/target when
#   missing or stale) sends requests at fixed rates, open loop, each timed
#   from its scheduled send time (queueing counts), over at most
#   LG_CONNECTIONS keep-alive connections; for every stream setting in
#   STREAMS and rate in RATES, each target in turn. Streamed runs use the
#   stand-in's SSE endpoint (/v1s/chat/completions), through a second kt
#   gateway (kt-bench-stream.yaml) and a second LiteLLM proxy
#   (litellm-stream.yaml), and time first and last byte.
#
# Knobs (environment):
#   MODE=closed          closed | rate
#   DURATION=20          seconds per measured run
#   WARMUP=3             seconds of discarded warm-up per target (closed) or
#                        before every run, at its rate (rate)
#   CONNS="1 8 32"       closed-loop connection counts (closed)
#   RATES="500 1000 2000"  requests/s (rate)
#   STREAMS="0 1"        0 = plain chat completions, 1 = streamed (rate)
#   LG_CONNECTIONS=64    loadgen's connection pool size (rate)
#   LG_TIMEOUT=10        seconds after its scheduled time a request is given
#                        up and counted as a timeout (rate)
#   TARGETS="direct kt kt-nopolicy litellm" (closed) / "direct proxy kt litellm" (rate)
#                        direct = nginx alone; proxy = a second nginx as a bare
#                        reverse proxy hop in front of it (baseline: the cost
#                        of any L7 hop; bench/nginx-proxy.conf.in, serves both
#                        the plain and the streamed path); kt = all four policies on;
#                        kt-nopolicy = kt with no policies (diagnostic; not
#                        streamed in rate mode); litellm = LiteLLM proxy, one
#                        worker
#   SKIP_BUILD=1         use an existing kt binary (KT_BIN, default below)
#   KT_BENCH_TARGET_DIR  cargo target dir for the release build
#                        (default bench/target, so the team's target/ and its
#                        build lock are not touched)
#   LOAD_CPU=0 GW_CPU=1  cores for wrk/loadgen+nginx and for the gateway under test
#   PORT_BASE=18080      ports PORT_BASE+1..+8 are used on 127.0.0.1
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
MODE=${MODE:-closed}
case $MODE in
  closed) TARGETS=${TARGETS:-"direct kt kt-nopolicy litellm"} ;;
  rate) TARGETS=${TARGETS:-"direct proxy kt litellm"} ;;
  *) echo "MODE must be closed or rate, not '$MODE'" >&2; exit 2 ;;
esac
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-"1 8 32"}
RATES=${RATES:-"500 1000 2000"}
STREAMS=${STREAMS:-"0 1"}
LG_CONNECTIONS=${LG_CONNECTIONS:-64}
LG_TIMEOUT=${LG_TIMEOUT:-10}
LOAD_CPU=${LOAD_CPU:-0}
GW_CPU=${GW_CPU:-1}
PORT_BASE=${PORT_BASE:-18080}
NGINX_PORT=$((PORT_BASE + 1))
KT_PORT=$((PORT_BASE + 2))
KT_SERVE_PORT=$((PORT_BASE + 3))
LITELLM_PORT=$((PORT_BASE + 4))
KT_NOPOL_PORT=$((PORT_BASE + 5))
KT_STREAM_PORT=$((PORT_BASE + 6))
LITELLM_STREAM_PORT=$((PORT_BASE + 7))
PROXY_PORT=$((PORT_BASE + 8))
LITELLM_VERSION=1.106.12   # never 1.82.7 / 1.82.8 (compromised releases)
TARGET_DIR=${KT_BENCH_TARGET_DIR:-$BENCH_DIR/target}
KT_BIN=${KT_BIN:-$TARGET_DIR/release/kt}
LOADGEN_DIR=$BENCH_DIR/loadgen
LOADGEN=$LOADGEN_DIR/target/release/loadgen

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
RUN=$BENCH_DIR/out/$RUN_ID
mkdir -p "$RUN"
log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
# rate mode with streamed runs: the stream variants of kt and LiteLLM run too
streamed_runs() { [[ $MODE == rate && " $STREAMS " == *" 1 "* ]]; }

# --- process bookkeeping: stop exactly what this script started -------------
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

wait_port() { # port seconds
  local port=$1 deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ((SECONDS > deadline)); then log "nothing listens on port $port after $2 s"; return 1; fi
    sleep 0.2
  done
}

# --- 1. tools --------------------------------------------------------------
need_apt=()
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_apt+=(nginx)
[[ $MODE == closed ]] && { command -v wrk >/dev/null || need_apt+=(wrk); }
command -v taskset >/dev/null || need_apt+=(util-linux)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]} (apt)"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if has_target litellm && [[ ! -x $BENCH_DIR/.venv/bin/litellm ]]; then
  log "installing litellm[proxy]==$LITELLM_VERSION into bench/.venv"
  python3 -m venv "$BENCH_DIR/.venv"
  "$BENCH_DIR/.venv/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
fi

# --- 2. build ---------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building kt (cargo build --release -p server, target dir $TARGET_DIR)"
  t0=$SECONDS
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release -p server) >"$RUN/build.log" 2>&1 \
    || { tail -30 "$RUN/build.log"; exit 1; }
  echo "build_seconds=$((SECONDS - t0))" >"$RUN/build-time.txt"
  log "built in $((SECONDS - t0)) s"
fi
[[ -x $KT_BIN ]] || { log "no kt binary at $KT_BIN"; exit 1; }
if [[ $MODE == rate ]]; then
  # its own target dir, outside kt's workspace; rebuilt only when missing or
  # older than its sources
  if [[ ! -x $LOADGEN ]] || [[ -n $(find "$LOADGEN_DIR/src" "$LOADGEN_DIR/Cargo.toml" \
    "$LOADGEN_DIR/Cargo.lock" -newer "$LOADGEN" -print -quit) ]]; then
    log "building bench/loadgen (release, target dir bench/loadgen/target)"
    (cd "$LOADGEN_DIR" && CARGO_TARGET_DIR=$LOADGEN_DIR/target cargo build --release --locked) \
      >"$RUN/loadgen-build.log" 2>&1 || { tail -30 "$RUN/loadgen-build.log"; exit 1; }
  fi
  [[ -x $LOADGEN ]] || { log "no loadgen binary at $LOADGEN"; exit 1; }
fi

# --- machine ------------------------------------------------------------------
{
  echo "date_utc=$(date -u +%FT%TZ)"
  echo "nproc=$(nproc)"
  echo "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "mem=$(free -h | awk '/^Mem:/{print $2}')"
  echo "kernel=$(uname -r)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "git_rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "mode=$MODE"
  if [[ $MODE == closed ]]; then
    echo "wrk=$(wrk -v 2>&1 | head -1)"
  else
    echo "load=bench/loadgen, open loop, $LG_CONNECTIONS connections, timeout ${LG_TIMEOUT}s"
  fi
  echo "nginx=$("$NGINX" -v 2>&1)"
  has_target litellm && echo "litellm=$LITELLM_VERSION ($("$BENCH_DIR/.venv/bin/python" --version 2>&1))"
} >"$RUN/machine.txt"

subst() { # file-in file-out
  sed -e "s#BENCH_NGINX_PORT#$NGINX_PORT#g" -e "s#BENCH_PROXY_PORT#$PROXY_PORT#g" \
    -e "s#BENCH_OUT#$RUN#g" "$1" >"$2"
}

# --- 3. stand-in provider: nginx on the load core ----------------------------
mkdir -p "$RUN/nginx"
subst "$BENCH_DIR/nginx.conf.in" "$RUN/nginx/nginx.conf"
taskset -c "$LOAD_CPU" "$NGINX" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" >"$RUN/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_port "$NGINX_PORT" 10
DIRECT_URL=http://127.0.0.1:$NGINX_PORT/v1/chat/completions
DIRECT_STREAM_URL=http://127.0.0.1:$NGINX_PORT/v1s/chat/completions
curl -fsS -o /dev/null -X POST -H 'content-type: application/json' -d '{}' "$DIRECT_URL"
log "nginx up on $NGINX_PORT"

# --- 3b. baseline hop: a second nginx as a bare reverse proxy, gateway core ---
if has_target proxy; then
  mkdir -p "$RUN/nginx-proxy"
  subst "$BENCH_DIR/nginx-proxy.conf.in" "$RUN/nginx-proxy/nginx.conf"
  taskset -c "$GW_CPU" "$NGINX" -p "$RUN/nginx-proxy" -c "$RUN/nginx-proxy/nginx.conf" \
    >"$RUN/nginx-proxy/stdout.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  wait_port "$PROXY_PORT" 10
  log "proxy (nginx) up on $PROXY_PORT"
fi

# --- 4. kt: data dir, gateway key, gateway(s) on the gateway core -------------
export KT_DATA_DIR=$RUN/ktdata
export BENCH_KEY=sk-dummy-bench
export RUST_LOG=${RUST_LOG:-warn}
if has_target kt || has_target kt-nopolicy; then
  ORG_TOKEN=$("$KT_BIN" admin create-token --name bench 2>"$RUN/kt-admin.log")
  "$KT_BIN" serve --addr "127.0.0.1:$KT_SERVE_PORT" >"$RUN/kt-serve.log" 2>&1 &
  SERVE_PID=$!
  PIDS+=("$SERVE_PID")
  wait_port "$KT_SERVE_PORT" 60
  API=http://127.0.0.1:$KT_SERVE_PORT/v1
  TEAM_ID=$(curl -fsS -X POST "$API/teams" -H "authorization: Bearer $ORG_TOKEN" \
    -H 'content-type: application/json' -d '{"name":"Bench","slug":"bench"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  GW_KEY=$(curl -fsS -X POST "$API/tokens" -H "authorization: Bearer $ORG_TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"bench\",\"token_type\":\"gateway\",\"team_id\":\"$TEAM_ID\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
  # serve is gone: never signal its (reusable) pid again
  PIDS=("$NGINX_PID")
  has_target proxy && PIDS+=("$PROXY_PID")
  log "team $TEAM_ID and a gateway key created; kt serve stopped"

  start_kt() { # name config port
    subst "$BENCH_DIR/$2" "$RUN/$2"
    taskset -c "$GW_CPU" "$KT_BIN" gateway run --name "$1" --policy-config "$RUN/$2" \
      --listen "127.0.0.1:$3" >"$RUN/$1.log" 2>&1 &
    PIDS+=("$!")
    eval "PID_${1//-/_}=$!"
    wait_port "$3" 60
  }
  has_target kt && start_kt kt kt-bench.yaml "$KT_PORT"
  has_target kt-nopolicy && start_kt kt-nopolicy kt-bench-nopolicy.yaml "$KT_NOPOL_PORT"
  if has_target kt && streamed_runs; then
    start_kt kt-stream kt-bench-stream.yaml "$KT_STREAM_PORT"
  fi
fi

# --- 5. LiteLLM on the gateway core -------------------------------------------
start_litellm() { # name config port (started in the background)
  subst "$BENCH_DIR/$2" "$RUN/$2"
  (
    cd "$RUN"
    export LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR
    unset DATABASE_URL
    exec taskset -c "$GW_CPU" "$BENCH_DIR/.venv/bin/litellm" --config "$RUN/$2" \
      --host 127.0.0.1 --port "$3" --num_workers 1
  ) >"$RUN/$1.log" 2>&1 &
  PIDS+=("$!")
  eval "PID_${1//-/_}=$!"
}
if has_target litellm; then
  start_litellm litellm litellm.yaml "$LITELLM_PORT"
  streamed_runs && start_litellm litellm-stream litellm-stream.yaml "$LITELLM_STREAM_PORT"
  wait_port "$LITELLM_PORT" 180 || { tail -30 "$RUN/litellm.log"; exit 1; }
  log "litellm up on $LITELLM_PORT"
  if streamed_runs; then
    wait_port "$LITELLM_STREAM_PORT" 180 || { tail -30 "$RUN/litellm-stream.log"; exit 1; }
    log "litellm-stream up on $LITELLM_STREAM_PORT"
  fi
fi

# An instance is a target, or its stream variant "<target>-stream" (rate mode).
inst_of() { if (($2)); then echo "$1-stream"; else echo "$1"; fi; } # target stream
url_of() {
  case $1 in
    direct) echo "$DIRECT_URL" ;;
    direct-stream) echo "$DIRECT_STREAM_URL" ;;
    proxy) echo "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" ;;
    proxy-stream) echo "http://127.0.0.1:$PROXY_PORT/v1s/chat/completions" ;;
    kt) echo "http://127.0.0.1:$KT_PORT/v1/chat/completions" ;;
    kt-stream) echo "http://127.0.0.1:$KT_STREAM_PORT/v1/chat/completions" ;;
    kt-nopolicy) echo "http://127.0.0.1:$KT_NOPOL_PORT/v1/chat/completions" ;;
    litellm) echo "http://127.0.0.1:$LITELLM_PORT/v1/chat/completions" ;;
    litellm-stream) echo "http://127.0.0.1:$LITELLM_STREAM_PORT/v1/chat/completions" ;;
  esac
}
auth_of() {
  case ${1%-stream} in
    kt | kt-nopolicy) echo "$GW_KEY" ;;
    litellm) echo sk-bench-master ;;
    *) echo none ;;
  esac
}
pid_of() {
  case $1 in
    direct | direct-stream) pgrep -P "$NGINX_PID" | head -1 ;; # the nginx worker
    proxy | proxy-stream) pgrep -P "$PROXY_PID" | head -1 ;;    # its worker
    kt) echo "$PID_kt" ;;
    kt-stream) echo "$PID_kt_stream" ;;
    kt-nopolicy) echo "$PID_kt_nopolicy" ;;
    litellm) echo "$PID_litellm" ;;
    litellm-stream) echo "$PID_litellm_stream" ;;
  esac
}
# the instances started for this run (for the checks and peak memory)
INSTANCES=""
for t in $TARGETS; do
  INSTANCES+=" $t"
  if streamed_runs && [[ $t != kt-nopolicy ]]; then INSTANCES+=" $t-stream"; fi
done
# pid and all its descendants
tree() { local p; echo "$1"; for p in $(pgrep -P "$1"); do tree "$p"; done; }
cpu_ticks() { # summed utime+stime (clock ticks) of a process tree
  local t=0 p
  for p in $(tree "$1"); do
    [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

# --- sanity: one request through each target must answer 200 with usage -----
BODY=$(python3 -c 'import re,sys; print(re.search(r"wrk.body = \[\[(.*)\]\]", open(sys.argv[1]).read(), re.S).group(1))' "$BENCH_DIR/post.lua")
printf '%s' "$BODY" >"$RUN/body.json" # loadgen's body (it adds "stream":true itself)
STREAM_BODY="{\"stream\":true,${BODY#\{}"
for t in $INSTANCES; do
  if [[ $t == *-stream ]]; then # a streamed answer: SSE ending in [DONE]
    code=$(curl -sS -N -o "$RUN/check-$t.txt" -w '%{http_code}' -X POST "$(url_of "$t")" \
      -H "authorization: Bearer $(auth_of "$t")" -H 'content-type: application/json' -d "$STREAM_BODY")
    if [[ $code != 200 ]] || ! grep -q 'chat.completion.chunk' "$RUN/check-$t.txt" \
      || ! grep -q '^data: \[DONE\]' "$RUN/check-$t.txt"; then
      log "$t: check request answered $code: $(head -c 400 "$RUN/check-$t.txt")"
      exit 1
    fi
  else
    code=$(curl -sS -o "$RUN/check-$t.json" -w '%{http_code}' -X POST "$(url_of "$t")" \
      -H "authorization: Bearer $(auth_of "$t")" -H 'content-type: application/json' -d "$BODY")
    if [[ $code != 200 ]] || ! grep -q '"usage"' "$RUN/check-$t.json"; then
      log "$t: check request answered $code: $(head -c 400 "$RUN/check-$t.json")"
      exit 1
    fi
  fi
  log "$t: check request 200"
done

# --- 6. load --------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
RESULTS=$RUN/results.jsonl
: >"$RESULTS"
if [[ $MODE == closed ]]; then
  run_wrk() { # target conns seconds outfile
    BENCH_AUTH=$(auth_of "$1") taskset -c "$LOAD_CPU" wrk -t1 -c"$2" -d"$3"s --timeout 10s \
      --latency -s "$BENCH_DIR/post.lua" "$(url_of "$1")" >"$4" 2>&1
  }
  for t in $TARGETS; do
    log "warm-up $t (${WARMUP}s)"
    run_wrk "$t" 8 "$WARMUP" "$RUN/warmup-$t.txt"
  done
  # Interleave targets within each connection count so background load drifts
  # (other builds on the machine) hit every target alike.
  for c in $CONNS; do
    for t in $TARGETS; do
      pid=$(pid_of "$t")
      before=$(cpu_ticks "$pid")
      load=$(cut -d' ' -f1 /proc/loadavg)
      run_wrk "$t" "$c" "$DURATION" "$RUN/wrk-$t-c$c.txt"
      after=$(cpu_ticks "$pid")
      line=$(grep '^BENCHJSON ' "$RUN/wrk-$t-c$c.txt" | sed 's/^BENCHJSON //')
      [[ -n $line ]] || { log "no result from wrk for $t c=$c"; cat "$RUN/wrk-$t-c$c.txt"; exit 1; }
      python3 - "$t" "$c" "$load" "$((after - before))" "$HZ" "$line" >>"$RESULTS" <<'EOF'
import json, sys
t, c, load, ticks, hz, line = sys.argv[1:]
r = json.loads(line)
r.update(target=t, conns=int(c), loadavg1=float(load),
         server_cpu_s=int(ticks) / int(hz))
r["server_cpu_us_per_req"] = 1e6 * r["server_cpu_s"] / max(r["requests"], 1)
print(json.dumps(r))
EOF
      log "$t c=$c: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f req/s p50 %.2f ms p99 %.2f ms non-2xx %d" % (r["rps"], r["p50_ms"], r["p99_ms"], r["err_status"]))' "$line")"
    done
  done
else
  # Open loop at fixed rates: loadgen pinned with nginx on the load core.
  run_loadgen() { # instance stream rate outfile
    local args=(--url "$(url_of "$1")" --rate "$3" --duration "$DURATION" --warmup "$WARMUP"
      --body "$RUN/body.json" --header "Authorization: Bearer $(auth_of "$1")"
      --connections "$LG_CONNECTIONS" --timeout "$LG_TIMEOUT" --json)
    (($2)) && args+=(--stream)
    taskset -c "$LOAD_CPU" "$LOADGEN" "${args[@]}" >"$4" 2>"$4.err"
  }
  # After a run, wait (at most 60 s) until the gateway is idle again, so work
  # it still does for given-up requests (an overloaded LiteLLM) does not land
  # on the next run on the same core.
  settle() { # pid
    local t0 a b
    t0=$SECONDS
    while ((SECONDS - t0 < 60)); do
      a=$(cpu_ticks "$1"); sleep 0.5; b=$(cpu_ticks "$1")
      ((b - a <= HZ / 40)) && return 0 # under 5 % of a core
    done
    log "pid $1 still busy after 60 s; going on"
  }
  # Interleave targets within each (stream, rate) so background load drifts
  # hit every target alike.
  for s in $STREAMS; do
    for r in $RATES; do
      for t in $TARGETS; do
        if ((s)) && [[ $t == kt-nopolicy ]]; then continue; fi
        inst=$(inst_of "$t" "$s")
        pid=$(pid_of "$inst")
        out=$RUN/loadgen-$t-s$s-r$r.json
        before=$(cpu_ticks "$pid")
        load=$(cut -d' ' -f1 /proc/loadavg)
        run_loadgen "$inst" "$s" "$r" "$out" \
          || { log "loadgen failed for $inst at $r/s"; cat "$out.err"; exit 1; }
        after=$(cpu_ticks "$pid")
        python3 - "$t" "$s" "$r" "$load" "$((after - before))" "$HZ" "$out" >>"$RESULTS" <<'EOF2'
import json, sys
t, s, rate, load, ticks, hz, out = sys.argv[1:]
r = json.load(open(out))
r.update(mode="rate", target=t, stream=int(s), target_rate=float(rate), loadavg1=float(load),
         server_cpu_s=int(ticks) / int(hz))
# all answers of the run, warm-up included, as the CPU was measured over both
r["server_cpu_us_per_req"] = 1e6 * r["server_cpu_s"] / max(r["responses_total"], 1)
print(json.dumps(r))
EOF2
        log "$t stream=$s rate=$r: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency_ms"] or {}; print("achieved %.0f req/s p50 %s ms p99 %s ms errors %d %s" % (r["achieved_rps"], l.get("p50"), l.get("p99"), r["error_total"], r["errors"] or ""))' "$out")"
        [[ $t == direct ]] || settle "$pid"
      done
    done
  done
fi

# --- 7. peak memory, then stop everything ------------------------------------
{
  for t in $INSTANCES; do
    [[ $t == direct* || $t == proxy-stream ]] && continue # proxy: one process pair for both
    pid=$(pid_of "$t")
    [[ $t == proxy ]] && pid=$PROXY_PID # master + worker
    hwm=0
    for p in $(tree "$pid"); do
      v=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      hwm=$((hwm + ${v:-0}))
    done
    echo "$t $hwm $(tree "$pid" | wc -l)"
  done
} >"$RUN/vmhwm.txt"
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RUN/machine.txt"
cleanup
PIDS=()

# --- 8. summary ---------------------------------------------------------------
python3 "$BENCH_DIR/summarize.py" "$RUN" | tee "$RUN/summary.md"
log "raw output in $RUN"
