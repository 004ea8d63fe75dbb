"""Summary table of a bench/run.sh run: python3 bench/summarize.py bench/out/<run id>"""
import json
import pathlib
import sys

run = pathlib.Path(sys.argv[1])
rows = [json.loads(l) for l in (run / "results.jsonl").read_text().splitlines() if l.strip()]
machine = dict(
    l.split("=", 1) for l in (run / "machine.txt").read_text().splitlines() if "=" in l
)
hwm = {}
if (run / "vmhwm.txt").exists():
    for l in (run / "vmhwm.txt").read_text().splitlines():
        name, kb, nproc = l.split()
        hwm[name] = (int(kb), int(nproc))
build = (run / "build-time.txt").read_text().strip() if (run / "build-time.txt").exists() else "build skipped"


def print_hwm():
    if hwm:
        print("| process | peak RSS (VmHWM) | processes |")
        print("|---|---:|---:|")
        for name, (kb, n) in hwm.items():
            print(f"| {name} | {kb / 1024:.1f} MiB | {n} |")
        print()


def rate_summary():
    """MODE=rate: open-loop runs at fixed rates (bench/loadgen)."""
    print(f"## Run {run.name} (open loop, fixed rates)\n")
    print(f"- machine: {machine.get('nproc')} cores, {machine.get('cpu_model')}, {machine.get('mem')} RAM, kernel {machine.get('kernel')}")
    print(f"- load average (1/5/15 min): start {machine.get('loadavg_start')}, end {machine.get('loadavg_end')}")
    print(f"- kt {machine.get('git_rev')}; {build}; {machine.get('load')}; {machine.get('nginx')}; litellm {machine.get('litellm', '-')}")
    r0 = rows[0]
    print(f"- {r0['duration_s']:g} s measured per run after {r0['warmup_s']:g} s of warm-up at the same rate")
    print()
    by = {(r["target"], r["stream"], r["target_rate"]): r for r in rows}
    targets = list(dict.fromkeys(r["target"] for r in rows))
    streams = list(dict.fromkeys(r["stream"] for r in rows))
    rates = sorted({r["target_rate"] for r in rows})

    def q(r, key, p):
        v = (r.get(key) or {}).get(p)
        return "-" if v is None else f"{v:.3f}"

    def added(r, d, p):
        a, b = (r.get("latency_ms") or {}).get(p), (d.get("latency_ms") or {}).get(p) if d else None
        return "-" if a is None or b is None else f"{a - b:.3f}"

    print("| target | stream | rate | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | first byte p50 ms | errors | server CPU µs/req | client lag p99 ms | load1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in streams:
        for rate in rates:
            d = by.get(("direct", s, rate))
            for t in targets:
                r = by.get((t, s, rate))
                if not r:
                    continue
                add50 = add99 = "-"
                if t != "direct":
                    add50, add99 = added(r, d, "p50"), added(r, d, "p99")
                errs = str(r["error_total"])
                if r["errors"]:
                    errs += " (" + ", ".join(f"{k} {v}" for k, v in r["errors"].items()) + ")"
                print(f"| {t} | {'yes' if s else 'no'} | {rate:g} | {r['achieved_rps']:.0f} | {q(r, 'latency_ms', 'p50')} | {q(r, 'latency_ms', 'p90')} | {q(r, 'latency_ms', 'p99')} | {q(r, 'latency_ms', 'p999')} | {add50} | {add99} | {q(r, 'ttfb_ms', 'p50')} | {errs} | {r['server_cpu_us_per_req']:.0f} | {q(r, 'dispatch_lag_ms', 'p99')} | {r['loadavg1']:.2f} |")
    print()
    if "kt" in targets and "litellm" in targets:
        print("| stream | rate | kt achieved | LiteLLM achieved | kt / LiteLLM | kt added p50 / p99 ms | LiteLLM added p50 / p99 ms |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for s in streams:
            for rate in rates:
                k, l, d = by.get(("kt", s, rate)), by.get(("litellm", s, rate)), by.get(("direct", s, rate))
                if not (k and l):
                    continue
                ratio = f"{k['achieved_rps'] / l['achieved_rps']:.1f}x" if l["achieved_rps"] else "-"
                print(f"| {'yes' if s else 'no'} | {rate:g} | {k['achieved_rps']:.0f} | {l['achieved_rps']:.0f} | {ratio} | {added(k, d, 'p50')} / {added(k, d, 'p99')} | {added(l, d, 'p50')} / {added(l, d, 'p99')} |")
        print()
        print("A throughput ratio at a fixed rate is a lower bound of the ratio of maximum throughputs "
              "as long as kt keeps up with the offered rate; add a rate above kt's capacity to RATES "
              "(or use MODE=closed) for kt's maximum.")
        print()
    print_hwm()
    # the targets, where this run has the numbers
    checks = []
    for s in streams:
        k, d = by.get(("kt", s, 1000.0)), by.get(("direct", s, 1000.0))
        if k and d and k.get("latency_ms") and d.get("latency_ms"):
            a50 = k["latency_ms"]["p50"] - d["latency_ms"]["p50"]
            a99 = k["latency_ms"]["p99"] - d["latency_ms"]["p99"]
            ok = a50 <= 0.2 and a99 <= 1.0 and k["error_total"] == 0
            checks.append(f"- kt at 1000 req/s, {'streamed' if s else 'not streamed'}: added p50 {a50:.3f} ms (≤ 0.2), "
                          f"p99 {a99:.3f} ms (≤ 1), errors {k['error_total']}: {'met' if ok else 'NOT met'}")
    kt_rss = [kb for name, (kb, _) in hwm.items() if name.startswith("kt")]
    if kt_rss:
        m = max(kt_rss) / 1024
        checks.append(f"- kt peak RSS {m:.1f} MiB (≤ 64 MiB): {'met' if m <= 64 else 'NOT met'}")
    if checks:
        print("Targets of the issue:\n")
        print("\n".join(checks))
        print()
    # kt against the floor of any proxy: a bare nginx reverse-proxy hop on the same core
    hops = []
    for s in streams:
        k, p, d = by.get(("kt", s, 1000.0)), by.get(("proxy", s, 1000.0)), by.get(("direct", s, 1000.0))
        if not (k and p and d and k.get("latency_ms") and p.get("latency_ms") and d.get("latency_ms")):
            continue
        k50, k99 = (k["latency_ms"][q] - d["latency_ms"][q] for q in ("p50", "p99"))
        p50, p99 = (p["latency_ms"][q] - d["latency_ms"][q] for q in ("p50", "p99"))
        hops.append(f"- at 1000 req/s, {'streamed' if s else 'not streamed'}: kt added p50 {k50:.3f} / p99 {k99:.3f} ms; "
                    f"bare proxy hop added p50 {p50:.3f} / p99 {p99:.3f} ms; "
                    f"kt beyond the hop p50 {k50 - p50:+.3f} / p99 {k99 - p99:+.3f} ms")
    if hops:
        print("kt vs a bare proxy hop (nginx, one worker, same core, upstream keep-alive):\n")
        print("\n".join(hops))
        print()
    print("direct = nginx stand-in alone; proxy = a second nginx (one worker, on the gateway core) "
          "as a bare reverse-proxy hop in front of it: the latency any L7 hop adds on this machine. Latency is from each request's scheduled send time to its "
          "last byte (queueing for a connection included); percentiles cover 2xx answers and timed-out "
          "requests (at the time given up). 'client lag' = scheduled time to the start of the request in "
          "loadgen (generator health: it should stay well below the latencies). 'server CPU' = CPU time "
          "of the process under test per answer over the run, warm-up included.")


if rows and rows[0].get("mode") == "rate":
    rate_summary()
    sys.exit(0)

by = {(r["target"], r["conns"]): r for r in rows}
targets = list(dict.fromkeys(r["target"] for r in rows))
conns = sorted({r["conns"] for r in rows})

print(f"## Run {run.name}\n")
print(f"- machine: {machine.get('nproc')} cores, {machine.get('cpu_model')}, {machine.get('mem')} RAM, kernel {machine.get('kernel')}")
print(f"- load average (1/5/15 min): start {machine.get('loadavg_start')}, end {machine.get('loadavg_end')}")
print(f"- kt {machine.get('git_rev')}; {build}; {machine.get('wrk')}; {machine.get('nginx')}; litellm {machine.get('litellm', '-')}")
print()
print("| target | conns | req/s | p50 ms | p90 ms | p99 ms | added p50 ms | added p99 ms | server CPU µs/req | non-2xx | errors | load1 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in conns:
    d = by.get(("direct", c))
    for t in targets:
        r = by.get((t, c))
        if not r:
            continue
        add50 = add99 = "-"
        if d and t != "direct":
            add50 = f"{r['p50_ms'] - d['p50_ms']:.2f}"
            add99 = f"{r['p99_ms'] - d['p99_ms']:.2f}"
        errs = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]
        print(f"| {t} | {c} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {add50} | {add99} | {r['server_cpu_us_per_req']:.0f} | {r['err_status']} | {errs} | {r['loadavg1']:.2f} |")
print()
if any(t == "kt" for t in targets) and any(t == "litellm" for t in targets):
    print("| conns | kt req/s | LiteLLM req/s | kt / LiteLLM |")
    print("|---:|---:|---:|---:|")
    for c in conns:
        k, l = by.get(("kt", c)), by.get(("litellm", c))
        if k and l:
            print(f"| {c} | {k['rps']:.0f} | {l['rps']:.0f} | {k['rps'] / l['rps']:.1f}x |")
    print()
print_hwm()
print("direct = nginx stand-in alone; 'server CPU' = CPU time of the process under test "
      "(nginx worker for direct) per request, from /proc/PID/stat.")
