//! Property tests: the parser and the PII scanner/redactor never panic, whatever they are fed,
//! and redaction never lets a detected value through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use policy::corpus::{Rng, value};
use policy::{AnswerFilter, PiiEntity, Redactor, detect, lint, parse, render_diagnostics};
use proptest::prelude::*;

const SPEC: &str = include_str!("../testdata/spec-example.yaml");
const DEMO: &str = include_str!("../../configs/teams/demo.yaml");

/// Lints and parses `src`, checking the invariants of the results.
fn check_config(src: &str) -> Result<(), TestCaseError> {
    let report = lint(src);
    for d in &report.diagnostics {
        prop_assert!(d.line >= 1 && d.column >= 1, "{d:?}");
    }
    let _ = render_diagnostics("x.yaml", &report.diagnostics);
    let parsed = parse(src);
    prop_assert_eq!(parsed.is_ok(), !report.has_errors());
    prop_assert_eq!(report.config.is_some(), !report.has_errors());
    match parsed {
        Ok(cfg) => {
            let _ = cfg.route("gpt-4o");
            let chain = cfg.route_with_fallbacks("gpt-4o");
            prop_assert_eq!(
                chain.first().map(|t| &t.id),
                cfg.route("gpt-4o").map(|t| &t.id)
            );
            for (i, t) in chain.iter().enumerate() {
                prop_assert!(chain[..i].iter().all(|u| u.id != t.id), "{chain:?}");
            }
            let _ = cfg.evaluate(&policy::RequestFacts {
                model: "gpt-4o",
                texts: vec![src],
            });
            let _ = cfg.redactor().map(|mut r| r.redact(src));
        }
        Err(diags) => {
            prop_assert!(!diags.is_empty());
            prop_assert!(diags.iter().all(|d| d.is_error()));
        }
    }
    Ok(())
}

/// Fragments that make YAML (and policy files) interesting when spliced in.
const TOKENS: &[&str] = &[
    "",
    ":",
    ": ",
    "-",
    "- ",
    "\n",
    "\n  ",
    "\n    - ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "|\n  ",
    ">",
    "~",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    ".nan",
    "é",
    "\t",
    "policies",
    "providers",
    "targets",
    "type: pii_detection",
    "action: redact",
    "restore: true",
    "scan_responses: true",
    "custom_patterns: [{name: x, pattern: '('}]",
    "allowlist: ['regex:[']",
    "secret_key_ref: {env: K}",
    "kind: demo",
    "fallbacks: [openai, anthropic]",
    "fallbacks: [demo, x]",
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "enabled: false",
    "monthly_limit: 0",
    "type: content_filter",
    "keywords: [merger agreement, '(']",
    "patterns: [{name: code, pattern: 'PRJ-[0-9]+'}]",
    "reviewers_see_prompt: true",
    "action: escalate",
];

/// A valid config with `edits` random splices/deletions.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0usize..6,
            prop::sample::select(TOKENS),
        ),
        1..6,
    )
    .prop_map(move |edits| {
        let mut s = base.to_owned();
        for (at, delete, insert) in edits {
            let mut i = at.index(s.len() + 1);
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            let mut j = (i + delete).min(s.len());
            while !s.is_char_boundary(j) {
                j += 1;
            }
            s.replace_range(i..j, insert);
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics_on_arbitrary_text(src in "\\PC{0,400}") {
        check_config(&src)?;
    }

    #[test]
    fn parser_never_panics_on_yaml_like_text(src in "[a-z_:\\-\\[\\]{}, \\n\"'#&*!|>0-9.]{0,300}") {
        check_config(&src)?;
    }

    #[test]
    fn parser_never_panics_on_mutated_configs(src in prop_oneof![mutated(SPEC), mutated(DEMO)]) {
        check_config(&src)?;
    }
}

/// A text made of sensitive values (from the seeded corpus generator) and noise, joined by
/// separators.
fn pii_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        (any::<u64>(), 0usize..PiiEntity::ALL.len())
            .prop_map(|(seed, e)| value(&mut Rng::new(seed), PiiEntity::ALL[e])),
        "\\PC{0,12}",
        "[a-z0-9.@:+()\\- ]{0,16}",
    ];
    let sep = prop::sample::select(&[" ", "\n", ", ", " (", ") ", ": ", "\t"][..]);
    prop::collection::vec((piece, sep), 0..8).prop_map(|parts| {
        let mut s = String::new();
        for (p, sep) in parts {
            s.push_str(&p);
            s.push_str(sep);
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scanner_never_panics_and_findings_are_well_formed(text in prop_oneof!["\\PC{0,300}", pii_text()]) {
        let found = detect(&text, &[], &[]);
        let mut last_end = 0;
        for f in &found {
            prop_assert!(f.start >= last_end && f.start < f.end && f.end <= text.len());
            prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            prop_assert_eq!(&text[f.start..f.end], f.value.as_str());
            last_end = f.end;
        }
    }

    #[test]
    fn redaction_hides_every_detected_value_and_restores(text in pii_text()) {
        let found = detect(&text, &[], &[]);
        let mut r = Redactor::new(&[], &[]);
        let redacted = r.redact(&text);
        for f in &found {
            // Whatever is found again in the output is not one of the values.
            for g in detect(&redacted, &[], &[]) {
                prop_assert_ne!(&g.value, &f.value, "in {:?}", redacted);
            }
            if text.matches(f.value.as_str()).count() == 1 {
                prop_assert!(!redacted.contains(f.value.as_str()), "{:?} in {:?}", f.value, redacted);
            }
        }
        if !text.contains('[') {
            prop_assert_eq!(r.restore(&redacted), text.clone());
        }
        // Streamed restoring gives the same text as restoring at once.
        let mut f = AnswerFilter::new(None, Some(r.clone()));
        let mut streamed = String::new();
        for chunk in chunks(&redacted, 3) {
            streamed.push_str(&f.push(chunk));
        }
        streamed.push_str(&f.finish());
        prop_assert_eq!(streamed, r.restore(&redacted));
    }

    #[test]
    fn streamed_answers_are_redacted_like_whole_ones(text in pii_text(), size in 1usize..40) {
        let whole = AnswerFilter::new(Some(Redactor::new(&[], &[])), None).filter(&text);
        let mut f = AnswerFilter::new(Some(Redactor::new(&[], &[])), None);
        let mut streamed = String::new();
        for chunk in chunks(&text, size) {
            streamed.push_str(&f.push(chunk));
        }
        streamed.push_str(&f.finish());
        for v in detect(&text, &[], &[]) {
            prop_assert!(
                !streamed.contains(v.value.as_str()) || text.matches(v.value.as_str()).count() > 1,
                "{:?} leaked in {:?}", v.value, streamed
            );
        }
        prop_assert_eq!(streamed, whole);
    }
}

/// `s` in pieces of about `size` bytes (on char boundaries).
fn chunks(s: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut cut = size.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}
