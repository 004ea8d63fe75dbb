//! Events are never lost: while the database is unavailable the gateway keeps
//! answering and spools events locally; a `kill -9` in that state loses none
//! of them — the next start replays the spool into the database, once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlx::Connection as _;
use store::Db;
use store::testing::TestDatabase;

/// Holds the database's event table locked (writes to it fail or wait)
/// until dropped — a database outage, as the gateway's writer sees it.
enum Outage {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn start_outage(db: &TestDatabase) -> Outage {
    let url = &db.url;
    match db.db {
        Db::Sqlite(_) => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query("begin exclusive")
                .execute(&mut conn)
                .await
                .unwrap();
            Outage::Sqlite(conn)
        }
        Db::Postgres(_) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query("begin").execute(&mut conn).await.unwrap();
            sqlx::query("lock table event in access exclusive mode")
                .execute(&mut conn)
                .await
                .unwrap();
            Outage::Postgres(conn)
        }
    }
}

async fn end_outage(outage: Outage) {
    match outage {
        Outage::Sqlite(mut c) => sqlx::query("rollback")
            .execute(&mut c)
            .await
            .map(|_| ())
            .unwrap(),
        Outage::Postgres(mut c) => sqlx::query("rollback")
            .execute(&mut c)
            .await
            .map(|_| ())
            .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_and_a_kill_9_lose_no_event() {
    for db in store::testing::backends().await {
        let s = start_stack(&db).await;
        let key = s.team_with_key("Eng", "eng").await.key;
        let path = s
            .install
            .write_config("team-eng", &allowlist_config(&s.standin, "gpt-4o"));
        let gw = s.install.gateway(&path, &[]).await;
        let body = chat_body("gpt-4o", "hello");
        assert_eq!(chat(&gw.url, Some(&key), &body).await.status, 200);
        s.admin
            .wait_for_events("gateway_id=team-eng", "the warm-up event", |e| e.len() == 1)
            .await;

        // The database becomes unavailable for writes: the gateway keeps answering.
        let outage = start_outage(&db).await;
        const DURING: usize = 5;
        for i in 0..DURING {
            let started = Instant::now();
            let r = chat(&gw.url, Some(&key), &body).await;
            assert_eq!(
                r.status, 200,
                "[{}] request {i} during the outage: {r}",
                s.backend
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "[{}] a request waited {:?} on the unavailable database",
                s.backend,
                started.elapsed()
            );
        }
        let h = gateway_health(&gw.url).await;
        assert_eq!(
            h["spool_depth"], DURING as u64,
            "[{}] /health shows the unstored events: {h}",
            s.backend
        );

        // kill -9 while the events are only in the spool, then the database returns.
        drop(gw);
        tokio::time::sleep(Duration::from_millis(300)).await;
        end_outage(outage).await;
        let stored = s.admin.events("gateway_id=team-eng").await;
        assert_eq!(
            stored.len(),
            1,
            "[{}] the killed gateway stored nothing during the outage",
            s.backend
        );

        // The next start replays the spool: every event arrives, exactly once.
        let gw = s.install.gateway(&path, &[]).await;
        s.admin
            .wait_for_events("gateway_id=team-eng", "the spooled events", |e| {
                e.len() == 1 + DURING
            })
            .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let events = s.admin.events("gateway_id=team-eng").await;
        assert_eq!(
            events.len(),
            1 + DURING,
            "[{}] no event is stored twice",
            s.backend
        );
        assert!(
            events
                .iter()
                .all(|e| e["input_tokens"] == STANDIN_PROMPT_TOKENS),
            "{events:?}"
        );
        let h = gateway_health(&gw.url).await;
        assert_eq!(h["spool_depth"], 0, "{h}");
        drop(gw);
        db.cleanup().await;
    }
}
