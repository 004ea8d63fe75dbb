//! kt's data plane: a gateway worker for one team (or a few).
//!
//! A request flows: router → [`proxy`] (key cache → policies → rate limit →
//! route to a [`providers`] target) → the answer is relayed to the caller,
//! streams chunk by chunk, while usage is read → one event goes to the
//! [`spool`], which batches events into the shared database. Nothing on this
//! path waits on the database in the common case.

pub mod budget;
pub mod error;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod prices;
pub mod providers;
pub mod proxy;
pub mod reload;
pub mod rewrite;
pub mod runtime;
pub mod spool;
pub mod translate;
pub mod usage;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy::PolicyConfig;
use serde_json::json;
use store::Db;

use crate::budget::Budgets;
use crate::keys::KeyCache;
use crate::limiter::RateLimiter;
use crate::metrics::Metrics;
use crate::prices::Prices;
use crate::runtime::{ProviderContext, Runtime};
use crate::spool::Spool;

/// The version reported by `/health` and the fleet view.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Largest request body accepted (chat requests with images can be large).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence from a provider (between streamed chunks, or before a
/// complete answer) before the request fails with 504.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// What a gateway worker runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Name shown in the fleet view (default: the config file's stem).
    pub name: String,
    pub config: PolicyConfig,
    /// Hash of the config source (reported for drift detection).
    pub config_hash: String,
    /// Team ids this gateway serves; `None` = every team's keys.
    pub serve_teams: Option<Vec<String>>,
    /// The config file, watched for changes (hot reload); `None` = fixed.
    pub config_path: Option<std::path::PathBuf>,
    /// This gateway's event spool (a write-ahead log of events).
    pub spool_dir: std::path::PathBuf,
    /// Redis for fleet-wide rate limits (`KT_REDIS_URL`); default: the database.
    pub redis_url: Option<String>,
    /// Opens console-stored provider secrets (`secret_key_ref.secret`).
    pub master_key: Option<store::crypto::MasterKey>,
    /// The environment this gateway serves (reported for drift).
    pub environment: Option<String>,
    /// Run the team's current configuration version for the environment
    /// from the database (`kt gateway run --team T --environment E`),
    /// switching to each new current version within seconds.
    pub managed: Option<Managed>,
}

/// A managed gateway's source of configuration.
#[derive(Debug, Clone)]
pub struct Managed {
    pub team_id: String,
    pub environment: String,
}

/// Shared state of a running gateway.
pub struct Gateway {
    pub name: String,
    pub gateway_id: String,
    runtime: RwLock<Arc<Runtime>>,
    /// Secrets and provider defaults the runtime was built with.
    provider_context: RwLock<Arc<ProviderContext>>,
    master_key: Option<store::crypto::MasterKey>,
    reload_error: Mutex<Option<String>>,
    config_path: Option<std::path::PathBuf>,
    managed: Option<Managed>,
    pub serve_teams: Option<HashSet<String>>,
    pub keys: KeyCache,
    pub http: reqwest::Client,
    pub spool: Spool,
    pub metrics: Metrics,
    pub limiter: Arc<RateLimiter>,
    pub budgets: Arc<Budgets>,
    pub prices: Arc<Prices>,
    db: Db,
    started: Instant,
}

