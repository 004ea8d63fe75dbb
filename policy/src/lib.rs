//! `policy`: kt's policy language.
//!
//! A tenant's policy file (YAML, see the product spec, section 4) is parsed into a
//! source-positioned node tree (`yaml`), validated by hand into a [`PolicyConfig`]
//! (`validate`), and then used by the gateway to route requests ([`PolicyConfig::route`]) and
//! to decide on them ([`PolicyConfig::evaluate_request`]). Validation reports every problem in
//! a file at once, each with line, column, field path and, where possible, a suggestion
//! ([`Diagnostic`], [`render_diagnostics`]).
//!
//! The crate is pure: no IO, no async, no global state beyond lazily compiled patterns.
//!
//! ```
//! let cfg = policy::parse("policies:\n  - name: models\n    type: model_filter\n    allowed_models: [gpt-4o]\n")
//!     .map_err(|d| policy::render_diagnostics("team.yaml", &d))?;
//! let decision = cfg.evaluate_request(&policy::RequestFacts { model: "gpt-3.5-turbo", texts: vec!["hi"] });
//! assert_eq!(decision.reason.as_deref(), Some("model_not_allowed"));
//! # Ok::<(), String>(())
//! ```

mod config;
mod diagnostic;
mod eval;
mod glob;
pub mod pii;
mod route;
mod validate;
mod yaml;

use sha2::{Digest, Sha256};

pub use config::{
    Action, PiiEntity, Policy, PolicyConfig, ProviderKind, Providers, Rule, SecretKeyRef, Target,
};
pub use diagnostic::{Diagnostic, render_diagnostics};
pub use eval::{Decision, Evaluation, RequestFacts, Verdict, model_allowed};
pub use glob::glob_match;
pub use pii::{Finding, Redactor, StreamRestorer, detect, redact};
pub use route::is_anthropic_model;

/// Parses and validates a policy file.
///
/// On failure, returns every problem found, sorted by position. A YAML syntax error is
/// reported alone (nothing after it can be trusted), as is an empty file.
pub fn parse(src: &str) -> Result<PolicyConfig, Vec<Diagnostic>> {
    match yaml::load(src) {
        Err(d) => Err(vec![d]),
        Ok(None) => Err(vec![Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: "the file is empty: expected a mapping with `policies`".to_owned(),
            suggestion: Some(
                "start the file with `policies:` followed by a list of policies".to_owned(),
            ),
        }]),
        Ok(Some(root)) => validate::validate(&root),
    }
}

/// The SHA-256 of a policy file's bytes, lowercase hex: a stable config version/hash for
/// health endpoints, events and drift detection.
pub fn source_hash(src: &str) -> String {
    hex::encode(Sha256::digest(src.as_bytes()))
}
