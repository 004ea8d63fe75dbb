//! Linked Git repositories and their last sync per branch (SPEC §8). The
//! sync itself (fetching, reading files, linting) lives in the server; this
//! is what it records. Org-level objects: only org admins reach them.

use serde::{Deserialize, Serialize};

use crate::{Db, Result, Tx, new_id, now_ms, with_pool, with_tx};

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct GitRepo {
    pub git_repo_id: String,
    pub repo_url: String,
    pub path: String,
    /// JSON object: branch → environment.
    pub branches: String,
    pub poll_interval_seconds: i64,
    #[serde(skip)]
    pub access_token_sealed: Option<String>,
    /// The push webhook's HMAC key, sealed; never returned after linking.
    #[serde(skip)]
    pub webhook_secret_sealed: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub last_polled_at: Option<i64>,
}

impl GitRepo {
    /// The branch → environment mapping, in branch order.
    pub fn branch_map(&self) -> Vec<(String, String)> {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&self.branches).unwrap_or_default();
        map.into_iter().collect()
    }
}

/// The outcome of one file in a sync.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileResult {
    pub file: String,
    pub team: Option<String>,
    /// `deployed`, `unchanged`, `invalid`, `unknown_team`, or `removed`
    /// (gone from Git, or renamed away: its team keeps its version)
    pub status: String,
    pub version: Option<i64>,
    pub message: Option<String>,
    /// Lint errors with line and column (JSON objects), for `invalid`.
    #[serde(default)]
    pub diagnostics: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct GitSync {
    pub git_repo_id: String,
    pub branch: String,
    pub environment: String,
    pub commit_sha: Option<String>,
    pub synced_at: i64,
    /// `ok` (every file deployed or unchanged), `partial` (some files
    /// refused: their teams keep their versions), `error` (nothing read).
    pub status: String,
    pub message: Option<String>,
    /// JSON list of [`FileResult`].
    pub files: String,
}

const REPO_COLUMNS: &str = "git_repo_id, repo_url, path, branches, poll_interval_seconds, \
    access_token_sealed, webhook_secret_sealed, created_by, created_at, last_polled_at";
const SYNC_COLUMNS: &str =
    "git_repo_id, branch, environment, commit_sha, synced_at, status, message, files";

#[derive(Debug, Clone)]
pub struct NewRepo<'a> {
    pub repo_url: &'a str,
    pub path: &'a str,
    pub branches: &'a [(String, String)],
    pub poll_interval_seconds: i64,
    pub access_token_sealed: Option<String>,
    pub webhook_secret_sealed: Option<String>,
}

pub(crate) async fn create(tx: &mut Tx, new: &NewRepo<'_>, actor: &str) -> Result<GitRepo> {
    let branches: serde_json::Map<String, serde_json::Value> = new
        .branches
        .iter()
        .map(|(b, e)| (b.clone(), serde_json::Value::String(e.clone())))
        .collect();
    let sql = format!(
        "insert into git_repo ({REPO_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, null) returning {REPO_COLUMNS}"
    );
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, GitRepo>(&sql)
            .bind(new_id())
            .bind(new.repo_url)
            .bind(new.path)
            .bind(serde_json::Value::Object(branches).to_string())
            .bind(new.poll_interval_seconds)
            .bind(&new.access_token_sealed)
            .bind(&new.webhook_secret_sealed)
            .bind(actor)
            .bind(now_ms())
            .fetch_one(&mut *conn)
            .await
    })?)
}

pub async fn list(db: &Db) -> Result<Vec<GitRepo>> {
    let sql = format!("select {REPO_COLUMNS} from git_repo order by created_at");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, GitRepo>(&sql).fetch_all(pool).await
    })?)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<GitRepo>> {
    let sql = format!("select {REPO_COLUMNS} from git_repo where git_repo_id = $1");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, GitRepo>(&sql).bind(id).fetch_optional(pool).await
    })?)
}

pub(crate) async fn delete(tx: &mut Tx, id: &str) -> Result<bool> {
    let n = with_tx!(tx, conn => {
        let n = sqlx::query("delete from git_repo where git_repo_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        sqlx::query("delete from git_sync where git_repo_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok::<_, sqlx::Error>(n)
    })?;
    Ok(n > 0)
}

/// Records a branch's sync (replacing the previous one) and the poll time.
pub async fn record_sync(db: &Db, sync: &GitSync) -> Result<()> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(&format!(
            "insert into git_sync ({SYNC_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8) \
             on conflict (git_repo_id, branch) do update set environment = excluded.environment, \
             commit_sha = excluded.commit_sha, synced_at = excluded.synced_at, status = excluded.status, \
             message = excluded.message, files = excluded.files"
        ))
        .bind(&sync.git_repo_id)
        .bind(&sync.branch)
        .bind(&sync.environment)
        .bind(&sync.commit_sha)
        .bind(sync.synced_at)
        .bind(&sync.status)
        .bind(&sync.message)
        .bind(&sync.files)
        .execute(&mut *tx)
        .await?;
        sqlx::query("update git_repo set last_polled_at = $2 where git_repo_id = $1")
            .bind(&sync.git_repo_id)
            .bind(sync.synced_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })?;
    Ok(())
}

pub async fn syncs(db: &Db, id: &str) -> Result<Vec<GitSync>> {
    let sql = format!("select {SYNC_COLUMNS} from git_sync where git_repo_id = $1 order by branch");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, GitSync>(&sql).bind(id).fetch_all(pool).await
    })?)
}

/// Claims the next poll of a repository: true for exactly one of several
/// `kt serve` replicas racing for it (the one whose update moved
/// `last_polled_at` from the value it saw), so a repository is polled once
/// per interval however many replicas run.
pub async fn claim_poll(db: &Db, id: &str, seen: Option<i64>, now: i64) -> Result<bool> {
    let n = with_pool!(db, pool => {
        sqlx::query(
            "update git_repo set last_polled_at = $3 where git_repo_id = $1 \
             and (last_polled_at = $2 or (last_polled_at is null and $2 is null))",
        )
        .bind(id)
        .bind(seen)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}
