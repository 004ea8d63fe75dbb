//! What the console's pages read: traffic, verdicts, spend, latency and the
//! policies that fired, always from the rollups (`event_rollup_*`,
//! `event_latency_*`, `event_policy_*`, hourly and daily), never by
//! scanning events, so a page costs the same with ten events or ten million.
//!
//! Every function takes the caller's team filter (`None` = the whole org)
//! and is reached through [`crate::Scoped`].

use serde::{Deserialize, Serialize};

use crate::events::HOUR_MS;
use crate::{Db, Result, with_pool};

/// Which slice of the rollups to read.
#[derive(Debug, Clone, Default)]
pub struct RollupFilter {
    /// Start of the range (rounded down to the hour).
    pub since_ms: i64,
    /// One gateway only (by id).
    pub gateway_id: Option<String>,
    /// One team only (within the caller's scope).
    pub team_id: Option<String>,
    /// Read the daily rollups (the range then starts at midnight UTC):
    /// for ranges of days, ~24 times fewer rows than the hourly ones.
    pub daily: bool,
}

impl RollupFilter {
    fn grain(&self) -> (&'static str, i64) {
        if self.daily {
            ("day", DAY_MS)
        } else {
            ("hour", HOUR_MS)
        }
    }
}

/// One day, in unix ms.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// One hour of one verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct VerdictHour {
    pub bucket_start: i64,
    pub verdict: String,
    pub requests: i64,
    pub tokens: i64,
    pub cost_micros: i64,
}

/// How often a policy fired with one verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PolicyCount {
    pub policy: String,
    pub verdict: String,
    pub requests: i64,
}

/// Spend of one team, model or day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Spend {
    /// Team id, model, or the hour a day starts at (as text).
    pub key: String,
    pub requests: i64,
    pub tokens: i64,
    pub cost_micros: i64,
}

/// The latency histogram of a range: `(upper bound ms, requests)`, by bound.
pub type Histogram = Vec<(i64, i64)>;

/// `where` clause over a rollup table aliased `r`, and its arguments (the
/// team filter of the scope, then the filter's).
fn conditions(scope_team: Option<&str>, f: &RollupFilter) -> (String, Vec<String>, i64) {
    let mut sql = String::from(" where r.bucket_start >= $1");
    let mut args = Vec::new();
    for (column, value) in [
        ("r.team_id", scope_team.map(str::to_owned)),
        ("r.team_id", f.team_id.clone()),
        ("r.gateway_id", f.gateway_id.clone()),
    ] {
        if let Some(value) = value {
            args.push(value);
            sql.push_str(&format!(" and {column} = ${}", args.len() + 1));
        }
    }
    let (_, step) = f.grain();
    (sql, args, f.since_ms - f.since_ms.rem_euclid(step))
}

macro_rules! fetch {
    ($db:expr, $ty:ty, $sql:expr, $since:expr, $args:expr) => {{
        let sql = $sql;
        with_pool!($db, pool => {
            let mut q = sqlx::query_as::<_, $ty>(&sql).bind($since);
            for arg in $args {
                q = q.bind(arg);
            }
            q.fetch_all(pool).await
        })
    }};
}

/// Requests and spend per hour and verdict.
pub(crate) async fn verdict_hours(
    db: &Db,
    scope_team: Option<&str>,
    f: &RollupFilter,
) -> Result<Vec<VerdictHour>> {
    let (w, args, since) = conditions(scope_team, f);
    let (g, _) = f.grain();
    Ok(fetch!(
        db,
        VerdictHour,
        format!(
            "select r.bucket_start, r.verdict, cast(sum(r.requests) as bigint) as requests, \
             cast(sum(r.tokens) as bigint) as tokens, \
             cast(sum(r.cost_micros) as bigint) as cost_micros from event_verdict_{g} r{w} \
             group by r.bucket_start, r.verdict order by r.bucket_start, r.verdict"
        ),
        since,
        &args
    )?)
}

/// The latency histogram of the range.
pub(crate) async fn latency(
    db: &Db,
    scope_team: Option<&str>,
    f: &RollupFilter,
) -> Result<Histogram> {
    let (w, args, since) = conditions(scope_team, f);
    let (g, _) = f.grain();
    Ok(fetch!(
        db,
        (i64, i64),
        format!(
            "select r.le_ms, cast(sum(r.requests) as bigint) from event_latency_{g} r{w} \
             group by r.le_ms order by r.le_ms"
        ),
        since,
        &args
    )?)
}

