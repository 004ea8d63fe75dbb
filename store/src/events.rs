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

/// The verdicts an event may carry.
pub const VERDICTS: [&str; 6] = ["allow", "block", "redact", "warn", "escalate", "error"];

/// Filters of `GET /v1/events` (the team filter comes from the scope).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Inclusive lower bound on `created_at`.
    pub since_ms: Option<i64>,
    /// Exclusive upper bound on `created_at`.
    pub until_ms: Option<i64>,
    /// Most events (or groups) returned: 1 to [`MAX_LIST_LIMIT`].
    pub limit: i64,
    /// A gateway's id or name.
    pub gateway_id: Option<String>,
    pub team_id: Option<String>,
    pub verdict: Option<String>,
    /// Exact model name.
    pub model: Option<String>,
    /// Keyset position: only events strictly after it in the listing order
    /// (`created_at` desc, `event_id` desc). Lists only.
    pub after: Option<EventCursor>,
}

/// A position in the event listing (the last event of a page). Opaque to
/// API clients: [`EventCursor::encode`] is base64url of `created_at:event_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    pub created_at: i64,
    pub event_id: String,
}

impl EventCursor {
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.created_at, self.event_id))
    }

    /// The cursor [`EventCursor::encode`] made, or `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (at, id) = text.split_once(':')?;
        if at.is_empty() || !at.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
            return None;
        }
        Some(EventCursor {
            created_at: at.parse().ok()?,
            event_id: id.to_owned(),
        })
    }
}

/// One page of events, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    /// Where the next page starts; `None` when this is the last page.
    pub next: Option<EventCursor>,
}

/// What `GET /v1/events?group_by=` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Gateway,
    Team,
    Model,
    /// UTC calendar day.
    Day,
}

impl GroupBy {
    pub const ALL: [GroupBy; 4] = [
        GroupBy::Gateway,
        GroupBy::Team,
        GroupBy::Model,
        GroupBy::Day,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Gateway => "gateway",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// Totals of one group, from the hourly rollup.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventGroup {
    /// Gateway id, team id (`None`: events of no team), model, or UTC day
    /// `YYYY-MM-DD`.
    pub key: Option<String>,
    /// Gateway or team name, when known (other groupings: `None`).
    pub name: Option<String>,
    pub totals: Totals,
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

/// Upper bounds (ms) of the latency histogram's buckets (`event_latency_hour`);
/// the last one also takes anything slower. Kept in step with the backfill in
/// migration 000009.
pub const LATENCY_BOUNDS_MS: [i64; 23] = [
    1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000,
    20_000, 30_000, 60_000, 120_000, 300_000,
];

/// The histogram bucket (its upper bound) a latency falls in.
pub fn latency_bucket(latency_ms: i64) -> i64 {
    LATENCY_BOUNDS_MS
        .iter()
        .copied()
        .find(|&le| latency_ms <= le)
        .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1])
}

