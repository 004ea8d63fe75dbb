//! Test support: a fresh, migrated database per test on each backend.
//!
//! SQLite always runs (a file in a temporary directory). PostgreSQL runs when
//! a server answers at `KT_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`): each test gets its own
//! database. Where no server answers, PostgreSQL tests are skipped with a
//! message — except under `CI=true`, where a missing server is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crate::{Backend, Db};

const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test.
pub struct TestDatabase {
    pub backend: Backend,
    /// URL to hand to `kt` processes (`KT_DATABASE_URL`).
    pub url: String,
    pub db: Db,
    pg_admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Closes the pool and drops a PostgreSQL test database.
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some((admin_url, name)) = self.pg_admin
            && let Ok(mut conn) = PgConnectOptions::from_str(&admin_url)
                .unwrap()
                .connect()
                .await
        {
            let _ = sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// A fresh, migrated SQLite database in a temporary directory.
pub async fn sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kt.db").display());
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    TestDatabase {
        backend: Backend::Sqlite,
        url,
        db,
        pg_admin: None,
        _dir: Some(dir),
    }
}

/// A fresh, migrated PostgreSQL database, or `None` (with a printed reason)
/// when no server answers outside CI.
pub async fn postgres() -> Option<TestDatabase> {
    let admin_url =
        std::env::var("KT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_ADMIN_URL.to_owned());
    let admin_opts = PgConnectOptions::from_str(&admin_url).expect("KT_TEST_POSTGRES_URL");
    let mut conn = match admin_opts.connect().await {
        Ok(conn) => conn,
        Err(err) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but PostgreSQL at {admin_url} is unreachable: {err}");
            }
            eprintln!(
                "SKIPPED (PostgreSQL): no server at {admin_url} ({err}); set KT_TEST_POSTGRES_URL to run these tests"
            );
            return None;
        }
    };
    let name = format!("kt_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = admin_opts.database(&name).to_url_lossy().to_string();
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    Some(TestDatabase {
        backend: Backend::Postgres,
        url,
        db,
        pg_admin: Some((admin_url, name)),
        _dir: None,
    })
}

/// SQLite, and PostgreSQL when available: run a test body on each.
pub async fn backends() -> Vec<TestDatabase> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all
}

/// An allowed request's event for `team_id` costing `cost_micros`, now.
pub fn event_for(team_id: &str, cost_micros: i64) -> crate::events::EventRow {
    crate::events::EventRow {
        event_id: crate::new_id(),
        created_at: crate::now_ms(),
        gateway_id: "gw-test".to_owned(),
        gateway_name: "test".to_owned(),
        team_id: Some(team_id.to_owned()),
        token_id: None,
        model: "gpt-4o".to_owned(),
        provider_target: Some("openai".to_owned()),
        provider_kind: Some("openai".to_owned()),
        verdict: "allow".to_owned(),
        reason: None,
        policy: None,
        input_tokens: 10,
        output_tokens: 10,
        cost_micros,
        latency_ms: 1,
        upstream_status: Some(200),
        streamed: false,
        demo: false,
        pii_entities: None,
        unpriced: false,
    }
}
