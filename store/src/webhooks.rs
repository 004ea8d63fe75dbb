//! Webhooks (SPEC §10). A change that notifies enqueues its deliveries in
//! the transaction of the change ([`enqueue`]): a notification is never
//! lost for a change that happened, nor sent for one that was rolled back.
//! `kt serve` claims due deliveries (one replica per delivery), signs and
//! sends them, and records each attempt.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::{Db, Result, Tx, new_id, now_ms, with_pool, with_tx};

/// The events a webhook may subscribe to (`*`: all).
pub const EVENTS: [&str; 6] = [
    "escalation.created",
    "escalation.resolved",
    "budget.threshold",
    "gateway.health_changed",
    "config.deployed",
    "webhook.test",
];

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed delivery is reserved for the replica sending it.
const LEASE_MS: i64 = 30_000;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct Webhook {
    pub webhook_id: String,
    pub url: String,
    /// JSON list of events.
    pub events: String,
    #[serde(skip)]
    pub secret_sealed: String,
    pub created_by: String,
    pub created_at: i64,
}

impl Webhook {
    pub fn events(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }

    fn wants(&self, event: &str) -> bool {
        event == "webhook.test" || self.events().iter().any(|e| e == event || e == "*")
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq)]
pub struct Delivery {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const HOOK_COLUMNS: &str = "webhook_id, url, events, secret_sealed, created_by, created_at";
const DELIVERY_COLUMNS: &str = "delivery_id, webhook_id, event, payload, status, attempts, \
    next_attempt_at, last_status_code, last_error, created_at, delivered_at";

pub(crate) async fn create(
    tx: &mut Tx,
    url: &str,
    events: &[String],
    secret_sealed: &str,
    actor: &str,
) -> Result<Webhook> {
    let sql = format!(
        "insert into webhook ({HOOK_COLUMNS}) values ($1, $2, $3, $4, $5, $6) returning {HOOK_COLUMNS}"
    );
    Ok(with_tx!(tx, conn => {
        sqlx::query_as::<_, Webhook>(&sql)
            .bind(new_id())
            .bind(url)
            .bind(serde_json::to_string(events).unwrap_or_else(|_| "[]".to_owned()))
            .bind(secret_sealed)
            .bind(actor)
            .bind(now_ms())
            .fetch_one(&mut *conn)
            .await
    })?)
}

pub async fn list(db: &Db) -> Result<Vec<Webhook>> {
    let sql = format!("select {HOOK_COLUMNS} from webhook order by created_at");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Webhook>(&sql).fetch_all(pool).await
    })?)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Webhook>> {
    let sql = format!("select {HOOK_COLUMNS} from webhook where webhook_id = $1");
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Webhook>(&sql).bind(id).fetch_optional(pool).await
    })?)
}

