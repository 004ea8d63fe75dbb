//! `policy`: kt's policy language.
//!
//! A tenant's policy file (YAML, see the product spec, section 4) is parsed into a
//! source-positioned node tree (`yaml`), validated by hand into a [`PolicyConfig`]
//! (`validate`), and then used by the gateway to route requests ([`PolicyConfig::route`], and
//! [`PolicyConfig::route_with_fallbacks`] for the targets to retry on upstream failures), to
//! decide on them ([`PolicyConfig::evaluate_request`], [`PolicyConfig::evaluate`], and
//! [`PolicyConfig::evaluate_skipping`] for a request a reviewer approved), to redact
//! them ([`PolicyConfig::redactor`], [`redact_request`]) and to filter answers
//! ([`PolicyConfig::answer_filter`]).
//!
//! - [`lint`] reports every problem in a file at once, errors and warnings, each with line,
//!   column, field path and, where possible, a suggestion ([`Diagnostic`],
//!   [`render_diagnostics`]); [`parse`] is the gateway's entry point (errors only).
//! - [`pii`] detects personal data and secrets (fast, in-process, checksum-checked) and
//!   redacts them with typed markers; [`ContentMatcher`] finds the keywords and patterns of
//!   `content_filter` policies (content that always gets human review).
//! - [`pricing`] holds model prices; [`SCHEMA`] is the JSON Schema of the file format;
//!   [`corpus`] generates the labelled prompts that measure detection quality.
//!
//! The crate is pure: no IO, no async, no global state beyond lazily compiled patterns.
//!
//! ```
//! let cfg = policy::parse("policies:\n  - name: models\n    type: model_filter\n    allowed_models: [gpt-4o]\n")
//!     .map_err(|d| policy::render_diagnostics("team.yaml", &d))?;
//! let decision = cfg.evaluate_request(&policy::RequestFacts { model: "gpt-3.5-turbo", texts: vec!["hi"] });
//! assert_eq!(decision.reason.as_deref(), Some("model_not_allowed"));
//!
//! let report = policy::lint("policies:\n  - {name: p, type: pii_detection, enabled: false}\n");
//! assert!(!report.has_errors());
//! assert_eq!(report.warnings().count(), 1);
//! # Ok::<(), String>(())
//! ```

mod config;
mod content;
pub mod corpus;
mod diagnostic;
mod eval;
mod glob;
mod lint;
pub mod pii;
pub mod pricing;
mod route;
#[cfg(test)]
mod schema_tests;
mod validate;
mod yaml;

use sha2::{Digest, Sha256};

pub use config::{
    Action, PiiEntity, Policy, PolicyConfig, ProviderKind, Providers, Rule, SecretKeyRef, Target,
};
pub use content::{ContentMatch, ContentMatcher};
pub use diagnostic::{Diagnostic, Severity, render_diagnostics};
pub use eval::{Decision, Evaluation, RequestFacts, Verdict, model_allowed};
pub use glob::glob_match;
pub use lint::{EnvRef, LintReport};
pub use pii::{
    AnswerFilter, CustomPattern, Entity, Finding, Redactor, Scanner, StreamRestorer, detect,
    redact, redact_request, request_texts,
};
pub use route::is_anthropic_model;

/// The JSON Schema (draft 2020-12) of the policy file format, for editors and
/// `kt policy schema`. `lint` remains the authority: it also checks what a schema cannot say
/// (regular expressions compile, names are unique, models are routable, fallbacks name other
/// targets, no literal secrets).
pub const SCHEMA: &str = include_str!("../schema/policy.schema.json");

/// Lints a policy file: every error and warning, sorted by position, and the configuration
/// when there is no error.
///
/// A YAML syntax error is reported alone (nothing after it can be trusted), as is an empty
/// file.
pub fn lint(src: &str) -> LintReport {
    match yaml::load(src) {
        Err(d) => LintReport {
            config: None,
            diagnostics: vec![d],
            env_refs: Vec::new(),
        },
        Ok(None) => LintReport {
            config: None,
            diagnostics: vec![
                Diagnostic::error(
                    1,
                    1,
                    "",
                    "the file is empty: expected a mapping with `policies`",
                )
                .with_suggestion("start the file with `policies:` followed by a list of policies"),
            ],
            env_refs: Vec::new(),
        },
        Ok(Some(root)) => {
            let v = validate::validate(&root);
            LintReport {
                config: v.config,
                diagnostics: v.diagnostics,
                env_refs: v.env_refs,
            }
        }
    }
}

/// Parses and validates a policy file (what the gateway runs).
///
/// On failure, returns every error found, sorted by position (warnings are left out: see
/// [`lint`]). A YAML syntax error is reported alone, as is an empty file.
pub fn parse(src: &str) -> Result<PolicyConfig, Vec<Diagnostic>> {
    let report = lint(src);
    match report.config {
        Some(c) => Ok(c),
        None => Err(report
            .diagnostics
            .into_iter()
            .filter(Diagnostic::is_error)
            .collect()),
    }
}

/// The SHA-256 of a policy file's bytes, lowercase hex: a stable config version/hash for
/// health endpoints, events and drift detection.
pub fn source_hash(src: &str) -> String {
    hex::encode(Sha256::digest(src.as_bytes()))
}
