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
if hwm:
    print("| process | peak RSS (VmHWM) | processes |")
    print("|---|---:|---:|")
    for name, (kb, n) in hwm.items():
        print(f"| {name} | {kb / 1024:.1f} MiB | {n} |")
    print()
print("direct = nginx stand-in alone; 'server CPU' = CPU time of the process under test "
      "(nginx worker for direct) per request, from /proc/PID/stat.")
