//! `kt policy lint --file FILE [--json]`: validate policy configs, reporting
//! every problem at once with `file:line:column`; exit 2 when any file has an
//! error (warnings alone exit 0). `kt policy schema`: the JSON Schema of the
//! format, for editors.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::Failure;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy configuration files (exit 2 when any has an error).
    Lint(LintArgs),
    /// Print the JSON Schema of the policy format (for editors and CI tools).
    Schema,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// A policy config file or a glob (`'configs/teams/*.yaml'`); repeat for several.
    #[arg(long = "file", required = true)]
    pub files: Vec<String>,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Reads and parses a policy file, returning rendered diagnostics on failure.
pub fn load(
    path: &std::path::Path,
) -> Result<(String, policy::PolicyConfig), Vec<policy::Diagnostic>> {
    let src = std::fs::read_to_string(path).map_err(|err| {
        vec![policy::Diagnostic::error(
            1,
            1,
            "",
            format!("cannot read the file: {err}"),
        )]
    })?;
    let config = policy::parse(&src)?;
    Ok((src, config))
}

/// Expands `--file` arguments: globs to the files they match (sorted), plain
/// paths as they are. A glob that matches nothing is an error.
fn expand(patterns: &[String]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for pattern in patterns {
        if !pattern.contains(['*', '?', '[']) {
            files.push(PathBuf::from(pattern));
            continue;
        }
        let matches = glob::glob(pattern).map_err(|e| {
            Failure::Invalid(format!(
                "error: --file `{pattern}` is not a valid glob: {e}"
            ))
        })?;
        let mut found: Vec<PathBuf> = matches
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if found.is_empty() {
            return Err(Failure::Invalid(format!(
                "error: --file `{pattern}` matches no file"
            )));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Lints one file: errors and warnings, including "environment variable not
/// set here" for every `secret_key_ref.env` the file names.
fn lint_file(path: &std::path::Path) -> Vec<policy::Diagnostic> {
    match std::fs::read_to_string(path) {
        Ok(src) => {
            let mut report = policy::lint(&src);
            report.warn_unset_env(|var| std::env::var_os(var).is_some());
            report.diagnostics
        }
        Err(err) => vec![policy::Diagnostic::error(
            1,
            1,
            "",
            format!("cannot read the file: {err}"),
        )],
    }
}

pub fn run(args: &LintArgs) -> Result<(), Failure> {
    let files = expand(&args.files)?;
    let mut failed = 0usize;
    let mut reports = Vec::new();
    // Files that pass (maybe with warnings) are reported on stdout; files
    // with errors on stderr, with the failure.
    let mut passed = String::new();
    let mut text = String::new();
    for file in &files {
        let name = file.display().to_string();
        let diagnostics = lint_file(file);
        let ok = !diagnostics.iter().any(policy::Diagnostic::is_error);
        if !ok {
            failed += 1;
            text.push_str(&policy::render_diagnostics(&name, &diagnostics));
        } else if diagnostics.is_empty() {
            passed.push_str(&format!("{name}: ok\n"));
        } else {
            passed.push_str(&policy::render_diagnostics(&name, &diagnostics));
        }
        reports.push(json!({"file": name, "ok": ok, "diagnostics": diagnostics}));
    }
    if args.json {
        println!("{}", json!({"ok": failed == 0, "files": reports}));
    } else {
        print!("{passed}");
    }
    if failed == 0 {
        Ok(())
    } else {
        let summary = format!("{failed} of {} file(s) failed policy lint", files.len());
        Err(Failure::Invalid(if args.json {
            summary
        } else {
            format!("{}\n{summary}", text.trim_end())
        }))
    }
}
