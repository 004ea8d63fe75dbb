//! `kt doctor [--policy-config FILE …] [--json]`: diagnoses an installation —
//! the database (reachable, migrated), the master key (present, opens every
//! stored secret), policy configs (lint clean, their env vars set, their
//! console secrets stored), the gateway fleet (healthy), and the API
//! (reachable with `KT_API_TOKEN`). Exit 1 naming each failed check.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::json;

use super::Failure;
use crate::settings::DbArgs;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Policy configs to check (lint, env vars, stored secrets); repeatable.
    #[arg(long = "policy-config")]
    pub policy_configs: Vec<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// The control-plane API to check.
    #[arg(long, env = "KT_API_URL", default_value = "http://127.0.0.1:3000")]
    pub api_url: String,
    /// An access token for the API check (`kt admin create-token`).
    #[arg(long, env = "KT_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    status: Status,
    detail: String,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
        });
    }

    fn failed(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name.as_str())
            .collect()
    }
}

pub async fn run(args: DoctorArgs) -> Result<(), Failure> {
    let mut report = Report::default();
    let db = check_database(&args, &mut report).await;
    if let Some(db) = &db {
        check_master_key(&args, db, &mut report).await;
        check_fleet(db, &mut report).await;
    }
    for path in &args.policy_configs {
        check_config(path, db.as_ref(), &mut report).await;
    }
    check_api(&args, &mut report).await;

    let failed = report.failed();
    if args.json {
        let doc = json!({"ok": failed.is_empty(), "failed": failed, "checks": report.checks});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for c in &report.checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            println!("[{mark}] {}: {}", c.name, c.detail);
        }
        if failed.is_empty() {
            println!("kt doctor: all checks passed");
        } else {
            println!(
                "kt doctor: {} check(s) failed: {}",
                failed.len(),
                failed.join(", ")
            );
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "{} check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        )))
    }
}

async fn check_database(args: &DoctorArgs, report: &mut Report) -> Option<store::Db> {
    let url = args.db.database_url();
    let shown = store::redact_url(&url);
    if args.db.database_url.is_none() {
        let file = args.db.data_dir.join("kt.db");
        if !file.exists() {
            report.add(
                "database",
                Status::Fail,
                format!("no database at {}: start `kt serve` (or set KT_DATA_DIR / KT_DATABASE_URL to the installation's)", file.display()),
            );
            return None;
        }
    }
    let connected = tokio::time::timeout(Duration::from_secs(10), store::Db::connect(&url)).await;
    let db = match connected {
        Ok(Ok(db)) => db,
        Ok(Err(err)) => {
            report.add(
                "database",
                Status::Fail,
                format!("cannot connect to {shown}: {err}; check KT_DATABASE_URL (or KT_DATA_DIR)"),
            );
            return None;
        }
        Err(_) => {
            report.add(
                "database",
                Status::Fail,
                format!("{shown} did not answer within 10 s"),
            );
            return None;
        }
    };
    if db.is_ready().await {
        report.add(
            "database",
            Status::Ok,
            format!("{shown} reachable and migrated"),
        );
    } else {
        report.add(
            "database",
            Status::Fail,
            format!("{shown} is reachable but not migrated: start `kt serve` once (it applies migrations)"),
        );
    }
    Some(db)
}

async fn check_master_key(args: &DoctorArgs, db: &store::Db, report: &mut Report) {
    let env_set = std::env::var("KT_MASTER_KEY").is_ok_and(|v| !v.trim().is_empty());
    let dev_file = args.db.data_dir.join(crate::settings::DEV_MASTER_KEY_FILE);
    if !env_set && !dev_file.exists() {
        report.add(
            "master key",
            Status::Fail,
            "KT_MASTER_KEY is not set and there is no development key: set KT_MASTER_KEY (base64 of 32 bytes)",
        );
        return;
    }
    let key = match args.db.master_key() {
        Ok((key, _)) => key,
        Err(Failure::Invalid(msg)) => {
            report.add("master key", Status::Fail, msg);
            return;
        }
        Err(Failure::Runtime(err)) => {
            report.add("master key", Status::Fail, format!("{err:#}"));
            return;
        }
    };
    let source = if env_set {
        "KT_MASTER_KEY".to_owned()
    } else {
        format!("development key {}", dev_file.display())
    };
    if let Err(err) = store::secrets::check_master_key(db, &key).await {
        report.add("master key", Status::Fail, format!("{source}: {err}"));
        return;
    }
    match store::secrets::verify_all(db, &key).await {
        Ok(n) => {
            let status = if env_set { Status::Ok } else { Status::Warn };
            let dev = if env_set {
                ""
            } else {
                " (a development key: set KT_MASTER_KEY in production)"
            };
            report.add(
                "master key",
                status,
                format!("{source} opens all {n} stored secret(s){dev}"),
            );
        }
        Err(err) => report.add("master key", Status::Fail, format!("{source}: {err}")),
    }
}