pub(crate) async fn delete(tx: &mut Tx, id: &str) -> Result<bool> {
    let n = with_tx!(tx, conn => {
        sqlx::query("delete from webhook where webhook_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n > 0)
}

/// Enqueues `event` for every webhook that subscribes to it, in `tx`.
pub async fn enqueue(tx: &mut Tx, event: &str, data: Value) -> Result<()> {
    let sql = format!("select {HOOK_COLUMNS} from webhook");
    let hooks: Vec<Webhook> = with_tx!(tx, conn => {
        sqlx::query_as::<_, Webhook>(&sql).fetch_all(&mut *conn).await
    })?;
    let now = now_ms();
    for hook in hooks.iter().filter(|h| h.wants(event)) {
        insert_delivery(tx, &hook.webhook_id, event, &data, now).await?;
    }
    Ok(())
}

async fn insert_delivery(
    tx: &mut Tx,
    webhook_id: &str,
    event: &str,
    data: &Value,
    now: i64,
) -> Result<String> {
    let id = new_id();
    let payload = serde_json::json!({
        "id": id,
        "event": event,
        "created_at": crate::format_ms(now),
        "data": data,
    })
    .to_string();
    with_tx!(tx, conn => {
        sqlx::query(&format!(
            "insert into webhook_delivery ({DELIVERY_COLUMNS}) values ($1, $2, $3, $4, 'pending', 0, $5, null, null, $5, null)"
        ))
        .bind(&id)
        .bind(webhook_id)
        .bind(event)
        .bind(&payload)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ())
    })?;
    Ok(id)
}

/// A `webhook.test` delivery for one webhook (the "send test" button).
pub async fn enqueue_test(db: &Db, webhook_id: &str, actor: &str) -> Result<String> {
    let mut tx = db.begin().await?;
    let id = insert_delivery(
        &mut tx,
        webhook_id,
        "webhook.test",
        &serde_json::json!({"message": "a test delivery from kt", "sent_by": actor}),
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Claims up to `limit` due deliveries for this process: each is leased (its
/// next attempt moved past the lease) by exactly one claimer.
pub async fn claim_due(db: &Db, limit: i64) -> Result<Vec<Delivery>> {
    let now = now_ms();
    let sql = format!(
        "select {DELIVERY_COLUMNS} from webhook_delivery where status = 'pending' and next_attempt_at <= $1 \
         order by next_attempt_at limit $2"
    );
    let due: Vec<Delivery> = with_pool!(db, pool => {
        sqlx::query_as::<_, Delivery>(&sql).bind(now).bind(limit).fetch_all(pool).await
    })?;
    let mut claimed = Vec::new();
    for d in due {
        let n = with_pool!(db, pool => {
            sqlx::query(
                "update webhook_delivery set next_attempt_at = $3 where delivery_id = $1 \
                 and status = 'pending' and next_attempt_at = $2",
            )
            .bind(&d.delivery_id)
            .bind(d.next_attempt_at)
            .bind(now + LEASE_MS)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if n == 1 {
            claimed.push(d);
        }
    }
    Ok(claimed)
}

/// Records an attempt: delivered, or (with the back-off's next time) to be
/// retried, or failed after [`MAX_ATTEMPTS`].
pub async fn record_attempt(
    db: &Db,
    id: &str,
    attempts: i64,
    status_code: Option<i64>,
    error: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    let delivered = status_code.is_some_and(|c| (200..300).contains(&c));
    let status = if delivered {
        "delivered"
    } else if attempts >= MAX_ATTEMPTS {
        "failed"
    } else {
        "pending"
    };
    // 1 s, 2 s, 4 s, … at most 5 minutes.
    let backoff = 1000_i64 << (attempts.clamp(1, 9) - 1);
    with_pool!(db, pool => {
        sqlx::query(
            "update webhook_delivery set status = $2, attempts = $3, next_attempt_at = $4, \
             last_status_code = $5, last_error = $6, delivered_at = $7 where delivery_id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(attempts)
        .bind(now + backoff.min(300_000))
        .bind(status_code)
        .bind(error)
        .bind(delivered.then_some(now))
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

pub async fn deliveries(db: &Db, webhook_id: &str, limit: i64) -> Result<Vec<Delivery>> {
    let sql = format!(
        "select {DELIVERY_COLUMNS} from webhook_delivery where webhook_id = $1 \
         order by created_at desc limit $2"
    );
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Delivery>(&sql)
            .bind(webhook_id)
            .bind(limit.clamp(1, 1000))
            .fetch_all(pool)
            .await
    })?)
}

/// The watched values (key → last value) whose keys match one of the SQL
/// `like` patterns, read once per round by a watcher that checks many keys
/// (only the current ones: old months' keys are never read again).
pub async fn notification_states(db: &Db, patterns: &[&str]) -> Result<HashMap<String, String>> {
    if patterns.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = with_pool!(db, pool => {
        let mut query = sqlx::QueryBuilder::new("select key, value from notification_state where ");
        let mut any = query.separated(" or ");
        for pattern in patterns {
            any.push("key like ").push_bind_unseparated(*pattern);
        }
        query.build_query_as().fetch_all(pool).await
    })?;
    Ok(rows.into_iter().collect())
}

/// Moves the watched value `key` to `value`, given `seen`, its value as read
/// by [`notification_states`]. When it changed (of several replicas, for
/// exactly one: the write is conditional on `seen`), `data(old)` decides
/// what to notify: `Some` enqueues `event` with it, in the same transaction
/// as the new value. Returns whether this caller recorded a change.
pub async fn notify_on_change(
    db: &Db,
    seen: &HashMap<String, String>,
    key: &str,
    value: &str,
    event: &str,
    data: impl FnOnce(Option<&str>) -> Option<Value>,
) -> Result<bool> {
    let seen = seen.get(key).map(String::as_str);
    if seen == Some(value) {
        // The common case: nothing changed, no write (no lock) at all.
        return Ok(false);
    }
    let now = now_ms();
    let mut tx = db.begin().await?;
    let changed = with_tx!(tx, conn => {
        match seen {
            None => sqlx::query(
                "insert into notification_state (key, value, updated_at) values ($1, $2, $3) \
                 on conflict (key) do nothing",
            )
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected()),
            Some(old) => sqlx::query(
                "update notification_state set value = $2, updated_at = $3 where key = $1 and value = $4",
            )
            .bind(key)
            .bind(value)
            .bind(now)
            .bind(old)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected()),
        }
    })?;
    if changed != 1 {
        return Ok(false);
    }
    if let Some(data) = data(seen) {
        enqueue(&mut tx, event, data).await?;
    }
    tx.commit().await?;
    Ok(true)
}
