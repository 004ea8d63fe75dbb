//! Precision and recall of the built-in PII detectors, per entity, on a seeded synthetic
//! corpus (see `policy::corpus`).
//!
//! ```text
//! cargo run -p policy --example pii_quality [-- --seed N --samples N --errors]
//! ```
//!
//! A true positive is a value found with the right entity and the exact span; anything else
//! found is a false positive, anything labelled and not found exactly a false negative. The
//! corpus mixes prompts without personal data, prompts with one or two values, and
//! look-alikes that must not be flagged (invalid Luhn cards, SSNs in never-issued ranges, IBANs
//! with a bad checksum, versions, dates, order numbers, UUIDs, hashes, placeholder keys, …).

use policy::Scanner;
use policy::corpus::{errors, generate, score};

fn main() {
    let mut seed: u64 = 20_240_601;
    let mut count: usize = 20_000;
    let mut show_errors = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            "--samples" => count = args.next().and_then(|v| v.parse().ok()).unwrap_or(count),
            "--errors" => show_errors = true,
            other => {
                eprintln!("unknown argument {other}; use --seed N, --samples N, --errors");
                std::process::exit(2);
            }
        }
    }
    let samples = generate(seed, count);
    let clean = samples.iter().filter(|s| s.labels.is_empty()).count();
    let bytes: usize = samples.iter().map(|s| s.text.len()).sum();
    let scanner = Scanner::default();
    let scores = score(&samples, &scanner);
    println!(
        "PII detection quality: seed {seed}, {count} prompts ({clean} without PII), {:.1} MB",
        bytes as f64 / 1e6
    );
    println!();
    println!("| entity      | values |   TP |  FP |  FN | precision | recall |");
    println!("|-------------|-------:|-----:|----:|----:|----------:|-------:|");
    let mut worst: f64 = 1.0;
    for (e, c) in &scores {
        worst = worst.min(c.precision()).min(c.recall());
        println!(
            "| {:<11} | {:>6} | {:>4} | {:>3} | {:>3} | {:>9.4} | {:>6.4} |",
            e.as_str(),
            c.support,
            c.true_pos,
            c.false_pos,
            c.false_neg,
            c.precision(),
            c.recall()
        );
    }
    let (tp, fp, fneg) = scores.iter().fold((0, 0, 0), |(a, b, c), (_, x)| {
        (a + x.true_pos, b + x.false_pos, c + x.false_neg)
    });
    println!(
        "| all         | {:>6} | {:>4} | {:>3} | {:>3} | {:>9.4} | {:>6.4} |",
        tp + fneg,
        tp,
        fp,
        fneg,
        tp as f64 / (tp + fp).max(1) as f64,
        tp as f64 / (tp + fneg).max(1) as f64
    );
    let errs = errors(&samples, &scanner);
    if show_errors {
        println!();
        for (kind, e, ctx) in errs.iter().take(50) {
            println!("{kind} {e}: {ctx:?}");
        }
    } else if !errs.is_empty() {
        println!(
            "\n{} misclassified value(s); run with --errors to list them",
            errs.len()
        );
    }
    if worst < 0.98 {
        eprintln!("below the 0.98 target");
        std::process::exit(1);
    }
}