async fn check_fleet(db: &store::Db, report: &mut Report) {
    let gateways = match db.scoped(store::Scope::Org).list_gateways().await {
        Ok(g) => g,
        Err(err) => {
            report.add(
                "gateways",
                Status::Fail,
                format!("cannot list the fleet: {err}"),
            );
            return;
        }
    };
    if gateways.is_empty() {
        report.add("gateways", Status::Skip, "no gateway has registered yet");
        return;
    }
    let desired = match db.scoped(store::Scope::Org).desired_config_hashes().await {
        Ok(d) => d,
        Err(err) => {
            report.add(
                "drift",
                Status::Fail,
                format!("cannot read the desired configurations: {err}"),
            );
            Vec::new()
        }
    };
    let now = store::now_ms();
    let mut healthy = 0;
    for g in &gateways {
        let status = g.status(now);
        if status != "down"
            && let Some(want) = g.desired_hash(&desired)
            && want != g.config_hash
        {
            report.add(
                format!("gateway {} drift", g.name),
                Status::Fail,
                format!(
                    "runs config {} but its environment's current version is {}: restart it or run it managed (--team --environment without --policy-config)",
                    short(&g.config_hash),
                    short(want)
                ),
            );
        }
        if status == "healthy" {
            healthy += 1;
            continue;
        }
        let seen = store::format_ms(g.last_seen_at);
        report.add(
            format!("gateway {}", g.name),
            if status == "down" {
                Status::Fail
            } else {
                Status::Warn
            },
            format!("{status}: last heartbeat {seen} from {}", g.address),
        );
    }
    report.add(
        "gateways",
        Status::Ok,
        format!("{healthy} of {} healthy", gateways.len()),
    );
}

/// The first 12 characters of a hash.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

async fn check_config(path: &std::path::Path, db: Option<&store::Db>, report: &mut Report) {
    let name = format!("config {}", path.display());
    let src = match std::fs::read_to_string(path) {
        Ok(src) => src,
        Err(err) => {
            report.add(name, Status::Fail, format!("cannot read: {err}"));
            return;
        }
    };
    let lint = policy::lint(&src);
    if lint.has_errors() {
        let text = policy::render_diagnostics(&path.display().to_string(), &lint.diagnostics);
        report.add(
            name,
            Status::Fail,
            format!(
                "lint errors (fix them; `kt policy lint --file {}`):\n{}",
                path.display(),
                text.trim_end()
            ),
        );
        return;
    }
    let unset: Vec<&str> = lint
        .env_refs()
        .iter()
        .map(|r| r.var.as_str())
        .filter(|v| std::env::var_os(v).is_none())
        .collect();
    let mut problems = Vec::new();
    if !unset.is_empty() {
        problems.push(format!(
            "environment variable(s) not set: {} (secret_key_ref.env)",
            unset.join(", ")
        ));
    }
    if let (Some(config), Some(db)) = (&lint.config, db) {
        let stored: Vec<String> = db
            .scoped(store::Scope::Org)
            .list_secrets()
            .await
            .map(|rows| rows.into_iter().map(|s| s.name).collect())
            .unwrap_or_default();
        let missing: Vec<&str> = config
            .providers
            .targets
            .iter()
            .filter_map(|t| match &t.secret_key_ref {
                Some(policy::SecretKeyRef::Secret(name)) => Some(name.as_str()),
                _ => None,
            })
            .filter(|name| !stored.iter().any(|s| s == name))
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "secret(s) not stored: {} (secret_key_ref.secret; POST /v1/secrets)",
                missing.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        let warnings = lint.warnings().count();
        report.add(
            name,
            Status::Ok,
            format!("lint clean ({warnings} warning(s)); referenced keys available"),
        );
    } else {
        report.add(name, Status::Fail, problems.join("; "));
    }
}

async fn check_api(args: &DoctorArgs, report: &mut Report) {
    let Some(token) = &args.api_token else {
        report.add(
            "api",
            Status::Skip,
            format!(
                "KT_API_TOKEN is not set: set it to check the API at {}",
                args.api_url
            ),
        );
        return;
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(err) => {
            report.add("api", Status::Fail, err.to_string());
            return;
        }
    };
    let url = format!("{}/v1/teams", args.api_url.trim_end_matches('/'));
    match client.get(&url).bearer_auth(token).send().await {
        Ok(r) if r.status().is_success() => {
            report.add(
                "api",
                Status::Ok,
                format!("{} answers with this token", args.api_url),
            );
        }
        Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => report.add(
            "api",
            Status::Fail,
            format!(
                "{} refused KT_API_TOKEN (401): create one with `kt admin create-token`",
                args.api_url
            ),
        ),
        Ok(r) => report.add(
            "api",
            Status::Fail,
            format!("{url} answered {}", r.status()),
        ),
        Err(err) => report.add(
            "api",
            Status::Fail,
            format!(
                "cannot reach {}: {err}; is `kt serve` running? (KT_API_URL)",
                args.api_url
            ),
        ),
    }
}
