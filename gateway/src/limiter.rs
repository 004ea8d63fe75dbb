//! Fleet-wide rate limits per team: requests per minute and tokens per
//! minute, over fixed one-minute windows (UTC), shared by every replica of
//! every gateway of the team.
//!
//! Requests: each process *leases* request slots of the current window from
//! the shared counter — the database ([`store::budgets::take_request_slots`])
//! or Redis when `KT_REDIS_URL` is set — a tenth of the limit at a time (and
//! never more than half of what is left), then admits requests from its
//! slots without a round trip. The shared counter never grants more than the
//! limit, so across the fleet at most `max_requests_per_minute` requests are
//! admitted per minute. Slots one replica leased but did not use are not
//! available to the others, so near the limit a replica may refuse a little
//! early (at most a tenth of the limit per replica).
//!
//! Tokens are known only when a request ends, so they are checked before and
//! counted after: each process adds its tokens to the shared window once a
//! second and reads back the fleet's total; a request is refused while the
//! total reaches the limit.
//!
//! When the shared counter is unreachable, each process enforces the limits
//! alone (the limit per process) until it is back, and says so in the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use store::Db;
use store::budgets::WINDOW_MS;

/// How often token counts are shared.
pub const TOKEN_SYNC_EVERY: Duration = Duration::from_secs(1);
/// Slots leased at a time: this fraction of the limit (1/10).
const SLOT_DIVISOR: i64 = 10;

/// Where the fleet's counters live.
#[derive(Clone)]
pub enum SharedCounter {
    Db(Db),
    Redis(redis::aio::ConnectionManager),
}

impl std::fmt::Debug for SharedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SharedCounter::Db(_) => "SharedCounter::Db",
            SharedCounter::Redis(_) => "SharedCounter::Redis",
        })
    }
}

/// Takes up to `want` slots (at most half of what is left, at least one
/// while any is left) and returns how many were taken.
const TAKE_SLOTS_LUA: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = tonumber(ARGV[2]) - used
if left <= 0 then return 0 end
local take = math.min(tonumber(ARGV[1]), math.floor((left + 1) / 2))
if take < 1 then take = 1 end
redis.call('INCRBY', KEYS[1], take)
redis.call('PEXPIRE', KEYS[1], 180000)
return take
";

impl SharedCounter {
    /// Connects to Redis at `url` (`redis://…`).
    pub async fn redis(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid KT_REDIS_URL `{url}`: {e}"))?;
        let manager = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {url}: {e}"))?;
        Ok(SharedCounter::Redis(manager))
    }

    async fn take_slots(
        &self,
        team: &str,
        window: i64,
        want: i64,
        limit: i64,
    ) -> anyhow::Result<i64> {
        match self {
            SharedCounter::Db(db) => {
                Ok(store::budgets::take_request_slots(db, team, window, want, limit).await?)
            }
            SharedCounter::Redis(conn) => {
                let mut conn = conn.clone();
                let taken: i64 = redis::Script::new(TAKE_SLOTS_LUA)
                    .key(format!("kt:rpm:{team}:{window}"))
                    .arg(want)
                    .arg(limit)
                    .invoke_async(&mut conn)
                    .await?;
                Ok(taken)
            }
        }
    }

