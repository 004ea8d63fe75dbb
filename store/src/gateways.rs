//! Gateway registry: each gateway worker registers at start-up and
//! heartbeats, so the fleet view can tell healthy from stale and down.

use serde::Serialize;

use crate::{Db, Result, now_ms, with_pool};

/// A heartbeat older than this marks a gateway stale.
pub const STALE_AFTER_MS: i64 = 30_000;
/// A heartbeat older than this marks a gateway down.
pub const DOWN_AFTER_MS: i64 = 120_000;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct GatewayRow {
    pub gateway_id: String,
    pub name: String,
    /// Comma-separated team ids this gateway serves; empty = every team.
    pub teams: String,
    pub address: String,
    pub version: String,
    pub config_hash: String,
    pub demo: bool,
    pub started_at: i64,
    pub last_seen_at: i64,
    /// The monthly `cost_limit` of the config it runs (micro-USD), if any.
    pub cost_limit_micros: Option<i64>,
    /// The environment it serves (managed gateways, and file-based ones
    /// started with `--environment`): its desired config is that
    /// environment's current version.
    pub environment: Option<String>,
}

impl GatewayRow {
    pub fn serves(&self, team_id: &str) -> bool {
        self.teams.is_empty() || self.teams.split(',').any(|t| t == team_id)
    }

    /// The config hash this gateway should run: its environment's current
    /// version, when it serves one team in a named environment (`current`:
    /// `(team_id, environment, hash)` rows, see
    /// [`crate::configs::current_hashes`]).
    pub fn desired_hash<'c>(&self, current: &'c [(String, String, String)]) -> Option<&'c str> {
        let env = self.environment.as_deref()?;
        if self.teams.is_empty() || self.teams.contains(',') {
            return None;
        }
        current
            .iter()
            .find(|(team, e, _)| *team == self.teams && e == env)
            .map(|(_, _, hash)| hash.as_str())
    }

    /// healthy / stale / down, from the age of the last heartbeat.
    pub fn status(&self, now: i64) -> &'static str {
        let age = now - self.last_seen_at;
        if age <= STALE_AFTER_MS {
            "healthy"
        } else if age <= DOWN_AFTER_MS {
            "stale"
        } else {
            "down"
        }
    }
}

/// Registration of a gateway worker.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub teams: Vec<String>,
    pub address: String,
    pub version: String,
    pub config_hash: String,
    /// The monthly `cost_limit` of its config (micro-USD), if any.
    pub cost_limit_micros: Option<i64>,
    pub environment: Option<String>,
    pub demo: bool,
}

/// Registers (or re-registers, keeping its id) the gateway called `name`;
/// returns its id.
pub async fn register(db: &Db, reg: &Registration) -> Result<String> {
    let now = now_ms();
    let teams = reg.teams.join(",");
    let id: String = with_pool!(db, pool => {
        sqlx::query_scalar(
            "insert into gateway (gateway_id, name, teams, address, version, config_hash, demo, started_at, last_seen_at, cost_limit_micros, environment) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) \
             on conflict (name) do update set teams = excluded.teams, address = excluded.address, \
             version = excluded.version, config_hash = excluded.config_hash, demo = excluded.demo, \
             cost_limit_micros = excluded.cost_limit_micros, environment = excluded.environment, \
             started_at = excluded.started_at, last_seen_at = excluded.last_seen_at \
             returning gateway_id",
        )
        .bind(crate::new_id())
        .bind(&reg.name)
        .bind(&teams)
        .bind(&reg.address)
        .bind(&reg.version)
        .bind(&reg.config_hash)
        .bind(reg.demo)
        .bind(now)
        .bind(reg.cost_limit_micros)
        .bind(&reg.environment)
        .fetch_one(pool)
        .await
    })?;
    Ok(id)
}

pub async fn heartbeat(db: &Db, gateway_id: &str) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("update gateway set last_seen_at = $1 where gateway_id = $2")
            .bind(now_ms())
            .bind(gateway_id)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Records the config a gateway runs after a hot reload: its hash and its
/// monthly `cost_limit` (micro-USD).
pub async fn set_config(
    db: &Db,
    gateway_id: &str,
    hash: &str,
    cost_limit_micros: Option<i64>,
) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("update gateway set config_hash = $1, cost_limit_micros = $2 where gateway_id = $3")
            .bind(hash)
            .bind(cost_limit_micros)
            .bind(gateway_id)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

pub async fn list(db: &Db) -> Result<Vec<GatewayRow>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, GatewayRow>(
            "select gateway_id, name, teams, address, version, config_hash, demo, started_at, last_seen_at, \
             cost_limit_micros, environment from gateway order by name",
        )
        .fetch_all(pool)
        .await
    })?)
}
