//! `kt policy lint`: every diagnostic of a policy file, errors and warnings.
//!
//! Errors (the file is refused by [`crate::parse`], `kt policy lint` exits 2):
//!
//! - YAML syntax errors, an empty file, more than one document, nesting or aliases too deep;
//! - unknown keys (with "did you mean"), fields of another policy type, duplicate keys;
//! - wrong value types, missing required fields, out-of-range values (zero or negative limits,
//!   limits above `u32::MAX`, non-finite numbers), empty names or lists;
//! - unknown policy types, actions, entities and provider kinds; actions a type does not
//!   accept (`redact` for a `content_filter`); `restore` without `action: redact`;
//!   `reviewers_see_prompt: true` without `action: escalate`; a second enabled
//!   `cost_limit`/`rate_limit`;
//! - a `content_filter` without any keyword or pattern, a blank keyword, or keywords too
//!   large to compile together;
//! - duplicate policy names, target ids and custom pattern names;
//! - custom patterns (and a `content_filter`'s `patterns`): a name that is not a lowercase
//!   word or clashes with a built-in entity, a regular expression that does not compile (with
//!   the `regex` error), is too large, or matches the empty string; `regex:` allowlist entries
//!   that do not compile;
//! - targets: an id that names no kind without `provider.kind`, invalid `base_url`, invalid
//!   environment variable names, `env` and `secret` both set, and an `openai`/`anthropic`
//!   target without `secret_key_ref` (demo targets need none);
//! - target `fallbacks`: not a list of target ids, an id that names no target of the file
//!   (with "did you mean" among the other targets' ids), the target's own id, an id listed
//!   twice (cycles between targets are fine: each target is tried at most once per request);
//! - a literal secret anywhere in the file (any key or value the credential detectors match:
//!   API keys, private-key blocks, JWTs), reported without echoing the value.
//!
//! Warnings (the file is valid):
//!
//! - a disabled policy (`enabled: false`);
//! - a `content_filter` keyword repeated (ignoring case and spacing), or one that looks like a
//!   regular expression (keywords match as plain text: such a keyword belongs in `patterns`);
//! - an exact model name in an enabled `allowed_models` that no target serves (when the file
//!   declares targets);
//! - an exact model name (in `allowed_models` or a target's `models`) without a known price;
//! - an environment variable named by `secret_key_ref.env` that is unset where lint runs: this
//!   crate does not read the environment, so the CLI adds these with
//!   [`LintReport::warn_unset_env`] (or from [`LintReport::env_refs`]).

use serde::Serialize;

use crate::config::PolicyConfig;
use crate::diagnostic::{Diagnostic, Severity};

/// An environment variable named by a `secret_key_ref.env`, with where it is named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvRef {
    /// The variable's name.
    pub var: String,
    /// Line of the name, 1-based.
    pub line: usize,
    /// Column of the name, 1-based.
    pub column: usize,
    /// Field path, e.g. `providers.targets[0].provider.secret_key_ref.env`.
    pub path: String,
}

/// The result of [`crate::lint`].
#[derive(Debug, Clone)]
pub struct LintReport {
    /// The configuration, when the file has no error (warnings allowed).
    pub config: Option<PolicyConfig>,
    /// Every error and warning, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    pub(crate) env_refs: Vec<EnvRef>,
}

impl LintReport {
    /// Whether the file has at least one error (`kt policy lint` exits 2).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// The environment variables named by `secret_key_ref.env` (valid names only), in file
    /// order. This crate does not read the environment; the CLI can check these, or call
    /// [`LintReport::warn_unset_env`].
    pub fn env_refs(&self) -> &[EnvRef] {
        &self.env_refs
    }

    /// Adds a warning for every `secret_key_ref.env` whose variable `is_set` says is unset
    /// (e.g. `|v| std::env::var_os(v).is_some()`), keeping the diagnostics sorted.
    pub fn warn_unset_env(&mut self, is_set: impl Fn(&str) -> bool) {
        for r in &self.env_refs {
            if !is_set(&r.var) {
                self.diagnostics.push(
                    Diagnostic::warning(
                        r.line,
                        r.column,
                        &r.path,
                        format!(
                            "environment variable `{}` is not set here: the gateway will have no key for this target",
                            r.var
                        ),
                    )
                    .with_suggestion(format!(
                        "export {}=… where the gateway runs (ignore this warning if lint runs elsewhere, e.g. in CI)",
                        r.var
                    )),
                );
            }
        }
        self.diagnostics
            .sort_by_key(|a| (a.line, a.column, a.severity));
    }
}