    async fn add_tokens(&self, team: &str, window: i64, tokens: i64) -> anyhow::Result<i64> {
        match self {
            SharedCounter::Db(db) => {
                Ok(store::budgets::add_window_tokens(db, team, window, tokens).await?)
            }
            SharedCounter::Redis(conn) => {
                let mut conn = conn.clone();
                let key = format!("kt:tpm:{team}:{window}");
                let (total, _): (i64, i64) = redis::pipe()
                    .atomic()
                    .cmd("INCRBY")
                    .arg(&key)
                    .arg(tokens)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(180_000)
                    .query_async(&mut conn)
                    .await?;
                Ok(total)
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct TeamWindow {
    window_start: i64,
    /// Request slots leased and not used yet.
    slots: i64,
    /// Requests admitted in this window while the shared counter was down.
    alone: i64,
    /// The fleet's tokens in this window at the last sync.
    fleet_tokens: i64,
    /// Tokens of requests finished here, not yet shared.
    unshared_tokens: i64,
    /// A tokens-per-minute limit applies to this team.
    tpm: bool,
}

impl TeamWindow {
    fn roll(&mut self, window_start: i64) {
        if self.window_start != window_start {
            *self = TeamWindow {
                window_start,
                tpm: self.tpm,
                ..TeamWindow::default()
            };
        }
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    shared: SharedCounter,
    teams: Mutex<HashMap<String, TeamWindow>>,
    acquiring: tokio::sync::Mutex<()>,
}

fn window_of(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(WINDOW_MS)
}

/// Time until the window containing `now_ms` ends.
fn until_next_window(now_ms: i64) -> Duration {
    let left = window_of(now_ms) + WINDOW_MS - now_ms;
    Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

impl RateLimiter {
    pub fn new(shared: SharedCounter) -> Self {
        RateLimiter {
            shared,
            teams: Mutex::default(),
            acquiring: tokio::sync::Mutex::new(()),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self.shared {
            SharedCounter::Db(_) => "database",
            SharedCounter::Redis(_) => "redis",
        }
    }

    fn take_local(&self, team: &str, window: i64) -> bool {
        let Ok(mut teams) = self.teams.lock() else {
            return false;
        };
        let w = teams.entry(team.to_owned()).or_default();
        w.roll(window);
        if w.slots > 0 {
            w.slots -= 1;
            true
        } else {
            false
        }
    }

    /// Admits one request of `team` if the fleet admitted fewer than `limit`
    /// this minute; otherwise returns how long until the next minute.
    pub async fn admit(&self, team: &str, limit: u32, now_ms: i64) -> Result<(), Duration> {
        let window = window_of(now_ms);
        if self.take_local(team, window) {
            return Ok(());
        }
        let _one_at_a_time = self.acquiring.lock().await;
        if self.take_local(team, window) {
            return Ok(());
        }
        let limit = i64::from(limit);
        let want = (limit / SLOT_DIVISOR).max(1);
        let taken = match self.shared.take_slots(team, window, want, limit).await {
            Ok(taken) => taken,
            Err(err) => {
                tracing::warn!(error = %err, team, "the shared rate-limit counter is unreachable; limiting this process alone");
                return self.admit_alone(team, window, limit, now_ms);
            }
        };
        if taken == 0 {
            return Err(until_next_window(now_ms));
        }
        if let Ok(mut teams) = self.teams.lock() {
            let w = teams.entry(team.to_owned()).or_default();
            w.roll(window);
            w.slots += taken - 1;
        }
        Ok(())
    }

    fn admit_alone(
        &self,
        team: &str,
        window: i64,
        limit: i64,
        now_ms: i64,
    ) -> Result<(), Duration> {
        let Ok(mut teams) = self.teams.lock() else {
            return Ok(());
        };
        let w = teams.entry(team.to_owned()).or_default();
        w.roll(window);
        if w.alone < limit {
            w.alone += 1;
            Ok(())
        } else {
            Err(until_next_window(now_ms))
        }
    }

    /// Checks that the fleet used fewer than `limit` tokens of `team` this
    /// minute; otherwise returns how long until the next minute.
    pub fn check_tokens(&self, team: &str, limit: u32, now_ms: i64) -> Result<(), Duration> {
        let Ok(mut teams) = self.teams.lock() else {
            return Ok(());
        };
        let w = teams.entry(team.to_owned()).or_default();
        w.roll(window_of(now_ms));
        w.tpm = true;
        if w.fleet_tokens + w.unshared_tokens < i64::from(limit) {
            Ok(())
        } else {
            Err(until_next_window(now_ms))
        }
    }

    /// Counts the tokens of a finished request.
    pub fn record_tokens(&self, team: &str, tokens: u64, now_ms: i64) {
        if tokens == 0 {
            return;
        }
        if let Ok(mut teams) = self.teams.lock()
            && let Some(w) = teams.get_mut(team)
            && w.tpm
        {
            w.roll(window_of(now_ms));
            w.unshared_tokens += i64::try_from(tokens).unwrap_or(i64::MAX);
        }
    }

    /// Shares this process's token counts and reads the fleet's totals.
    pub async fn sync_tokens(&self, now_ms: i64) {
        let window = window_of(now_ms);
        let pending: Vec<(String, i64)> = match self.teams.lock() {
            Ok(mut teams) => teams
                .iter_mut()
                .filter(|(_, w)| w.tpm)
                .map(|(team, w)| {
                    w.roll(window);
                    (team.clone(), w.unshared_tokens)
                })
                .collect(),
            Err(_) => return,
        };
        for (team, tokens) in pending {
            match self.shared.add_tokens(&team, window, tokens).await {
                Ok(total) => {
                    if let Ok(mut teams) = self.teams.lock()
                        && let Some(w) = teams.get_mut(&team)
                        && w.window_start == window
                    {
                        w.unshared_tokens -= tokens;
                        w.fleet_tokens = total;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "sharing token counts failed; counting locally");
                }
            }
        }
    }

    pub async fn sync_forever(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(TOKEN_SYNC_EVERY);
        loop {
            tick.tick().await;
            self.sync_tokens(store::now_ms()).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_processes_share_one_request_limit_per_minute() {
        for tdb in store::testing::backends().await {
            let a = RateLimiter::new(SharedCounter::Db(tdb.db.clone()));
            let b = RateLimiter::new(SharedCounter::Db(tdb.db.clone()));
            let t0 = 1_000 * WINDOW_MS + 5_000;
            let mut admitted = 0;
            for i in 0..100 {
                let p = if i % 3 == 0 { &a } else { &b };
                if p.admit("team", 30, t0).await.is_ok() {
                    admitted += 1;
                }
            }
            assert_eq!(admitted, 30, "{}", tdb.name());
            let wait = a.admit("team", 30, t0).await.unwrap_err();
            assert_eq!(wait, Duration::from_secs(55));
            assert!(a.admit("other", 30, t0).await.is_ok());
            assert!(b.admit("team", 30, t0 + WINDOW_MS).await.is_ok());
            tdb.cleanup().await;
        }
    }

    #[tokio::test]
    async fn tokens_per_minute_are_counted_across_processes() {
        for tdb in store::testing::backends().await {
            let a = RateLimiter::new(SharedCounter::Db(tdb.db.clone()));
            let b = RateLimiter::new(SharedCounter::Db(tdb.db.clone()));
            let t0 = 2_000 * WINDOW_MS + 1_000;
            assert!(a.check_tokens("t", 100, t0).is_ok());
            assert!(b.check_tokens("t", 100, t0).is_ok());
            a.record_tokens("t", 60, t0);
            b.record_tokens("t", 50, t0);
            a.sync_tokens(t0).await;
            b.sync_tokens(t0).await;
            a.sync_tokens(t0).await;
            assert!(a.check_tokens("t", 100, t0).is_err(), "{}", tdb.name());
            assert!(b.check_tokens("t", 100, t0).is_err(), "{}", tdb.name());
            assert!(a.check_tokens("t", 100, t0 + WINDOW_MS).is_ok());
            tdb.cleanup().await;
        }
    }

    #[tokio::test]
    async fn redis_counts_like_the_database() {
        let url = std::env::var("KT_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let shared = match SharedCounter::redis(&url).await {
            Ok(shared) => shared,
            Err(err) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true but Redis at {url} is unreachable: {err}")
            }
            Err(err) => {
                eprintln!("SKIPPED (Redis): {err}; set KT_TEST_REDIS_URL to run this test");
                return;
            }
        };
        let team = format!("test-{}", store::new_id());
        let a = RateLimiter::new(shared.clone());
        let b = RateLimiter::new(shared);
        let t0 = window_of(store::now_ms());
        let mut admitted = 0;
        for i in 0..50 {
            let p = if i % 2 == 0 { &a } else { &b };
            if p.admit(&team, 20, t0).await.is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 20);
        assert!(a.check_tokens(&team, 10, t0).is_ok());
        a.record_tokens(&team, 7, t0);
        b.check_tokens(&team, 10, t0).unwrap();
        b.record_tokens(&team, 7, t0);
        a.sync_tokens(t0).await;
        b.sync_tokens(t0).await;
        assert!(b.check_tokens(&team, 10, t0).is_err());
    }
}