/// A narrow rollup row: (bucket, team, gateway, verdict or model).
type NarrowKey<'a> = (i64, &'a str, &'a str, &'a str);

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
    // The same upserts go to the hourly and the daily tables.
    let rollup = |grain: &str| {
        format!(
            "insert into event_rollup_{grain} \
             (bucket_start, team_id, gateway_id, model, verdict, requests, input_tokens, output_tokens, cost_micros, latency_ms_sum) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             on conflict (bucket_start, team_id, gateway_id, model, verdict) do update set \
             requests = event_rollup_{grain}.requests + excluded.requests, \
             input_tokens = event_rollup_{grain}.input_tokens + excluded.input_tokens, \
             output_tokens = event_rollup_{grain}.output_tokens + excluded.output_tokens, \
             cost_micros = event_rollup_{grain}.cost_micros + excluded.cost_micros, \
             latency_ms_sum = event_rollup_{grain}.latency_ms_sum + excluded.latency_ms_sum"
        )
    };
    let latency_rollup = |grain: &str| {
        format!(
            "insert into event_latency_{grain} (bucket_start, team_id, gateway_id, le_ms, requests) \
             values ($1, $2, $3, $4, $5) on conflict (bucket_start, team_id, gateway_id, le_ms) \
             do update set requests = event_latency_{grain}.requests + excluded.requests"
        )
    };
    let policy_rollup = |grain: &str| {
        format!(
            "insert into event_policy_{grain} (bucket_start, team_id, gateway_id, policy, verdict, requests) \
             values ($1, $2, $3, $4, $5, $6) on conflict (bucket_start, team_id, gateway_id, policy, verdict) \
             do update set requests = event_policy_{grain}.requests + excluded.requests"
        )
    };
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
        // The latency histogram and the policies that fired, likewise.
        let mut latencies: HashMap<(i64, &str, &str, i64), i64> = HashMap::new();
        let mut policies: HashMap<RollupKey<'_>, i64> = HashMap::new();
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
            *latencies
                .entry((key.0, key.1, key.2, latency_bucket(e.latency_ms)))
                .or_default() += 1;
            if let Some(policy) = e.policy.as_deref().filter(|p| !p.is_empty()) {
                *policies.entry((key.0, key.1, key.2, policy, key.4)).or_default() += 1;
            }
            let sum = sums.entry(key).or_default();
            sum.requests += 1;
            sum.input_tokens += e.input_tokens;
            sum.output_tokens += e.output_tokens;
            sum.cost_micros += e.cost_micros;
            sum.latency_ms += e.latency_ms;
        }
        for (grain, step) in [("hour", HOUR_MS), ("day", DAY_MS)] {
            // Hourly keys folded into this grain's buckets.
            let bucket = |hour: i64| hour - hour.rem_euclid(step);
            let mut grain_sums: HashMap<RollupKey<'_>, RollupSum> = HashMap::new();
            for ((hour, team, gateway, model, verdict), sum) in &sums {
                let g = grain_sums
                    .entry((bucket(*hour), team, gateway, model, verdict))
                    .or_default();
                g.requests += sum.requests;
                g.input_tokens += sum.input_tokens;
                g.output_tokens += sum.output_tokens;
                g.cost_micros += sum.cost_micros;
                g.latency_ms += sum.latency_ms;
            }
            let sql = rollup(grain);
            for ((start, team, gateway, model, verdict), sum) in &grain_sums {
                sqlx::query(&sql)
                    .bind(start)
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
            // The narrow copies: without the model, and without the verdict.
            for (narrow, column) in [("verdict", "verdict"), ("model", "model")] {
                let mut folded: HashMap<NarrowKey<'_>, (i64, i64, i64)> = HashMap::new();
                for ((start, team, gateway, model, verdict), sum) in &grain_sums {
                    let key = if narrow == "verdict" { verdict } else { model };
                    let f = folded.entry((*start, team, gateway, key)).or_default();
                    f.0 += sum.requests;
                    f.1 += sum.input_tokens + sum.output_tokens;
                    f.2 += sum.cost_micros;
                }
                let sql = format!(
                    "insert into event_{narrow}_{grain} (bucket_start, team_id, gateway_id, {column}, requests, tokens, cost_micros) \
                     values ($1, $2, $3, $4, $5, $6, $7) on conflict (bucket_start, team_id, gateway_id, {column}) do update set \
                     requests = event_{narrow}_{grain}.requests + excluded.requests, \
                     tokens = event_{narrow}_{grain}.tokens + excluded.tokens, \
                     cost_micros = event_{narrow}_{grain}.cost_micros + excluded.cost_micros"
                );
                for ((start, team, gateway, key), (requests, tokens, cost)) in &folded {
                    sqlx::query(&sql)
                        .bind(start)
                        .bind(team)
                        .bind(gateway)
                        .bind(key)
                        .bind(requests)
                        .bind(tokens)
                        .bind(cost)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let mut grain_latencies: HashMap<(i64, &str, &str, i64), i64> = HashMap::new();
            for ((hour, team, gateway, le), n) in &latencies {
                *grain_latencies.entry((bucket(*hour), team, gateway, *le)).or_default() += n;
            }
            let sql = latency_rollup(grain);
            for ((start, team, gateway, le), n) in &grain_latencies {
                sqlx::query(&sql)
                    .bind(start)
                    .bind(team)
                    .bind(gateway)
                    .bind(le)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut grain_policies: HashMap<RollupKey<'_>, i64> = HashMap::new();
            for ((hour, team, gateway, policy, verdict), n) in &policies {
                *grain_policies
                    .entry((bucket(*hour), team, gateway, policy, verdict))
                    .or_default() += n;
            }
            let sql = policy_rollup(grain);
            for ((start, team, gateway, policy, verdict), n) in &grain_policies {
                sqlx::query(&sql)
                    .bind(start)
                    .bind(team)
                    .bind(gateway)
                    .bind(policy)
                    .bind(verdict)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
            }
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

/// A bind value of a query built at run time.
#[derive(Debug, Clone, Copy)]
enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// The `where` clause of a query built at run time: only the filters given
/// become conditions (so indexes apply), with `$n` placeholders.
#[derive(Debug, Default)]
struct Where<'a> {
    conditions: Vec<String>,
    args: Vec<Arg<'a>>,
}

impl<'a> Where<'a> {
    /// Adds a bind value; returns its placeholder.
    fn arg(&mut self, arg: Arg<'a>) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Adds `column = value` when `value` is given.
    fn eq(&mut self, column: &str, value: Option<&'a str>) {
        if let Some(value) = value {
            let p = self.arg(Arg::Text(value));
            self.conditions.push(format!("{column} = {p}"));
        }
    }

    fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" where {}", self.conditions.join(" and "))
        }
    }
}

/// Binds `args` in order to a query of either backend.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match *arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(n) => query.bind(n),
            };
        }
        query
    }};
}