impl Gateway {
    /// The config in force now (take it once per request).
    pub fn runtime(&self) -> Arc<Runtime> {
        match self.runtime.read() {
            Ok(rt) => rt.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The secrets and provider defaults targets are built with now.
    pub fn provider_context(&self) -> Arc<ProviderContext> {
        match self.provider_context.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The team whose own secrets this gateway uses (when it serves one).
    fn secrets_team(&self) -> Option<String> {
        let teams = self.serve_teams.as_ref()?;
        (teams.len() == 1)
            .then(|| teams.iter().next().cloned())
            .flatten()
    }

    /// Re-reads secrets and provider defaults; when they changed, rebuilds
    /// the providers of the running config (a rotated key takes effect).
    pub async fn refresh_providers(&self) {
        let team = self.secrets_team();
        let fresh = match ProviderContext::load(&self.db, self.master_key.as_ref(), team.as_deref())
            .await
        {
            Ok(fresh) => fresh,
            Err(err) => {
                tracing::warn!(error = %err, "re-reading provider secrets failed; keeping the current ones");
                return;
            }
        };
        if *self.provider_context() == fresh {
            return;
        }
        let fresh = Arc::new(fresh);
        let current = self.runtime();
        self.swap_runtime(Runtime::new(
            current.config.clone(),
            current.hash.clone(),
            &fresh,
        ));
        match self.provider_context.write() {
            Ok(mut c) => *c = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        tracing::info!("provider secrets or defaults changed; targets rebuilt");
    }

    pub(crate) fn swap_runtime(&self, runtime: Runtime) {
        let runtime = Arc::new(runtime);
        match self.runtime.write() {
            Ok(mut rt) => *rt = runtime,
            Err(poisoned) => *poisoned.into_inner() = runtime,
        }
    }

    /// Why the last attempt to reload the config failed, if it did.
    pub fn reload_error(&self) -> Option<String> {
        self.reload_error.lock().ok().and_then(|e| e.clone())
    }

    pub(crate) fn set_reload_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.reload_error.lock() {
            *e = error;
        }
    }

    /// The master key, when the gateway was given one (console secrets,
    /// prompts held for reviewers).
    pub(crate) fn master_key(&self) -> Option<&store::crypto::MasterKey> {
        self.master_key.as_ref()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

/// A gateway bound to its port, ready to serve.
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    spool_task: spool::WriterDone,
}

/// Registers the gateway, loads its keys and binds `listen`. Fails with a
/// clear message when the database or the port is unavailable.
pub async fn start(db: Db, settings: Settings, listen: &str) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}: is the port already in use?"))?;
    let addr = listener.local_addr()?;

    let secrets_team = match &settings.serve_teams {
        Some(teams) if teams.len() == 1 => teams.first().cloned(),
        _ => None,
    };
    let provider_context =
        ProviderContext::load(&db, settings.master_key.as_ref(), secrets_team.as_deref())
            .await
            .context("loading provider secrets and defaults")?;
    let runtime = Runtime::new(settings.config, settings.config_hash, &provider_context);
    let demo = runtime.has_demo();
    let gateway_id = store::gateways::register(
        &db,
        &store::gateways::Registration {
            name: settings.name.clone(),
            teams: settings.serve_teams.clone().unwrap_or_default(),
            address: format!("http://{addr}"),
            version: VERSION.to_owned(),
            config_hash: runtime.hash.clone(),
            cost_limit_micros: runtime.config.cost_limit_micros(),
            environment: settings.environment.clone(),
            demo,
        },
    )
    .await
    .context("registering the gateway in the database")?;
    let keys = KeyCache::load(db.clone())
        .await
        .context("loading gateway keys")?;
    let http = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let prices = Arc::new(
        Prices::load(db.clone())
            .await
            .context("loading the price catalog")?,
    );
    let shared_counter = match &settings.redis_url {
        Some(url) => crate::limiter::SharedCounter::redis(url).await?,
        None => crate::limiter::SharedCounter::Db(db.clone()),
    };
    let limiter = Arc::new(RateLimiter::new(shared_counter));
    // Budget leases belong to this process (a restart starts afresh).
    let budgets = Arc::new(
        Budgets::load(db.clone(), store::new_id())
            .await
            .context("loading team wallets")?,
    );
    let stored_budgets = budgets.clone();
    let (spool, spool_task) = Spool::start(
        db.clone(),
        settings.spool_dir,
        Some(budgets.holder().to_owned()),
        Box::new(move |events| stored_budgets.stored(events)),
    )?;
    let gateway = Arc::new(Gateway {
        name: settings.name,
        gateway_id,
        runtime: RwLock::new(Arc::new(runtime)),
        provider_context: RwLock::new(Arc::new(provider_context)),
        master_key: settings.master_key,
        reload_error: Mutex::new(None),
        config_path: settings.config_path,
        managed: settings.managed,
        serve_teams: settings.serve_teams.map(|t| t.into_iter().collect()),
        keys,
        http,
        spool,
        metrics: Metrics::default(),
        limiter,
        budgets,
        prices,
        db,
        started: Instant::now(),
    });
    Ok(Running {
        addr,
        gateway,
        listener,
        spool_task,
    })
}

impl Running {
    /// Serves until `shutdown` resolves, then drains in-flight requests and
    /// writes every pending event.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let gw = self.gateway;
        let mut background = vec![
            tokio::spawn(gw.keys.clone().refresh_forever()),
            tokio::spawn(heartbeat(gw.db.clone(), gw.gateway_id.clone())),
            tokio::spawn(gw.budgets.clone().refresh_forever()),
            tokio::spawn(gw.limiter.clone().sync_forever()),
            tokio::spawn(refresh_providers_forever(gw.clone())),
            tokio::spawn(gw.prices.clone().refresh_forever()),
        ];
        if let Some(managed) = gw.managed.clone() {
            background.push(tokio::spawn(reload::follow(gw.clone(), managed)));
        }
        if let Some(path) = gw.config_path.clone() {
            background.push(tokio::spawn(reload::watch(gw.clone(), path)));
        }
        let app = router(gw.clone());
        // TCP_NODELAY: a streamed answer's small chunks (and the final one)
        // go out at once instead of waiting on Nagle's algorithm.
        use axum::serve::ListenerExt as _;
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        for task in background {
            task.abort();
        }
        // Dropping the last Spool lets the writer flush and finish.
        let budgets = gw.budgets.clone();
        drop(gw);
        match tokio::time::timeout(Duration::from_secs(10), self.spool_task).await {
            // Every event is stored: what the leases still hold is unused.
            Ok(Ok(())) => budgets.release().await,
            Ok(Err(_)) => tracing::error!(
                "the event writer stopped early; unstored events stay in the spool and are stored at the next start"
            ),
            Err(_) => tracing::error!("timed out writing the last events"),
        }
        served.context("serving HTTP")
    }
}

/// How often secrets and provider defaults are re-read.
const PROVIDERS_REFRESH_EVERY: Duration = Duration::from_secs(10);

async fn refresh_providers_forever(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(PROVIDERS_REFRESH_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        gw.refresh_providers().await;
    }
}

async fn heartbeat(db: Db, gateway_id: String) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tick.tick().await;
        if let Err(err) = store::gateways::heartbeat(&db, &gateway_id).await {
            tracing::warn!(error = %err, "heartbeat failed");
        }
    }
}

