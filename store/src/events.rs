//! Request events (one per gateway request, allowed or not) and the hourly
//! rollup the console reads its totals from.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::{Db, Result, with_pool};

/// Length of a rollup bucket.
pub const HOUR_MS: i64 = 3_600_000;
/// Events per multi-row insert statement (21 columns each: well under the
/// bind-parameter limits of SQLite and PostgreSQL).
const INSERT_CHUNK: usize = 64;
/// Most events one list call returns.
pub const MAX_LIST_LIMIT: i64 = 1000;

/// One gateway request. Never carries prompt or completion text.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, PartialEq)]
pub struct EventRow {
    pub event_id: String,
    pub created_at: i64,
    pub gateway_id: String,
    pub gateway_name: String,
    pub team_id: Option<String>,
    pub token_id: Option<String>,
    pub model: String,
    pub provider_target: Option<String>,
    pub provider_kind: Option<String>,
    /// allow / block / redact / warn / escalate / error
    pub verdict: String,
    pub reason: Option<String>,
    pub policy: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
    pub latency_ms: i64,
    pub upstream_status: Option<i64>,
    pub streamed: bool,
    /// Served by the built-in demo provider.
    pub demo: bool,
    /// PII entity types found (comma-separated names, never values).
    #[serde(default)]
    pub pii_entities: Option<String>,
    /// The model had no catalog price: charged at a large model's price.
    #[serde(default)]
    pub unpriced: bool,
}

/// Filters of `GET /v1/events` (the team filter comes from the scope).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub since_ms: Option<i64>,
    pub limit: i64,
    pub gateway_id: Option<String>,
    pub team_id: Option<String>,
    pub verdict: Option<String>,
}

/// Aggregates over a time range.
#[derive(Debug, Clone, Default, Serialize, Deserialize, sqlx::FromRow, PartialEq)]
pub struct Totals {
    pub requests: i64,
    pub blocked: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

const COLUMNS: &str = "event_id, created_at, gateway_id, gateway_name, team_id, token_id, model, \
    provider_target, provider_kind, verdict, reason, policy, input_tokens, output_tokens, \
    cost_micros, latency_ms, upstream_status, streamed, demo, pii_entities, unpriced";

/// A rollup row: (hour, team, gateway, model, verdict).
type RollupKey<'a> = (i64, &'a str, &'a str, &'a str, &'a str);

/// What a batch adds to one rollup row.
#[derive(Debug, Default)]
struct RollupSum {
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_micros: i64,
    latency_ms: i64,
}

/// Appends a batch of events and folds them into the hourly rollup, in one
/// transaction (so totals and events never disagree).
pub async fn insert_batch(db: &Db, events: &[EventRow]) -> Result<()> {
    insert_batch_for(db, events, None).await
}

/// [`insert_batch`] for a gateway process holding budget leases (`holder`):
/// in the same transaction, each team's spend moves out of the holder's
/// lease and into the team's wallet (see [`crate::budgets`]).
pub async fn insert_batch_for(db: &Db, events: &[EventRow], holder: Option<&str>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rollup = "insert into event_rollup_hour \
        (bucket_start, team_id, gateway_id, model, verdict, requests, input_tokens, output_tokens, cost_micros, latency_ms_sum) \
        values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
        on conflict (bucket_start, team_id, gateway_id, model, verdict) do update set \
        requests = event_rollup_hour.requests + excluded.requests, \
        input_tokens = event_rollup_hour.input_tokens + excluded.input_tokens, \
        output_tokens = event_rollup_hour.output_tokens + excluded.output_tokens, \
        cost_micros = event_rollup_hour.cost_micros + excluded.cost_micros, \
        latency_ms_sum = event_rollup_hour.latency_ms_sum + excluded.latency_ms_sum";
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        // Multi-row inserts (one statement per INSERT_CHUNK events); the ids
        // that come back are the events not stored before, so a retried
        // batch never counts an event twice.
        let mut inserted: HashSet<&str> = HashSet::with_capacity(events.len());
        for chunk in events.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::new(format!("insert into event ({COLUMNS}) "));
            insert.push_values(chunk, |mut row, e| {
                row.push_bind(&e.event_id)
                    .push_bind(e.created_at)
                    .push_bind(&e.gateway_id)
                    .push_bind(&e.gateway_name)
                    .push_bind(&e.team_id)
                    .push_bind(&e.token_id)
                    .push_bind(&e.model)
                    .push_bind(&e.provider_target)
                    .push_bind(&e.provider_kind)
                    .push_bind(&e.verdict)
                    .push_bind(&e.reason)
                    .push_bind(&e.policy)
                    .push_bind(e.input_tokens)
                    .push_bind(e.output_tokens)
                    .push_bind(e.cost_micros)
                    .push_bind(e.latency_ms)
                    .push_bind(e.upstream_status)
                    .push_bind(e.streamed)
                    .push_bind(e.demo)
                    .push_bind(&e.pii_entities)
                    .push_bind(e.unpriced);
            });
            insert.push(" on conflict (event_id) do nothing returning event_id");
            let ids: Vec<String> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
            for id in ids {
                if let Some(e) = chunk.iter().find(|e| e.event_id == id) {
                    inserted.insert(e.event_id.as_str());
                }
            }
            // (`find` is linear, over at most INSERT_CHUNK events.)
        }
        // Rollup increments summed per row for the whole batch: one upsert
        // per (hour, team, gateway, model, verdict), not one per event.
        let mut sums: HashMap<RollupKey<'_>, RollupSum> = HashMap::new();
        // Spend per (team, month) of the events actually inserted, and the
        // events themselves per team (for the wallet).
        let mut spend: HashMap<(&str, i64), i64> = HashMap::new();
        let mut charged: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
        for e in events {
            // Counted once, even if the batch holds an id twice.
            if !inserted.remove(e.event_id.as_str()) {
                continue;
            }
            let key = (
                e.created_at - e.created_at.rem_euclid(HOUR_MS),
                e.team_id.as_deref().unwrap_or(""),
                e.gateway_id.as_str(),
                e.model.as_str(),
                e.verdict.as_str(),
            );
            if let Some(team) = e.team_id.as_deref()
                && e.cost_micros != 0
            {
                *spend.entry((team, crate::month_start_ms(e.created_at))).or_default() += e.cost_micros;
                charged.entry(team).or_default().push((e.created_at, e.cost_micros));
            }
            let sum = sums.entry(key).or_default();
            sum.requests += 1;
            sum.input_tokens += e.input_tokens;
            sum.output_tokens += e.output_tokens;
            sum.cost_micros += e.cost_micros;
            sum.latency_ms += e.latency_ms;
        }
        for ((bucket, team, gateway, model, verdict), sum) in &sums {
            sqlx::query(rollup)
                .bind(bucket)
                .bind(team)
                .bind(gateway)
                .bind(model)
                .bind(verdict)
                .bind(sum.requests)
                .bind(sum.input_tokens)
                .bind(sum.output_tokens)
                .bind(sum.cost_micros)
                .bind(sum.latency_ms)
                .execute(&mut *tx)
                .await?;
        }
        for ((team, month), cost) in &spend {
            if let Some(holder) = holder {
                sqlx::query(
                    "update budget_lease set amount_micros = \
                     case when amount_micros > $4 then amount_micros - $4 else 0 end \
                     where holder = $1 and team_id = $2 and month_start = $3",
                )
                .bind(holder)
                .bind(team)
                .bind(month)
                .bind(cost)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (team, costs) in &charged {
            let effective_at: Option<i64> =
                sqlx::query_scalar("select effective_at from wallet where team_id = $1")
                    .bind(team)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(effective_at) = effective_at else {
                continue;
            };
            let cost: i64 = costs
                .iter()
                .filter(|(at, _)| *at >= effective_at)
                .map(|(_, c)| c)
                .sum();
            if cost == 0 {
                continue;
            }
            sqlx::query(
                "update wallet set spent_micros = spent_micros + $2, updated_at = $3 where team_id = $1",
            )
            .bind(team)
            .bind(cost)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })?;
    Ok(())
}

pub(crate) async fn list(
    db: &Db,
    scope_team: Option<&str>,
    f: &EventFilter,
) -> Result<Vec<EventRow>> {
    let sql = format!(
        "select {COLUMNS} from event \
         where ($1 is null or team_id = $1) \
           and ($2 is null or team_id = $2) \
           and ($3 is null or gateway_id = $3 or gateway_name = $3) \
           and ($4 is null or verdict = $4) \
           and created_at >= $5 \
         order by created_at desc, event_id desc limit $6"
    );
    let limit = f.limit.clamp(1, MAX_LIST_LIMIT);
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, EventRow>(&sql)
            .bind(scope_team)
            .bind(&f.team_id)
            .bind(&f.gateway_id)
            .bind(&f.verdict)
            .bind(f.since_ms.unwrap_or(0))
            .bind(limit)
            .fetch_all(pool)
            .await
    })?)
}

