//! The JSON Schema ([`crate::SCHEMA`]) against the linter: valid files validate, invalid ones
//! (in ways a schema can express) do not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Map, Number, Value};

use crate::yaml::{self, Node, NodeKind, Scalar};
use crate::{SCHEMA, lint};

/// The YAML document as JSON (core-schema types, as the linter sees them).
fn to_json(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.text().unwrap_or_default().to_owned(), to_json(v));
            }
            Value::Object(m)
        }
        NodeKind::Scalar { .. } => match node.scalar() {
            Some(Scalar::Null) | None => Value::Null,
            Some(Scalar::Bool(b)) => Value::Bool(b),
            Some(Scalar::Int(i)) => match i64::try_from(i) {
                Ok(i) => Value::Number(i.into()),
                Err(_) => Number::from_f64(i as f64).map_or(Value::Null, Value::Number),
            },
            Some(Scalar::Float(f)) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Some(Scalar::Str(s)) => Value::String(s.to_owned()),
        },
    }
}

fn json_of(src: &str) -> Value {
    to_json(&yaml::load(src).unwrap().unwrap())
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    jsonschema::meta::validate(&schema).expect("the schema is a valid 2020-12 schema");
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

fn schema_errors(v: &jsonschema::Validator, src: &str) -> Vec<String> {
    let doc = json_of(src);
    v.iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn spec_example_and_shipped_configs_validate() {
    let v = validator();
    let mut files = vec![(
        "spec-example.yaml".to_owned(),
        include_str!("../testdata/spec-example.yaml").to_owned(),
    )];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/teams");
    for entry in std::fs::read_dir(&dir).expect("configs/teams exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            files.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    assert!(files.len() >= 3, "{files:?}");
    for (name, src) in files {
        assert!(!lint(&src).has_errors(), "{name} lints clean");
        let errs = schema_errors(&v, &src);
        assert!(errs.is_empty(), "{name}: {errs:#?}");
    }
}

/// Documents the linter accepts: the schema accepts them too.
const GOOD: &[&str] = &[
    "policies: []\n",
    "policies:\n  - {name: p, type: pii_detection, action: redact, restore: true, scan_responses: true, entities: [email, iban, jwt], allowlist: ['*@example.com', 'regex:10\\.0\\..*'], custom_patterns: [{name: employee_id, pattern: 'EMP-[0-9]{6}'}]}\n",
    "policies:\n  - {name: c, type: cost_limit, monthly_limit: 12.5, action: warn, enabled: false}\n  - {name: r, type: rate_limit, max_requests_per_minute: 60, max_tokens_per_minute: 100000}\n",
    "policies:\n  - {name: m, type: model_filter, allowed_models: ['gpt-*'], denied_models: [gpt-4o-mini], action: block}\n",
    // content filters (escalate by default) and reviewers_see_prompt
    "policies:\n  - {name: deals, type: content_filter, keywords: [merger agreement, 'Project Falcon'], patterns: [{name: project_code, pattern: 'PRJ-[0-9]{4}'}], reviewers_see_prompt: true}\n",
    "policies:\n  - {name: codes, type: content_filter, action: block, patterns: [{name: ticket, pattern: 'T-[0-9]+'}], keywords: [], reviewers_see_prompt: false}\n  - {name: w, type: content_filter, action: warn, keywords: [layoffs], enabled: false}\n",
    "policies:\n  - {name: p, type: pii_detection, action: escalate, reviewers_see_prompt: true}\n  - {name: q, type: pii_detection, reviewers_see_prompt: false}\n",
    "policies:\n  - {name: c, type: content_filter, action: escalate, keywords: [x], reviewers_see_prompt: true}\n",
    "policies: []\nproviders:\n  targets:\n    - id: demo\n    - id: local\n      provider: {kind: demo}\n    - id: vllm\n      provider: {kind: openai, base_url: 'http://127.0.0.1:8000/v1', models: [llama-3], secret_key_ref: {secret: vllm}}\n    - id: anthropic\n      provider: {secret_key_ref: {env: ANTHROPIC_KEY}}\n",
    "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider: {secret_key_ref: {env: K}}\n      fallbacks: [azure-east, anthropic]\n    - id: azure-east\n      provider: {kind: openai, base_url: 'https://east.example.com/openai/v1', models: ['gpt-*'], secret_key_ref: {env: K}}\n      fallbacks: [openai]\n    - id: anthropic\n      provider: {secret_key_ref: {env: K}}\n      fallbacks: []\n    - id: demo\n      fallbacks: [openai]\n",
];

/// Documents the linter rejects, in ways the schema can express: the schema rejects them too.
const BAD: &[&str] = &[
    // unknown keys
    "policies: []\nprovider: {}\n",
    "policies:\n  - {name: p, type: pii_detection, actoin: block}\n",
    "policies:\n  - {name: c, type: cost_limit, monthly_limit: 5, allowed_models: [x]}\n",
    // unknown type, unknown action, action of another type
    "policies:\n  - {name: p, type: pii_detect}\n",
    "policies:\n  - {name: p, type: pii_detection, action: blok}\n",
    "policies:\n  - {name: c, type: cost_limit, monthly_limit: 5, action: redact}\n",
    // wrong types
    "policies:\n  - {name: p, type: pii_detection, enabled: 'yes'}\n",
    "policies:\n  - {name: c, type: cost_limit, monthly_limit: '2000'}\n",
    "policies:\n  - {name: r, type: rate_limit, max_requests_per_minute: 1.5}\n",
    "policies:\n  - {name: 42, type: model_filter, allowed_models: [a]}\n",
    "policies: {name: x}\n",
    // missing fields
    "providers: {targets: []}\n",
    "policies:\n  - {type: rate_limit, max_requests_per_minute: 5}\n",
    "policies:\n  - {name: m, type: model_filter}\n",
    "policies:\n  - {name: p, type: pii_detection, custom_patterns: [{name: x}]}\n",
    // out of range
    "policies:\n  - {name: c, type: cost_limit, monthly_limit: 0}\n",
    "policies:\n  - {name: c, type: cost_limit, monthly_limit: -5}\n",
    "policies:\n  - {name: r, type: rate_limit, max_requests_per_minute: 0}\n",
    "policies:\n  - {name: m, type: model_filter, allowed_models: []}\n",
    // pii specifics
    "policies:\n  - {name: p, type: pii_detection, restore: true}\n",
    "policies:\n  - {name: p, type: pii_detection, entities: [phone_number]}\n",
    "policies:\n  - {name: p, type: pii_detection, custom_patterns: [{name: email, pattern: x}]}\n",
    "policies:\n  - {name: p, type: pii_detection, custom_patterns: [{name: Bad-Name, pattern: x}]}\n",
    // content filters
    "policies:\n  - {name: c, type: content_filter}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: []}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: [], patterns: []}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: [x], action: redact}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: ['']}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: ['  ']}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: merger}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: [42]}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: [x], custom_patterns: []}\n",
    "policies:\n  - {name: c, type: content_filter, patterns: [{name: email, pattern: x}]}\n",
    "policies:\n  - {name: c, type: content_filter, patterns: [{name: x}]}\n",
    "policies:\n  - {name: p, type: pii_detection, patterns: [{name: x, pattern: x}]}\n",
    // reviewers_see_prompt: only with `action: escalate`, only on pii_detection and content_filter
    "policies:\n  - {name: c, type: content_filter, keywords: [x], action: block, reviewers_see_prompt: true}\n",
    "policies:\n  - {name: c, type: content_filter, keywords: [x], reviewers_see_prompt: 'yes'}\n",
    "policies:\n  - {name: p, type: pii_detection, reviewers_see_prompt: true}\n",
    "policies:\n  - {name: p, type: pii_detection, action: warn, reviewers_see_prompt: true}\n",
    "policies:\n  - {name: r, type: rate_limit, max_requests_per_minute: 5, reviewers_see_prompt: false}\n",
    // targets (a target without a key of its own is fine: it uses the
    // organisation's default for its kind, with a lint warning)
    "policies: []\nproviders:\n  targets:\n    - id: azure-eu\n      provider: {secret_key_ref: {env: K}}\n",
    "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider: {secret_key_ref: {env: A, secret: b}}\n",
    "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider: {base_url: 'ftp://x', secret_key_ref: {env: K}}\n",
    "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider: {secret_key_ref: {env: 1BAD}}\n",
    // fallbacks: wrong types, empty ids, duplicates
    "policies: []\nproviders:\n  targets:\n    - id: demo\n      fallbacks: openai\n    - id: openai\n      provider: {secret_key_ref: {env: K}}\n",
    "policies: []\nproviders:\n  targets:\n    - id: demo\n      fallbacks: [42]\n",
    "policies: []\nproviders:\n  targets:\n    - id: demo\n      fallbacks: ['']\n    - id: openai\n      provider: {secret_key_ref: {env: K}}\n",
    "policies: []\nproviders:\n  targets:\n    - id: demo\n      fallbacks: [openai, openai]\n    - id: openai\n      provider: {secret_key_ref: {env: K}}\n",
];

#[test]
fn schema_agrees_with_lint() {
    let v = validator();
    for src in GOOD {
        let report = lint(src);
        assert!(
            !report.has_errors(),
            "lint: {src}\n{:#?}",
            report.diagnostics
        );
        let errs = schema_errors(&v, src);
        assert!(
            errs.is_empty(),
            "schema rejects a good file: {src}\n{errs:#?}"
        );
    }
    for src in BAD {
        assert!(lint(src).has_errors(), "lint accepts {src}");
        assert!(
            !schema_errors(&v, src).is_empty(),
            "schema accepts a bad file: {src}"
        );
    }
}