/// The gateway's HTTP routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/v1/messages", post(proxy::messages))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gw)
}

async fn health(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let config_error = gw.reload_error();
    let database = tokio::time::timeout(Duration::from_secs(1), gw.db.is_ready())
        .await
        .unwrap_or(false);
    let degraded = config_error.is_some() || !database;
    Json(json!({
        "status": if degraded { "degraded" } else { "ok" },
        // Without the database the gateway keeps serving from its caches
        // (keys, prices, budget leases) and spools events locally.
        "database": if database { "reachable" } else { "unreachable (serving from cache; events are spooled)" },
        "rate_limits": gw.limiter.backend(),
        "name": gw.name,
        "gateway_id": gw.gateway_id,
        "version": VERSION,
        "config_hash": gw.runtime().hash,
        "config_error": config_error,
        "spool_depth": gw.spool.depth(),
        "uptime_seconds": gw.started.elapsed().as_secs(),
    }))
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    if gw.db.is_ready().await {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable or not migrated",
        )
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    gw.metrics
        .spool_depth
        .set(i64::try_from(gw.spool.depth()).unwrap_or(i64::MAX));
    gw.metrics
        .budget_leased_micros
        .set(gw.budgets.leased_micros());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics.encode(),
    )
}

/// The models this gateway routes: every model named in targets and in the
/// model allowlist (globs excluded).
async fn models(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let rt = gw.runtime();
    let mut names: Vec<String> = rt
        .config
        .providers
        .targets
        .iter()
        .flat_map(|t| t.models.iter().cloned())
        .chain(rt.config.enabled_policies().flat_map(|p| match &p.rule {
            policy::Rule::ModelFilter { allowed_models, .. } => allowed_models.clone(),
            _ => Vec::new(),
        }))
        .filter(|m| !m.contains('*'))
        .collect();
    names.sort();
    names.dedup();
    // `created` is required by OpenAI's schema; kt reports when it started
    // serving the model (this process's start).
    let created = (store::now_ms() / 1000)
        .saturating_sub(i64::try_from(gw.started.elapsed().as_secs()).unwrap_or(0));
    let data: Vec<_> = names
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": "kt"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}