/// Up to `fetch` events matching `f`, newest first (`f.limit` is ignored).
async fn fetch_events(
    db: &Db,
    scope_team: Option<&str>,
    f: &EventFilter,
    fetch: i64,
) -> Result<Vec<EventRow>> {
    let mut w = Where::default();
    w.eq("team_id", scope_team);
    w.eq("team_id", f.team_id.as_deref());
    if let Some(gateway) = f.gateway_id.as_deref() {
        let p = w.arg(Arg::Text(gateway));
        w.conditions
            .push(format!("(gateway_id = {p} or gateway_name = {p})"));
    }
    w.eq("verdict", f.verdict.as_deref());
    w.eq("model", f.model.as_deref());
    if let Some(since) = f.since_ms {
        let p = w.arg(Arg::Int(since));
        w.conditions.push(format!("created_at >= {p}"));
    }
    if let Some(until) = f.until_ms {
        let p = w.arg(Arg::Int(until));
        w.conditions.push(format!("created_at < {p}"));
    }
    if let Some(after) = &f.after {
        let at = w.arg(Arg::Int(after.created_at));
        let id = w.arg(Arg::Text(&after.event_id));
        w.conditions.push(format!(
            "(created_at < {at} or (created_at = {at} and event_id < {id}))"
        ));
    }
    let where_sql = w.sql();
    let limit = w.arg(Arg::Int(fetch));
    let sql = format!(
        "select {COLUMNS} from event{where_sql} order by created_at desc, event_id desc limit {limit}"
    );
    Ok(with_pool!(db, pool => {
        bind_args!(sqlx::query_as::<_, EventRow>(&sql), &w.args)
            .fetch_all(pool)
            .await
    })?)
}

pub(crate) async fn list(
    db: &Db,
    scope_team: Option<&str>,
    f: &EventFilter,
) -> Result<Vec<EventRow>> {
    fetch_events(db, scope_team, f, f.limit.clamp(1, MAX_LIST_LIMIT)).await
}

/// One page of at most `f.limit` events after `f.after`, and the cursor of
/// the next page when there are more (one extra row is read to know).
pub(crate) async fn page(db: &Db, scope_team: Option<&str>, f: &EventFilter) -> Result<EventPage> {
    let limit = f.limit.clamp(1, MAX_LIST_LIMIT);
    let mut events = fetch_events(db, scope_team, f, limit + 1).await?;
    let more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = match events.last() {
        Some(last) if more => Some(EventCursor {
            created_at: last.created_at,
            event_id: last.event_id.clone(),
        }),
        _ => None,
    };
    Ok(EventPage { events, next })
}

