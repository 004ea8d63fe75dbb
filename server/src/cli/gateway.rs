//! `kt gateway run`: a gateway worker enforcing one policy config.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::Failure;
use crate::settings::DbArgs;

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Run a gateway worker.
    Run(GatewayRunArgs),
}

#[derive(Debug, Args)]
pub struct GatewayRunArgs {
    /// The team's policy config (YAML, see `kt policy lint`), reloaded when
    /// it changes. Without it the gateway is *managed*: give one --team and
    /// --environment, and it runs that team's current configuration version
    /// from the database (see POST /v1/configurations).
    #[arg(long, required_unless_present = "environment")]
    pub policy_config: Option<PathBuf>,
    /// The environment this gateway serves (production, staging, …): with
    /// --policy-config, reported so the fleet view can flag drift from the
    /// environment's current version; without it, the version to run.
    #[arg(long)]
    pub environment: Option<String>,
    /// Port to listen on, on 127.0.0.1 (see --listen for other interfaces).
    #[arg(long, conflicts_with = "listen")]
    pub port: Option<u16>,
    /// Address to listen on, HOST:PORT.
    #[arg(long)]
    pub listen: Option<String>,
    /// Name in the fleet view (default: the config file's stem, e.g. team-eng).
    #[arg(long)]
    pub name: Option<String>,
    /// Serve only these teams' keys (slug; repeatable). Default: every team.
    #[arg(long = "team")]
    pub teams: Vec<String>,
    /// Redis for fleet-wide rate limits (default: counted in the database).
    #[arg(long, env = "KT_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Stop when standard input closes: `kt serve`'s local runner starts
    /// gateways this way, so they stop with it.
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

/// The gateway's name from its config file: `configs/teams/team-eng.yaml` → `team-eng`.
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gateway".to_owned())
}

/// A policy config read and validated from a file (or, for a managed
/// gateway, from the database: no path).
pub struct LoadedConfig {
    pub path: Option<PathBuf>,
    pub hash: String,
    pub config: policy::PolicyConfig,
}

/// Reads and validates a policy config; invalid input (exit 2) with every
/// diagnostic when it is not valid.
pub fn load_config(path: &Path) -> Result<LoadedConfig, Failure> {
    let (src, config) = super::lint::load(path).map_err(|diags| {
        Failure::Invalid(format!(
            "{}\nthe gateway did not start: fix the policy config above (check it with `kt policy lint --file {}`)",
            policy::render_diagnostics(&path.display().to_string(), &diags).trim_end(),
            path.display()
        ))
    })?;
    Ok(LoadedConfig {
        path: Some(path.to_owned()),
        hash: policy::source_hash(&src),
        config,
    })
}

/// How to run a gateway worker, besides its config.
pub struct WorkerOptions<'a> {
    /// Name in the fleet view.
    pub name: String,
    /// Serve only these teams' keys (slugs); empty = every team.
    pub team_slugs: &'a [String],
    /// HOST:PORT to listen on.
    pub listen: &'a str,
    /// Redis for fleet-wide rate limits; `None` = the database.
    pub redis_url: Option<String>,
    /// Opens console-stored provider secrets.
    pub master_key: Option<store::crypto::MasterKey>,
    /// The environment served (and, when `loaded` has no path, followed).
    pub environment: Option<String>,
}

/// Resolves team slugs and starts the worker.
pub async fn start(
    db: store::Db,
    spool_dir: &Path,
    loaded: LoadedConfig,
    options: WorkerOptions<'_>,
) -> Result<gateway::Running, Failure> {
    let WorkerOptions {
        name,
        team_slugs,
        listen,
        redis_url,
        master_key,
        environment,
    } = options;
    let mut team_ids = Vec::new();
    for slug in team_slugs {
        let team = store::teams::by_slug(&db, slug)
            .await
            .context("looking up --team")?
            .ok_or_else(|| {
                Failure::Invalid(format!(
                    "--team {slug}: no team with this slug; create it first (POST /v1/teams)"
                ))
            })?;
        team_ids.push(team.team_id);
    }
    let managed = match (&loaded.path, &environment, team_ids.as_slice()) {
        (None, Some(env), [team]) => Some(gateway::Managed {
            team_id: team.clone(),
            environment: env.clone(),
        }),
        _ => None,
    };
    let settings = gateway::Settings {
        spool_dir: spool_dir.join(&name),
        name,
        config: loaded.config,
        config_hash: loaded.hash,
        serve_teams: (!team_ids.is_empty()).then_some(team_ids),
        config_path: loaded.path,
        redis_url,
        master_key,
        environment,
        managed,
    };
    Ok(gateway::start(db, settings, listen).await?)
}