/// The policies that fired most often (blocked, redacted, warned…).
pub(crate) async fn top_policies(
    db: &Db,
    scope_team: Option<&str>,
    f: &RollupFilter,
    limit: i64,
) -> Result<Vec<PolicyCount>> {
    let (w, args, since) = conditions(scope_team, f);
    let (g, _) = f.grain();
    let mut rows: Vec<PolicyCount> = fetch!(
        db,
        PolicyCount,
        format!(
            "select r.policy, r.verdict, cast(sum(r.requests) as bigint) as requests \
             from event_policy_{g} r{w} group by r.policy, r.verdict"
        ),
        since,
        &args
    )?;
    rows.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| (&a.policy, &a.verdict).cmp(&(&b.policy, &b.verdict)))
    });
    rows.truncate(usize::try_from(limit.max(0)).unwrap_or(0));
    Ok(rows)
}

/// Spend grouped by `team_id` or `model`, highest first.
pub(crate) async fn spend_by(
    db: &Db,
    scope_team: Option<&str>,
    f: &RollupFilter,
    column: SpendBy,
) -> Result<Vec<Spend>> {
    let (w, args, since) = conditions(scope_team, f);
    let (g, _) = f.grain();
    // The narrow rollups: by model from `event_model_*`, the rest from
    // `event_verdict_*` (a few thousand rows a month for a large org).
    let (column, table) = match column {
        SpendBy::Team => ("r.team_id", "verdict"),
        SpendBy::Model => ("r.model", "model"),
        SpendBy::Bucket => ("cast(r.bucket_start as text)", "verdict"),
    };
    let mut rows: Vec<Spend> = fetch!(
        db,
        Spend,
        format!(
            "select {column} as key, cast(sum(r.requests) as bigint) as requests, \
             cast(sum(r.tokens) as bigint) as tokens, \
             cast(sum(r.cost_micros) as bigint) as cost_micros \
             from event_{table}_{g} r{w} group by {column}"
        ),
        since,
        &args
    )?;
    rows.sort_by(|a, b| {
        b.cost_micros
            .cmp(&a.cost_micros)
            .then(b.requests.cmp(&a.requests))
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(rows)
}

/// What [`spend_by`] groups on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendBy {
    Team,
    Model,
    /// Per rollup bucket: an hour, or a day with [`RollupFilter::daily`]
    /// (the key is its start in unix ms).
    Bucket,
}

/// The `q`-quantile (0..=1) of a histogram, interpolated linearly within the
/// bucket it falls in (the first bucket starts at 0 ms). `None` when empty.
pub fn quantile(hist: &[(i64, i64)], q: f64) -> Option<f64> {
    let total: i64 = hist.iter().map(|(_, n)| n).sum();
    if total <= 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0i64;
    let mut lower = 0i64;
    for &(le, n) in hist {
        if n > 0 && (seen + n) as f64 >= rank {
            let within = (rank - seen as f64) / n as f64;
            return Some(lower as f64 + (le - lower) as f64 * within);
        }
        seen += n;
        lower = le;
    }
    hist.last().map(|&(le, _)| le as f64)
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
        team: &str,
        gateway: &str,
        verdict: &str,
        latency_ms: i64,
    ) -> crate::events::EventRow {
        let mut e = testing::event_for("x", at);
        e.event_id = id.to_owned();
        e.created_at = at;
        e.team_id = Some(team.to_owned());
        e.gateway_id = gateway.to_owned();
        e.verdict = verdict.to_owned();
        e.latency_ms = latency_ms;
        e.cost_micros = 100;
        e.policy = (verdict != "allow").then(|| format!("{verdict}-policy"));
        e
    }

    /// The rollups the console reads are maintained with each batch, per
    /// team and gateway, and a team-scoped handle sees only its own rows.
    #[tokio::test]
    async fn console_rollups_follow_the_events_and_the_scope() {
        for tdb in testing::backends().await {
            let db = &tdb.db;
            let mut batch = Vec::new();
            for i in 0..20 {
                batch.push(event(&format!("a{i}"), T0 + i, "ta", "g1", "allow", 3));
            }
            batch.push(event("b1", T0 + 50, "ta", "g1", "block", 0));
            batch.push(event("b2", T0 + HOUR_MS + 1, "ta", "g2", "block", 0));
            batch.push(event("slow", T0 + 60, "ta", "g1", "allow", 2_500));
            batch.push(event("other", T0 + 70, "tb", "g1", "redact", 40));
            crate::events::insert_batch(db, &batch).await.unwrap();
            // A retried batch counts nothing twice.
            crate::events::insert_batch(db, &batch).await.unwrap();

            let org = db.scoped(crate::Scope::Org);
            let all = RollupFilter {
                since_ms: T0,
                ..Default::default()
            };
            let hours = org.verdict_hours(&all).await.unwrap();
            assert_eq!(hours.iter().map(|h| h.requests).sum::<i64>(), 24);
            assert_eq!(hours.iter().map(|h| h.cost_micros).sum::<i64>(), 2_400);

            // The daily rollups hold the same figures.
            let daily = RollupFilter {
                since_ms: T0 + 5,
                daily: true,
                ..Default::default()
            };
            let days = org.verdict_hours(&daily).await.unwrap();
            assert_eq!(days.iter().map(|h| h.requests).sum::<i64>(), 24);
            assert!(days.iter().all(|d| d.bucket_start == T0), "{days:?}");
            assert_eq!(
                org.top_policies(&daily, 10).await.unwrap(),
                org.top_policies(&all, 10).await.unwrap()
            );
            assert_eq!(
                org.latency_histogram(&daily).await.unwrap(),
                org.latency_histogram(&all).await.unwrap()
            );

            let g1 = RollupFilter {
                since_ms: T0,
                gateway_id: Some("g1".into()),
                ..Default::default()
            };
            let hist = org.latency_histogram(&g1).await.unwrap();
            assert_eq!(hist.iter().map(|(_, n)| n).sum::<i64>(), 23);
            assert!(hist.contains(&(5, 20)), "{hist:?}");
            assert!(hist.contains(&(3_000, 1)), "{hist:?}");
            let p50 = quantile(&hist, 0.5).unwrap();
            assert!((2.0..=5.0).contains(&p50), "{p50}");

            let policies = org.top_policies(&all, 10).await.unwrap();
            assert_eq!(
                policies[0],
                PolicyCount {
                    policy: "block-policy".into(),
                    verdict: "block".into(),
                    requests: 2
                }
            );
            assert_eq!(policies.len(), 2);

            let by_team = org.spend_by(&all, SpendBy::Team).await.unwrap();
            assert_eq!(by_team[0].key, "ta");
            assert_eq!(by_team[0].requests, 23);

            // Team tb sees only its own row, everywhere.
            let tb = db.scoped(crate::Scope::Team("tb".into()));
            assert_eq!(
                tb.verdict_hours(&all)
                    .await
                    .unwrap()
                    .iter()
                    .map(|h| h.requests)
                    .sum::<i64>(),
                1
            );
            assert_eq!(tb.latency_histogram(&all).await.unwrap(), vec![(50, 1)]);
            let tb_policies = tb.top_policies(&all, 10).await.unwrap();
            assert_eq!(tb_policies.len(), 1);
            assert_eq!(tb_policies[0].verdict, "redact");
            let tb_spend = tb.spend_by(&all, SpendBy::Model).await.unwrap();
            assert_eq!(tb_spend.iter().map(|s| s.requests).sum::<i64>(), 1);
            // Asking for another team's rows within a team scope finds nothing.
            let sneaky = RollupFilter {
                since_ms: T0,
                team_id: Some("ta".into()),
                ..Default::default()
            };
            assert!(tb.verdict_hours(&sneaky).await.unwrap().is_empty());
            tdb.cleanup().await;
        }
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        assert_eq!(quantile(&[], 0.5), None);
        // 100 requests all ≤ 10 ms (bucket 5..10): the median is in the middle.
        let h = vec![(5, 0), (10, 100)];
        assert_eq!(quantile(&h, 0.5), Some(7.5));
        // 90 fast, 10 slow: p50 among the fast ones, p95 among the slow ones.
        let h = vec![(1, 90), (1000, 10)];
        let p50 = quantile(&h, 0.5).unwrap();
        let p95 = quantile(&h, 0.95).unwrap();
        assert!(p50 <= 1.0, "{p50}");
        assert!((500.0..=1000.0).contains(&p95), "{p95}");
    }
}