/// Totals per gateway, team, model or UTC day, from the hourly rollup
/// (never the raw events). The range is widened to whole hours: every
/// hourly bucket overlapping [`since_ms`, `until_ms`) counts in full.
/// Filters on team, gateway (id or registered name), model and verdict
/// apply; `f.after` must be `None`. Sorted by cost, highest first (days:
/// oldest first); at most `f.limit` groups.
pub(crate) async fn group(
    db: &Db,
    scope_team: Option<&str>,
    by: GroupBy,
    f: &EventFilter,
) -> Result<Vec<EventGroup>> {
    if f.after.is_some() {
        return Err(crate::StoreError::Invalid(
            "grouped events are not paginated".to_owned(),
        ));
    }
    let mut w = Where::default();
    w.eq("r.team_id", scope_team);
    w.eq("r.team_id", f.team_id.as_deref());
    if let Some(gateway) = f.gateway_id.as_deref() {
        let p = w.arg(Arg::Text(gateway));
        w.conditions.push(format!(
            "(r.gateway_id = {p} or r.gateway_id in (select gateway_id from gateway where name = {p}))"
        ));
    }
    w.eq("r.verdict", f.verdict.as_deref());
    w.eq("r.model", f.model.as_deref());
    if let Some(since) = f.since_ms {
        let p = w.arg(Arg::Int(since - since.rem_euclid(HOUR_MS)));
        w.conditions.push(format!("r.bucket_start >= {p}"));
    }
    if let Some(until) = f.until_ms {
        // The bucket holding `until` still overlaps the range.
        let p = w.arg(Arg::Int(until));
        w.conditions.push(format!("r.bucket_start < {p}"));
    }
    let where_sql = w.sql();
    let sums = "cast(sum(r.requests) as bigint), \
        cast(sum(case when r.verdict in ('block', 'escalate') then r.requests else 0 end) as bigint), \
        cast(sum(r.input_tokens) as bigint), cast(sum(r.output_tokens) as bigint), \
        cast(sum(r.cost_micros) as bigint)";
    let totals = |(requests, blocked, input_tokens, output_tokens, cost_micros): (
        i64,
        i64,
        i64,
        i64,
        i64,
    )| Totals {
        requests,
        blocked,
        input_tokens,
        output_tokens,
        cost_micros,
    };
    let mut groups: Vec<EventGroup> = if by == GroupBy::Day {
        let sql = format!(
            "select r.bucket_start, {sums} from event_rollup_hour r{where_sql} group by r.bucket_start"
        );
        type Row = (i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = with_pool!(db, pool => {
            bind_args!(sqlx::query_as::<_, Row>(&sql), &w.args)
                .fetch_all(pool)
                .await
        })?;
        let mut days: std::collections::BTreeMap<i64, Totals> = Default::default();
        for (bucket, requests, blocked, input, output, cost) in rows {
            let day = days.entry(bucket.div_euclid(DAY_MS)).or_default();
            day.requests += requests;
            day.blocked += blocked;
            day.input_tokens += input;
            day.output_tokens += output;
            day.cost_micros += cost;
        }
        days.into_iter()
            .map(|(day, totals)| EventGroup {
                key: Some(utc_day(day * DAY_MS)),
                name: None,
                totals,
            })
            .collect()
    } else {
        let (column, name, join) = match by {
            GroupBy::Gateway => (
                "r.gateway_id",
                "max(g.name)",
                " left join gateway g on g.gateway_id = r.gateway_id",
            ),
            GroupBy::Team => (
                "r.team_id",
                "max(t.name)",
                " left join team t on t.team_id = r.team_id",
            ),
            GroupBy::Model | GroupBy::Day => ("r.model", "cast(null as text)", ""),
        };
        let sql = format!(
            "select {column}, {name}, {sums} from event_rollup_hour r{join}{where_sql} group by {column}"
        );
        type Row = (String, Option<String>, i64, i64, i64, i64, i64);
        let rows: Vec<Row> = with_pool!(db, pool => {
            bind_args!(sqlx::query_as::<_, Row>(&sql), &w.args)
                .fetch_all(pool)
                .await
        })?;
        let mut groups: Vec<EventGroup> = rows
            .into_iter()
            .map(
                |(key, name, requests, blocked, input, output, cost)| EventGroup {
                    // Events of no team are rolled up under "".
                    key: Some(key).filter(|k| !(by == GroupBy::Team && k.is_empty())),
                    name,
                    totals: totals((requests, blocked, input, output, cost)),
                },
            )
            .collect();
        groups.sort_by(|a, b| {
            b.totals
                .cost_micros
                .cmp(&a.totals.cost_micros)
                .then(b.totals.requests.cmp(&a.totals.requests))
                .then_with(|| a.key.cmp(&b.key))
        });
        groups
    };
    groups.truncate(usize::try_from(f.limit.clamp(1, MAX_LIST_LIMIT)).unwrap_or(usize::MAX));
    Ok(groups)
}

/// Length of a day bucket (UTC days have no leap seconds in unix time).
const DAY_MS: i64 = 24 * HOUR_MS;

/// `YYYY-MM-DD` (UTC) of unix milliseconds.
fn utc_day(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
        Err(_) => String::new(),
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::testing;

    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600_000;

    fn event(
        id: &str,
        at: i64,
        team: Option<&str>,
        gateway: &str,
        model: &str,
        verdict: &str,
    ) -> EventRow {
        let mut e = testing::event_for("x", 0);
        e.event_id = id.to_owned();
        e.created_at = at;
        e.team_id = team.map(str::to_owned);
        e.gateway_id = gateway.to_owned();
        e.gateway_name = format!("name-of-{gateway}");
        e.model = model.to_owned();
        e.verdict = verdict.to_owned();
        e.input_tokens = at.rem_euclid(97);
        e.output_tokens = at.rem_euclid(13);
        e.cost_micros = 1000 + at.rem_euclid(1009);
        e
    }

    fn seed() -> Vec<EventRow> {
        vec![
            event("e1", T0 + 10, Some("ta"), "g1", "m1", "allow"),
            // Three events in the same millisecond: ordered by id.
            event("e2", T0 + 20, Some("ta"), "g1", "m2", "block"),
            event("e3", T0 + 20, Some("tb"), "g2", "m1", "allow"),
            event("e4", T0 + 20, Some("ta"), "g2", "m1", "escalate"),
            event("e5", T0 + 2 * HOUR_MS + 5, None, "g2", "m2", "error"),
            // The next UTC day.
            event("e6", T0 + 25 * HOUR_MS, Some("tb"), "g1", "m2", "allow"),
            event(
                "e7",
                T0 + 25 * HOUR_MS + 1,
                Some("ta"),
                "g1",
                "m1",
                "redact",
            ),
        ]
    }

    /// Event ids in listing order (newest first, then id descending).
    fn ordered(events: &[EventRow], keep: impl Fn(&EventRow) -> bool) -> Vec<String> {
        let mut kept: Vec<&EventRow> = events.iter().filter(|e| keep(e)).collect();
        kept.sort_by(|a, b| (b.created_at, &b.event_id).cmp(&(a.created_at, &a.event_id)));
        kept.iter().map(|e| e.event_id.clone()).collect()
    }

    async fn walk(db: &Db, scope: Option<&str>, mut f: EventFilter) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let page = page(db, scope, &f).await.unwrap();
            assert!(page.events.len() <= usize::try_from(f.limit).unwrap());
            seen.extend(page.events.iter().map(|e| e.event_id.clone()));
            match page.next {
                Some(next) => {
                    assert_eq!(page.events.len(), usize::try_from(f.limit).unwrap());
                    f.after = Some(next);
                }
                None => return seen,
            }
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_anything_else() {
        let c = EventCursor {
            created_at: T0,
            event_id: "a:b-c".to_owned(),
        };
        assert_eq!(EventCursor::decode(&c.encode()), Some(c.clone()));
        assert!(!c.encode().contains(['+', '/', '=']));
        for bad in ["", "!!", "bm9wZQ", "OmFiYw", "LTE6YQ", "MTI6"] {
            assert_eq!(EventCursor::decode(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn pages_walk_every_event_once_in_order() {
        for tdb in testing::backends().await {
            let db = &tdb.db;
            let all = seed();
            insert_batch(db, &all).await.unwrap();
            for limit in [1, 2, 3, 7, 8, 1000] {
                let f = EventFilter {
                    limit,
                    ..Default::default()
                };
                assert_eq!(
                    walk(db, None, f).await,
                    ordered(&all, |_| true),
                    "limit {limit}"
                );
            }
            // Exactly one full page: no cursor.
            let p = page(
                db,
                None,
                &EventFilter {
                    limit: 7,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!((p.events.len(), p.next), (7, None));

            // Filters and the scope hold on every page.
            let f = EventFilter {
                limit: 1,
                model: Some("m1".to_owned()),
                ..Default::default()
            };
            assert_eq!(
                walk(db, Some("ta"), f).await,
                ordered(&all, |e| e.team_id.as_deref() == Some("ta")
                    && e.model == "m1")
            );
            let f = EventFilter {
                limit: 2,
                since_ms: Some(T0 + 20),
                until_ms: Some(T0 + 25 * HOUR_MS + 1),
                gateway_id: Some("name-of-g1".to_owned()),
                ..Default::default()
            };
            assert_eq!(walk(db, None, f).await, ["e6", "e2"]);
            let f = EventFilter {
                limit: 10,
                verdict: Some("allow".to_owned()),
                team_id: Some("tb".to_owned()),
                ..Default::default()
            };
            assert_eq!(walk(db, Some("ta"), f.clone()).await, Vec::<String>::new());
            assert_eq!(walk(db, None, f).await, ["e6", "e3"]);
            tdb.cleanup().await;
        }
    }

    #[tokio::test]
    async fn groups_add_up_to_the_events() {
        for tdb in testing::backends().await {
            let db = &tdb.db;
            let g1 = crate::gateways::register(
                db,
                &crate::gateways::Registration {
                    name: "edge".to_owned(),
                    teams: vec![],
                    address: "127.0.0.1:1".to_owned(),
                    version: "0".to_owned(),
                    config_hash: String::new(),
                    cost_limit_micros: None,
                    environment: None,
                    demo: false,
                },
            )
            .await
            .unwrap();
            let mut all = seed();
            for e in &mut all {
                if e.gateway_id == "g1" {
                    e.gateway_id = g1.clone();
                }
            }
            insert_batch(db, &all).await.unwrap();
            let sum = |keep: &dyn Fn(&EventRow) -> bool| {
                let mut t = Totals::default();
                for e in all.iter().filter(|e| keep(e)) {
                    t.requests += 1;
                    t.blocked += i64::from(e.verdict == "block" || e.verdict == "escalate");
                    t.input_tokens += e.input_tokens;
                    t.output_tokens += e.output_tokens;
                    t.cost_micros += e.cost_micros;
                }
                t
            };
            let all_of = |f: &EventFilter| EventFilter {
                limit: MAX_LIST_LIMIT,
                ..f.clone()
            };
            let f = all_of(&EventFilter::default());

            let by_gw = group(db, None, GroupBy::Gateway, &f).await.unwrap();
            assert_eq!(by_gw.len(), 2);
            for g in &by_gw {
                let key = g.key.clone().unwrap();
                assert_eq!(g.totals, sum(&|e| e.gateway_id == key));
                let name = (key == g1).then(|| "edge".to_owned());
                assert_eq!(g.name, name, "registered gateways are named");
            }
            assert!(by_gw[0].totals.cost_micros >= by_gw[1].totals.cost_micros);

            let by_team = group(db, None, GroupBy::Team, &f).await.unwrap();
            let keys: Vec<_> = by_team.iter().map(|g| g.key.clone()).collect();
            assert_eq!(keys.len(), 3);
            assert!(keys.contains(&None), "events of no team: {keys:?}");
            for g in &by_team {
                assert_eq!(g.totals, sum(&|e| e.team_id == g.key));
            }
            let costs: Vec<_> = by_team.iter().map(|g| g.totals.cost_micros).collect();
            assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");

            let by_model = group(db, Some("ta"), GroupBy::Model, &f).await.unwrap();
            for g in &by_model {
                assert_eq!(
                    g.totals,
                    sum(&|e| e.team_id.as_deref() == Some("ta") && Some(&e.model) == g.key.as_ref())
                );
                assert_eq!(g.name, None);
            }

            let by_day = group(db, None, GroupBy::Day, &f).await.unwrap();
            let days: Vec<_> = by_day.iter().map(|g| g.key.clone().unwrap()).collect();
            assert_eq!(days, ["2026-01-01", "2026-01-02"]);
            assert_eq!(by_day[0].totals, sum(&|e| e.created_at < T0 + 24 * HOUR_MS));

            // Filters; the range is widened to whole hours.
            let f = all_of(&EventFilter {
                since_ms: Some(T0 + 30 * 60_000),
                until_ms: Some(T0 + 2 * HOUR_MS + 1),
                gateway_id: Some("g2".to_owned()),
                ..Default::default()
            });
            let g = group(db, None, GroupBy::Team, &f).await.unwrap();
            assert_eq!(
                g.iter().map(|g| g.totals.requests).sum::<i64>(),
                sum(&|e| e.gateway_id == "g2" && e.created_at < T0 + 3 * HOUR_MS).requests
            );
            let f = all_of(&EventFilter {
                gateway_id: Some("edge".to_owned()),
                verdict: Some("allow".to_owned()),
                ..Default::default()
            });
            let g = group(db, None, GroupBy::Day, &f).await.unwrap();
            assert_eq!(g.len(), 2);
            assert_eq!(g[1].totals, sum(&|e| e.event_id == "e6"));
            let f = EventFilter {
                limit: 1,
                ..Default::default()
            };
            assert_eq!(group(db, None, GroupBy::Model, &f).await.unwrap().len(), 1);
            let f = EventFilter {
                limit: 10,
                after: Some(EventCursor {
                    created_at: 1,
                    event_id: "x".to_owned(),
                }),
                ..Default::default()
            };
            assert!(group(db, None, GroupBy::Model, &f).await.is_err());
            tdb.cleanup().await;
        }
    }
}