/// A managed gateway's starting config: its team's current version for the
/// environment (the worker then follows newer ones).
async fn managed_config(db: &store::Db, args: &GatewayRunArgs) -> Result<LoadedConfig, Failure> {
    let (Some(env), [slug]) = (&args.environment, args.teams.as_slice()) else {
        return Err(Failure::Invalid(
            "error: a managed gateway (no --policy-config) serves one team in one environment: give exactly one --team and --environment".to_owned(),
        ));
    };
    let team = store::teams::by_slug(db, slug)
        .await
        .context("looking up --team")?
        .ok_or_else(|| {
            Failure::Invalid(format!(
                "--team {slug}: no team with this slug; create it first (POST /v1/teams)"
            ))
        })?;
    let version = store::configs::current(db, &team.team_id, env)
        .await
        .context("loading the current configuration version")?
        .ok_or_else(|| {
            Failure::Invalid(format!(
                "team {slug} has no configuration for environment {env}: add one (POST /v1/configurations, or a Git repository mapped to {env})"
            ))
        })?;
    let config = policy::parse(&version.content).map_err(|diags| {
        Failure::Invalid(format!(
            "{}\nthe current configuration version of {slug}/{env} does not pass this kt's lint",
            policy::render_diagnostics(&format!("version {}", version.version), &diags).trim_end()
        ))
    })?;
    Ok(LoadedConfig {
        path: None,
        hash: version.content_hash,
        config,
    })
}

pub async fn run(args: GatewayRunArgs) -> Result<(), Failure> {
    let listen = match (&args.listen, args.port) {
        (Some(listen), _) => listen.clone(),
        (None, Some(port)) => format!("127.0.0.1:{port}"),
        (None, None) => {
            return Err(Failure::Invalid(
                "error: give the gateway an address: --port N or --listen HOST:PORT".to_owned(),
            ));
        }
    };
    if let Some(env) = &args.environment {
        store::configs::validate_environment(env)
            .map_err(|e| Failure::Invalid(format!("--environment: {e}")))?;
    }
    let (loaded, db) = match &args.policy_config {
        // Validate the config before touching the database.
        Some(path) => {
            let loaded = load_config(path)?;
            (loaded, args.db.connect().await?)
        }
        None => {
            let db = args.db.connect().await?;
            (managed_config(&db, &args).await?, db)
        }
    };
    let master_key = args.db.gateway_master_key(&db).await?;
    let name = match (&args.name, &args.policy_config, &args.environment) {
        (Some(name), _, _) => name.clone(),
        (None, Some(path), _) => default_name(path),
        (None, None, Some(env)) => format!("{}-{env}", args.teams.join("-")),
        (None, None, None) => "gateway".to_owned(),
    };
    let running = start(
        db,
        &args.db.data_dir.join("spool"),
        loaded,
        WorkerOptions {
            name,
            team_slugs: &args.teams,
            listen: &listen,
            redis_url: args.redis_url.clone(),
            master_key,
            environment: args.environment.clone(),
        },
    )
    .await?;
    println!("kt gateway: listening on http://{}", running.addr);
    let exit_with_stdin = args.exit_with_stdin;
    running
        .serve(async move {
            if exit_with_stdin {
                tokio::select! {
                    () = super::shutdown_signal() => {}
                    () = stdin_closed() => tracing::info!("standard input closed: stopping"),
                }
            } else {
                super::shutdown_signal().await;
            }
        })
        .await?;
    Ok(())
}

/// Resolves when standard input reaches its end (the parent is gone).
async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        use std::io::Read as _;
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    })
    .await;
}
