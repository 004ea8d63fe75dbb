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
    /// A policy config file; repeat for several.
    #[arg(long = "file", required = true)]
    pub files: Vec<PathBuf>,
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

pub fn run(args: &LintArgs) -> Result<(), Failure> {
    let mut failed = 0usize;
    let mut reports = Vec::new();
    let mut text = String::new();
    for file in &args.files {
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
