//! Speed of PII scanning and of request evaluation.
//!
//! ```text
//! cargo run -p policy --release --example pii_bench
//! ```
//!
//! Prints scanning throughput (MB/s, one core) on realistic prompts without personal data and
//! on prompts with some, and the latency percentiles of `PolicyConfig::evaluate` for a 4 KB
//! prompt under the spec's example configuration plus a redacting policy. Inputs come from the
//! seeded corpus (`policy::corpus`), so runs are comparable. Not a test: figures depend on the
//! machine (see `BENCHMARKS.md`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use policy::corpus::{Rng, clean_prompt, generate};
use policy::{RequestFacts, Scanner, parse};

const SPEC: &str = include_str!("../testdata/spec-example.yaml");

/// Runs `f` over `inputs` repeatedly for at least `min` and returns MB/s.
fn throughput(inputs: &[String], min: Duration, mut f: impl FnMut(&str) -> usize) -> (f64, usize) {
    let bytes: usize = inputs.iter().map(String::len).sum();
    let mut found = 0;
    // Warm up (lazy statics, caches).
    for t in inputs.iter().take(50) {
        black_box(f(t));
    }
    let start = Instant::now();
    let mut rounds = 0usize;
    while start.elapsed() < min {
        for t in inputs {
            found += black_box(f(black_box(t)));
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    ((bytes * rounds) as f64 / secs / 1e6, found / rounds.max(1))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {machine}, {cores} core(s) available; single-threaded measurements");
    println!();

    let mut rng = Rng::new(7);
    let clean: Vec<String> = (0..2000).map(|_| clean_prompt(&mut rng, 4096)).collect();
    // Prompts with PII: corpus samples with values, concatenated up to ~4 KB.
    let mut with_pii: Vec<String> = Vec::new();
    let mut cur = String::new();
    for s in generate(11, 12_000)
        .into_iter()
        .filter(|s| !s.labels.is_empty())
    {
        cur.push_str(&s.text);
        cur.push('\n');
        if cur.len() >= 4096 {
            with_pii.push(std::mem::take(&mut cur));
        }
    }
    let mb = |v: &[String]| v.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    let scanner = Scanner::default();
    let min = Duration::from_secs(3);

    println!("scanning (all built-in entities, Scanner::find):");
    let (clean_rate, _) = throughput(&clean, min, |t| scanner.find(t).len());
    println!(
        "  PII-free prompts : {:>7.0} MB/s  ({} prompts, {:.1} MB)",
        clean_rate,
        clean.len(),
        mb(&clean)
    );
    let (pii_rate, per_round) = throughput(&with_pii, min, |t| scanner.find(t).len());
    println!(
        "  prompts with PII : {:>7.0} MB/s  ({} prompts, {:.1} MB, {} values found per pass)",
        pii_rate,
        with_pii.len(),
        mb(&with_pii),
        per_round
    );

    // Evaluation latency: spec example + a redacting policy.
    let src = SPEC.replacen(
        "policies:\n",
        "policies:\n  - name: redact-contacts\n    type: pii_detection\n    action: redact\n    entities: [email, phone, ip_address]\n    restore: true\n",
        1,
    );
    let cfg = match parse(&src) {
        Ok(c) => c,
        Err(d) => {
            eprintln!("{}", policy::render_diagnostics("bench.yaml", &d));
            std::process::exit(1);
        }
    };
    println!();
    println!(
        "evaluate() latency, 4 KB prompt, spec example + redact policy ({} policies):",
        cfg.policies.len()
    );
    for (label, prompts) in [("PII-free", &clean), ("with PII", &with_pii)] {
        let mut samples: Vec<Duration> = Vec::with_capacity(40_000);
        for i in 0..40_000 {
            let t = &prompts[i % prompts.len()];
            let facts = RequestFacts {
                model: "gpt-4o",
                texts: vec![t.as_str()],
            };
            let start = Instant::now();
            let e = cfg.evaluate(black_box(&facts));
            let elapsed = start.elapsed();
            black_box(e);
            if i >= 1000 {
                samples.push(elapsed);
            }
        }
        samples.sort();
        println!(
            "  {label:<9}: p50 {:>8}  p99 {:>8}  p99.9 {:>8}  max {:>8}",
            micros(percentile(&samples, 0.50)),
            micros(percentile(&samples, 0.99)),
            micros(percentile(&samples, 0.999)),
            micros(percentile(&samples, 1.0)),
        );
    }

    // Redacting one 4 KB request body in place.
    let mut samples: Vec<Duration> = Vec::with_capacity(20_000);
    for i in 0..20_000 {
        let t = &with_pii[i % with_pii.len()];
        let mut body =
            serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": t}]});
        let start = Instant::now();
        if let Some(mut r) = cfg.redactor() {
            policy::redact_request(&mut body, &mut r);
            black_box(&r);
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    println!();
    println!(
        "redactor() + redact_request(), 4 KB prompt with PII: p50 {}  p99 {}",
        micros(percentile(&samples, 0.50)),
        micros(percentile(&samples, 0.99))
    );
}
