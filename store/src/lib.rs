//! kt's shared database.
//!
//! Gateways and the console share one database: SQLite (the embedded default)
//! or PostgreSQL (the scale backend). [`Db`] hides which one is in use; every
//! query is written once with `$n` placeholders and runs on both. Times are
//! unix milliseconds (UTC) and money is micro-USD, so both backends store
//! only plain integers and text.
//!
//! Reads and writes that belong to a tenant go through [`Scoped`], which
//! applies the caller's [`Scope`] in one place.

pub mod audit;
pub mod budgets;
pub mod configs;
pub mod crypto;
pub mod escalations;
pub mod events;
pub mod gateways;
pub mod git_repos;
pub mod onboarding;
pub mod prices;
pub mod rollups;
mod scope;
pub mod secrets;
pub mod teams;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tokens;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use scope::{Scope, Scoped};

/// Runs `$body` with `$pool` bound to the concrete pool of either backend.
/// The body is compiled once per backend, so one query text serves both.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs `$body` with `$conn` bound to the connection of a [`Tx`] (a
/// `&mut SqliteConnection` or `&mut PgConnection`): executors are
/// `&mut *$conn`, so one body serves both backends as with [`with_pool!`].
macro_rules! with_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.0 {
            $crate::TxInner::Sqlite(t) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::TxInner::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}
pub(crate) use with_tx;

/// Runs one write function of the store in its own transaction, committed
/// when it succeeds: tests of those functions call them this way.
#[cfg(test)]
macro_rules! in_tx {
    ($db:expr, $f:path, $($arg:expr),* $(,)?) => {{
        let mut tx = $db.begin().await.unwrap();
        let out = $f(&mut tx, $($arg),*).await;
        if out.is_ok() {
            tx.commit().await.unwrap();
        }
        out
    }};
}
#[cfg(test)]
pub(crate) use in_tx;

/// A write transaction on either backend. A change and its audit entry are
/// written through the same `Tx`, so both commit or neither does. Dropping a
/// `Tx` without [`Tx::commit`] rolls it back.
pub struct Tx(TxInner);

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self.0 {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// How long a connection waits for a locked SQLite database before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long acquiring a pooled connection may take before the database is
/// considered unreachable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated; carries the constraint name.
    #[error("already exists ({0})")]
    Conflict(String),
    /// A referenced row (e.g. a team) does not exist.
    #[error("not found")]
    NotFound,
    /// Input the database would accept but kt does not (safe to show).
    #[error("{0}")]
    Invalid(String),
    /// The caller's scope does not allow the operation at all.
    #[error("forbidden")]
    Forbidden,
    /// The caller may not do this, for a reason safe to show.
    #[error("{0}")]
    Denied(String),
    #[error("invalid database URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sqlx(sqlx::Error),
    #[error("password hashing failed: {0}")]
    Crypto(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                return StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned());
            }
            if db.is_foreign_key_violation() {
                return StoreError::NotFound;
            }
        }
        StoreError::Sqlx(err)
    }
}

impl StoreError {
    /// True when the database could not be reached (as opposed to a query
    /// that failed): callers answer "try again later".
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlx(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            )
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the shared database.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). SQLite files are
    /// created when missing and run in WAL mode so that a console and several
    /// gateway processes can share one file.
    pub async fn connect(url: &str) -> Result<Self> {
        let bad = |reason: String| StoreError::BadUrl {
            url: redact_url(url),
            reason,
        };
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| bad(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL: a commit survives a crash of any process
                // (not a power loss of the host), like the event spool; no
                // fsync per transaction.
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| bad(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(bad(
                "expected a URL starting with sqlite:// or postgres://".to_owned()
            ))
        }
    }

    /// A second, small pool to the same database, with the same options,
    /// for one background worker. On SQLite every connection is served by a
    /// thread of its own, started by the thread that opens the connection
    /// and inheriting its scheduling priority: a worker that opens its pool
    /// from a low-priority thread keeps its database work at that priority.
    pub async fn dedicated(&self, max_connections: u32) -> Result<Db> {
        Ok(match self {
            Db::Sqlite(pool) => Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with((*pool.connect_options()).clone())
                    .await?,
            ),
            Db::Postgres(pool) => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with((*pool.connect_options()).clone())
                    .await?,
            ),
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Begins a write transaction. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`, waiting up to the busy timeout): a transaction
    /// that reads before it writes could otherwise fail with a busy snapshot
    /// when a gateway commits events in between.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx(match self {
            Db::Sqlite(pool) => TxInner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        }))
    }

    /// Applies the embedded migrations of this backend (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// True when the database answers and every embedded migration is applied.
    pub async fn is_ready(&self) -> bool {
        let expected = match self {
            Db::Sqlite(_) => sqlx::migrate!("../migrations/sqlite").iter().count(),
            Db::Postgres(_) => sqlx::migrate!("../migrations/postgres").iter().count(),
        };
        let applied: Result<i64, sqlx::Error> = with_pool!(self, pool => {
            sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
                .fetch_one(pool)
                .await
        });
        matches!(applied, Ok(n) if usize::try_from(n).is_ok_and(|n| n >= expected))
    }

    /// A handle that reads and writes only what `scope` may see.
    pub fn scoped(&self, scope: Scope) -> Scoped {
        Scoped::new(self.clone(), scope)
    }

    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// The current time as unix milliseconds.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The start (unix milliseconds) of the calendar month, in UTC, that
/// contains `ms`: budgets are per calendar month.
pub fn month_start_ms(ms: i64) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return 0;
    };
    let first = t.date().replace_day(1).unwrap_or(t.date());
    let start = first.midnight().assume_utc();
    i64::try_from(start.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Formats unix milliseconds as RFC 3339 (UTC).
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A new identifier: a UUID v7, time-ordered with 74 random bits. Rows of
/// the append-heavy tables (events, audit entries, deliveries) thus land at
/// the end of their primary-key index, not on a random page of it: one
/// page written per batch instead of one per row, on SQLite and PostgreSQL.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The last millisecond (UTC) of a `YYYY-MM-DD` date: an expiry "on" that
/// day lets the token work through it. `None` when the text is not a date.
pub fn end_of_day_ms(date: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(date.trim(), &format).ok()?;
    let next = day.next_day()?.midnight().assume_utc();
    i64::try_from(next.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .map(|ms| ms - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://kt:s3cret@db:5432/kt"),
            "postgres://kt:***@db:5432/kt"
        );
        assert_eq!(redact_url("sqlite://.kt/kt.db"), "sqlite://.kt/kt.db");
    }

    #[test]
    fn month_starts_in_utc() {
        // 2023-11-14T22:13:20Z → 2023-11-01T00:00:00Z
        assert_eq!(
            format_ms(month_start_ms(1_700_000_000_123)),
            "2023-11-01T00:00:00Z"
        );
        assert_eq!(month_start_ms(0), 0);
    }

    #[test]
    fn formats_times_as_rfc3339() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