/// Totals since `since_ms` (rounded down to the hour), from the rollup.
pub(crate) async fn totals(db: &Db, scope_team: Option<&str>, since_ms: i64) -> Result<Totals> {
    let sql = "select \
        cast(coalesce(sum(requests), 0) as bigint) as requests, \
        cast(coalesce(sum(case when verdict in ('block', 'escalate') then requests else 0 end), 0) as bigint) as blocked, \
        cast(coalesce(sum(input_tokens), 0) as bigint) as input_tokens, \
        cast(coalesce(sum(output_tokens), 0) as bigint) as output_tokens, \
        cast(coalesce(sum(cost_micros), 0) as bigint) as cost_micros \
        from event_rollup_hour where ($1 is null or team_id = $1) and bucket_start >= $2";
    let from = since_ms - since_ms.rem_euclid(HOUR_MS);
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, Totals>(sql).bind(scope_team).bind(from).fetch_one(pool).await
    })?)
}

/// A team's spend since `since_ms` (rounded down to the hour), from the
/// rollup: what budgets are checked against. Not tenant data exposed to a
/// caller, so it takes the team id directly.
pub async fn team_spend_since(db: &Db, team_id: &str, since_ms: i64) -> Result<i64> {
    let from = since_ms - since_ms.rem_euclid(HOUR_MS);
    Ok(with_pool!(db, pool => {
        sqlx::query_scalar::<_, i64>(
            "select cast(coalesce(sum(cost_micros), 0) as bigint) from event_rollup_hour \
             where team_id = $1 and bucket_start >= $2",
        )
        .bind(team_id)
        .bind(from)
        .fetch_one(pool)
        .await
    })?)
}

pub(crate) async fn hourly(
    db: &Db,
    scope_team: Option<&str>,
    since_ms: i64,
) -> Result<Vec<(i64, i64, i64)>> {
    let sql = "select bucket_start, \
        cast(sum(requests) as bigint), cast(sum(cost_micros) as bigint) \
        from event_rollup_hour where ($1 is null or team_id = $1) and bucket_start >= $2 \
        group by bucket_start order by bucket_start";
    let from = since_ms - since_ms.rem_euclid(HOUR_MS);
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, (i64, i64, i64)>(sql).bind(scope_team).bind(from).fetch_all(pool).await
    })?)
}
