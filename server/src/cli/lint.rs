//! `kt policy lint --file FILE [--json]`: validate policy configs, reporting
//! every problem at once with `file:line:column`. Exit 2 when any is invalid.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::Failure;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policy configuration files (exit 2 when any is invalid).
    Lint(LintArgs),
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
        vec![policy::Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("cannot read the file: {err}"),
            suggestion: None,
        }]
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

pub fn run(args: &LintArgs) -> Result<(), Failure> {
    let files = expand(&args.files)?;
    let mut failed = 0usize;
    let mut reports = Vec::new();
    let mut text = String::new();
    for file in &files {
        let name = file.display().to_string();
        match load(file) {
            Ok(_) => {
                reports.push(json!({"file": name, "ok": true, "diagnostics": []}));
                if !args.json {
                    println!("{name}: ok");
                }
            }
            Err(diags) => {
                failed += 1;
                text.push_str(&policy::render_diagnostics(&name, &diags));
                reports.push(json!({"file": name, "ok": false, "diagnostics": diags}));
            }
        }
    }
    if args.json {
        println!("{}", json!({"ok": failed == 0, "files": reports}));
    }
    if failed == 0 {
        Ok(())
    } else {
        let summary = format!(
            "{failed} of {} file(s) failed policy lint",
            args.files.len()
        );
        Err(Failure::Invalid(if args.json {
            summary
        } else {
            format!("{}\n{summary}", text.trim_end())
        }))
    }
}
