//! Versioned configurations per team and environment (SPEC §8): numbered
//! versions, the highest current. Content is linted by the caller (the
//! policy crate) before it gets here; the store keeps what, who, when and
//! from where.

use serde::Serialize;

use crate::{Db, Result, StoreError, Tx, new_id, now_ms, with_pool, with_tx};

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Git,
    Console,
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Git => "git",
            Source::Console => "console",
            Source::Api => "api",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct ConfigVersion {
    pub config_version_id: String,
    pub team_id: String,
    pub environment: String,
    pub version: i64,
    pub content: String,
    pub content_hash: String,
    pub source: String,
    pub git_commit: Option<String>,
    pub git_author: Option<String>,
    pub message: Option<String>,
    pub author: String,
    pub created_at: i64,
}

/// A version to add.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub team_id: &'a str,
    pub environment: &'a str,
    pub content: &'a str,
    pub content_hash: &'a str,
    pub source: Source,
    pub git_commit: Option<&'a str>,
    pub git_author: Option<&'a str>,
    pub message: Option<&'a str>,
}

const COLUMNS: &str = "config_version_id, team_id, environment, version, content, content_hash, \
    source, git_commit, git_author, message, author, created_at";

/// Environment names: like slugs (`production`, `staging`, `eu-prod`).
pub fn validate_environment(env: &str) -> std::result::Result<(), String> {
    let ok = (1..=40).contains(&env.len())
        && env
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !env.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`environment` {env:?} is not valid: use 1 to 40 lowercase letters, digits or `-` (e.g. production, staging)"
        ))
    }
}

/// Adds a version numbered one above the current one, in one statement (so
/// two writers cannot take the same number: the loser's insert conflicts and
/// is retried once).
pub(crate) async fn add(tx: &mut Tx, new: &NewVersion<'_>, author: &str) -> Result<ConfigVersion> {
    validate_environment(new.environment).map_err(StoreError::Invalid)?;
    let mut attempt = 0;
    loop {
        let id = new_id();
        let sql = format!(
            "insert into config_version ({COLUMNS}) \
             select $1, $2, $3, coalesce(max(version), 0) + 1, $4, $5, $6, $7, $8, $9, $10, $11 \
             from config_version where team_id = $2 and environment = $3 \
             returning {COLUMNS}"
        );
        // A savepoint: on PostgreSQL a unique violation (a concurrent
        // writer took the same number) would otherwise abort the whole
        // transaction instead of this one attempt.
        let result = with_tx!(tx, conn => {
            let mut attempt_tx = sqlx::Connection::begin(&mut *conn).await?;
            let version = sqlx::query_as::<_, ConfigVersion>(&sql)
                .bind(&id)
                .bind(new.team_id)
                .bind(new.environment)
                .bind(new.content)
                .bind(new.content_hash)
                .bind(new.source.as_str())
                .bind(new.git_commit)
                .bind(new.git_author)
                .bind(new.message)
                .bind(author)
                .bind(now_ms())
                .fetch_one(&mut *attempt_tx)
                .await?;
            attempt_tx.commit().await?;
            Ok::<_, sqlx::Error>(version)
        });
        match result.map_err(StoreError::from) {
            Err(StoreError::Conflict(_)) if attempt == 0 => attempt += 1,
            other => return other,
        }
    }
}

/// Versions of a team's environment, newest first (`environment` `None`:
/// every environment).
pub(crate) async fn list(
    db: &Db,
    team_id: &str,
    environment: Option<&str>,
    limit: i64,
) -> Result<Vec<ConfigVersion>> {
    let sql = format!(
        "select {COLUMNS} from config_version where team_id = $1 and ($2 is null or environment = $2) \
         order by environment, version desc limit $3"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, ConfigVersion>(&sql)
            .bind(team_id)
            .bind(environment)
            .bind(limit)
            .fetch_all(pool)
            .await
    })?)
}

/// One version.
pub(crate) async fn get(
    db: &Db,
    team_id: &str,
    environment: &str,
    version: i64,
) -> Result<Option<ConfigVersion>> {
    let sql = format!(
        "select {COLUMNS} from config_version where team_id = $1 and environment = $2 and version = $3"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, ConfigVersion>(&sql)
            .bind(team_id)
            .bind(environment)
            .bind(version)
            .fetch_optional(pool)
            .await
    })?)
}

/// The current version of a team's environment: what its managed gateways
/// run. Not tenant data handed to a caller (gateways use it), so it takes
/// the team directly.
pub async fn current(db: &Db, team_id: &str, environment: &str) -> Result<Option<ConfigVersion>> {
    let sql = format!(
        "select {COLUMNS} from config_version where team_id = $1 and environment = $2 \
         order by version desc limit 1"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, ConfigVersion>(&sql)
            .bind(team_id)
            .bind(environment)
            .fetch_optional(pool)
            .await
    })?)
}

/// The current hash of every (team, environment): the fleet's desired
/// configs, for drift.
pub async fn current_hashes(db: &Db) -> Result<Vec<(String, String, String)>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, (String, String, String)>(
            "select c.team_id, c.environment, c.content_hash from config_version c \
             where c.version = (select max(v.version) from config_version v \
             where v.team_id = c.team_id and v.environment = c.environment)",
        )
        .fetch_all(pool)
        .await
    })?)
}

/// The current version's hash only (the cheap question a managed gateway
/// asks every few seconds).
pub async fn current_hash(db: &Db, team_id: &str, environment: &str) -> Result<Option<String>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_scalar::<_, String>(
            "select content_hash from config_version where team_id = $1 and environment = $2 \
             order by version desc limit 1",
        )
        .bind(team_id)
        .bind(environment)
        .fetch_optional(pool)
        .await
    })?)
}
