//! Lint diagnostics: what went wrong, where, and what to do about it.
//!
//! A [`Diagnostic`] carries a [`Severity`], a 1-based line and column, the field path
//! (`policies[1].action`), a message and an optional suggestion. [`render_diagnostics`] prints them the way compilers
//! do, so editors and CI logs make them clickable; `Diagnostic` is also `Serialize` for
//! machine-readable (`--json`) output.

use std::fmt;

use serde::Serialize;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is invalid: `parse` refuses it and `kt policy lint` exits 2.
    #[default]
    Error,
    /// Worth a look, but the file is valid and works as written.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Diagnostic {
    /// Error (the file is invalid) or warning.
    pub severity: Severity,
    /// Line of the offending key or value, 1-based.
    pub line: usize,
    /// Column of the offending key or value (in characters), 1-based.
    pub column: usize,
    /// Field path, e.g. `policies[1].monthly_limit` (list indexes are 0-based); empty for
    /// problems with the document as a whole (syntax errors, an empty file).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it ("did you mean `block`?"), when we can tell.
    pub suggestion: Option<String>,
}

impl Diagnostic {
    /// An error at `line`:`column` about `path`.
    pub fn error(line: usize, column: usize, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            line,
            column,
            path: path.to_owned(),
            message: message.into(),
            suggestion: None,
        }
    }

    /// A warning at `line`:`column` about `path`.
    pub fn warning(
        line: usize,
        column: usize,
        path: &str,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(line, column, path, message)
        }
    }

    /// The same diagnostic with a suggestion.
    pub fn with_suggestion(mut self, help: impl Into<String>) -> Diagnostic {
        self.suggestion = Some(help.into());
        self
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// `LINE:COL: SEVERITY: PATH: MESSAGE`, then `  help: SUGGESTION` on its own line if any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: ", self.line, self.column, self.severity)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.suggestion {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Renders diagnostics compiler-style, one block per diagnostic:
///
/// ```text
/// FILE:LINE:COL: error: PATH: MESSAGE
///   help: SUGGESTION
/// ```
///
/// (`warning:` instead of `error:` for warnings.)///
/// The `help` line appears only when there is a suggestion; the `PATH: ` part is left out for
/// problems with the document as a whole. Every block ends with a newline.
pub fn render_diagnostics(file: &str, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(file);
        out.push(':');
        out.push_str(&d.to_string());
        out.push('\n');
    }
    out
}

/// The closest candidate to `input`, if one is close enough to be a likely typo
/// (Levenshtein distance ≤ 2, or Jaro–Winkler similarity ≥ 0.85). Case is ignored.
pub(crate) fn closest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input = input.to_ascii_lowercase();
    if input.is_empty() {
        return None;
    }
    candidates
        .iter()
        .map(|c| {
            let lev = strsim::levenshtein(&input, c);
            let jw = strsim::jaro_winkler(&input, c);
            (c, lev, jw)
        })
        .filter(|(c, lev, jw)| {
            // Very short words are only "close" when one edit apart.
            let max_lev = if c.len() <= 3 { 1 } else { 2 };
            *lev <= max_lev || *jw >= 0.85
        })
        .min_by(|a, b| a.1.cmp(&b.1).then(b.2.total_cmp(&a.2)))
        .map(|(c, _, _)| *c)
}

/// `` `a`, `b`, `c` `` for help texts.
pub(crate) fn one_of(candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "did you mean `x`? (expected one of …)", or just "expected one of …".
pub(crate) fn did_you_mean_one_of(input: &str, candidates: &[&str]) -> String {
    match closest(input, candidates) {
        Some(best) => format!(
            "did you mean `{best}`? (expected one of {})",
            one_of(candidates)
        ),
        None => format!("expected one of {}", one_of(candidates)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos() {
        let keys = ["name", "type", "enabled", "action", "monthly_limit"];
        assert_eq!(closest("monthy_limit", &keys), Some("monthly_limit"));
        assert_eq!(closest("enable", &keys), Some("enabled"));
        assert_eq!(closest("Name", &keys), Some("name"));
        assert_eq!(closest("zzzzzz", &keys), None);
        let types = ["pii_detection", "cost_limit", "model_filter", "rate_limit"];
        assert_eq!(closest("pii_detect", &types), Some("pii_detection"));
        assert_eq!(closest("ratelimit", &types), Some("rate_limit"));
        let actions = ["block", "redact", "warn", "escalate"];
        assert_eq!(closest("blok", &actions), Some("block"));
        assert_eq!(closest("allow", &actions), None);
    }

    #[test]
    fn renders_compiler_style() {
        let diags = vec![
            Diagnostic::error(
                3,
                5,
                "policies[0].monthy_limit",
                "unknown field `monthy_limit`",
            )
            .with_suggestion("did you mean `monthly_limit`?"),
            Diagnostic::error(1, 1, "", "the file is empty"),
            Diagnostic::warning(7, 14, "policies[2].enabled", "policy `x` is disabled"),
        ];
        assert_eq!(
            render_diagnostics("team.yaml", &diags),
            "team.yaml:3:5: error: policies[0].monthy_limit: unknown field `monthy_limit`\n  \
             help: did you mean `monthly_limit`?\nteam.yaml:1:1: error: the file is empty\n\
             team.yaml:7:14: warning: policies[2].enabled: policy `x` is disabled\n"
        );
        let json = serde_json::to_value(&diags[2]).unwrap();
        assert_eq!(json["severity"], "warning");
        assert_eq!(
            serde_json::to_value(&diags[1]).unwrap()["severity"],
            "error"
        );
    }
}
