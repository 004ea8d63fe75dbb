//! `parse` must never panic, whatever it is fed: garbage, binary noise, and every truncation
//! of the spec example (which exercises half-written keys, values and collections).

use policy::{RequestFacts, lint, parse, render_diagnostics};

const SPEC: &str = include_str!("../testdata/spec-example.yaml");
const DEMO: &str = include_str!("../../configs/teams/demo.yaml");

fn check(src: &str) {
    let report = lint(src);
    assert_eq!(report.config.is_some(), !report.has_errors(), "{src:?}");
    let _ = render_diagnostics("x.yaml", &report.diagnostics);
    match parse(src) {
        Ok(cfg) => {
            let _ = cfg.route("gpt-4o");
            let _ = cfg.evaluate_request(&RequestFacts {
                model: "gpt-4o",
                texts: vec![src],
            });
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "an error must say something: {src:?}");
            for d in &diags {
                assert!(d.line >= 1 && d.column >= 1, "{d:?} for {src:?}");
            }
            let _ = render_diagnostics("x.yaml", &diags);
        }
    }
}

#[test]
fn garbage_never_panics() {
    let garbage = [
        "",
        " ",
        "\t",
        "\n",
        "\0",
        "\u{feff}",
        "\u{feff}policies: []\n",
        ":",
        "::",
        "- -",
        "[",
        "]",
        "{",
        "}",
        "{{}}",
        "[[[]]]",
        "&a",
        "*a",
        "&a [*a]",
        "!!binary x",
        "!<tag:x> y",
        "%YAML 1.2",
        "%YAML 1.2\n---\na: 1",
        "...",
        "--- |\n  text",
        ">",
        "|",
        "'",
        "\"",
        "\"\\x\"",
        "? a\n: b",
        "? [a]\n: b",
        "policies",
        "policies:",
        "policies: ~",
        "policies: 3",
        "policies: [1, 2]",
        "policies: [[]]",
        "policies: [{}]",
        "policies: [{name: }]",
        "policies: [{name: [a]}]",
        "policies: [{? [x] : y}]",
        "policies: []\nproviders:",
        "policies: []\nproviders: []",
        "policies: []\nproviders: {targets: [1]}",
        "policies: []\nproviders: {targets: [{id: }]}",
        "policies: []\nproviders: {targets: [{id: a, provider: {secret_key_ref: []}}]}",
        "policies: []\nproviders: {targets: [{id: a, provider: {base_url: \"http://[\"}}]}",
        "policies: []\nproviders: {targets: [{id: a, provider: {base_url: \"http://é:1/\"}}]}",
        "policies:\n- name: a\n  type: rate_limit\n  max_requests_per_minute: 99999999999999999999999999999999999999999",
        "policies:\n- name: a\n  type: rate_limit\n  max_requests_per_minute: 1e400",
        "policies:\n- name: a\n  type: cost_limit\n  monthly_limit: .nan",
        "policies:\n- name: a\n  type: cost_limit\n  monthly_limit: -.inf",
        "policies:\n- name: a\n  type: cost_limit\n  monthly_limit: 0x",
        "policies: [{name: c, type: content_filter, keywords: [\"\\u00e9\", \"a  b\", \"(\", \"\\\\\"]}]",
        "policies: [{name: c, type: content_filter, keywords: [x], patterns: [{name: p, pattern: \"\\\\b\"}]}]",
        "policies: [{name: c, type: content_filter, keywords: [[x]], patterns: [[]]}]",
        "policies: [{name: c, type: content_filter, action: redact, reviewers_see_prompt: [true]}]",
        "a:\n\tb: 1",
        "a: b: c",
        "a: [b, {c: d], e]",
        "- a\nb: c",
        "😀: 🙃",
        "policies: [😀]",
        "policies:\n  - name: é\n    type: ü\n    açtion: x\n",
        "\r\n\r\n",
        "policies:\r\n  - name: a\r\n",
    ];
    for g in garbage {
        check(g);
    }
    let noise: String = (0u32..2000)
        .filter_map(|i| char::from_u32((i * 7919) % 0x2FFF))
        .collect();
    check(&noise);
    for depth in [10, 100, 1000] {
        check(&"[".repeat(depth));
        check(&"- ".repeat(depth));
        check(&format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth)));
    }
}

#[test]
fn every_truncation_of_the_examples_is_handled() {
    for src in [SPEC, DEMO] {
        for (i, _) in src.char_indices() {
            check(&src[..i]);
            check(&src[i..]);
        }
    }
}

#[test]
fn every_single_character_corruption_is_handled() {
    for (i, c) in SPEC.char_indices() {
        for replacement in ["", ":", "-", "\"", "[", "\t", "  ", "x"] {
            let mut s = String::with_capacity(SPEC.len() + 2);
            s.push_str(&SPEC[..i]);
            s.push_str(replacement);
            s.push_str(&SPEC[i + c.len_utf8()..]);
            check(&s);
        }
    }
}
