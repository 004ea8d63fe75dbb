//! Monthly cost caps (`cost_limit`): each team's month-to-date spend, kept in
//! memory so the hot path does not query the database. The first request of
//! a team in a month reads the spend from the rollup once; finished requests
//! add their cost locally; a background refresh re-reads the database so
//! spend from other gateways of the team counts too.
//!
//! This is a soft, per-process view (what other replicas spent shows up
//! within one refresh interval); hard, fleet-wide reservations build on it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use store::Db;

/// How often the database view of every known team's spend is re-read.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct TeamSpend {
    month_start: i64,
    /// Spend read from the database at the last refresh.
    db_micros: i64,
    /// Cost of requests finished here since that read.
    local_micros: i64,
}

#[derive(Debug)]
pub struct Budgets {
    db: Db,
    teams: Mutex<HashMap<String, TeamSpend>>,
}

impl Budgets {
    pub fn new(db: Db) -> Self {
        Budgets {
            db,
            teams: Mutex::default(),
        }
    }

    fn cached(&self, team: &str, month_start: i64) -> Option<i64> {
        let teams = self.teams.lock().ok()?;
        let spend = teams.get(team).filter(|s| s.month_start == month_start)?;
        Some(spend.db_micros + spend.local_micros)
    }

    /// Month-to-date spend of `team` in micro-USD. Reads the database only
    /// the first time a team is seen in a month.
    pub async fn spent(&self, team: &str, now_ms: i64) -> store::Result<i64> {
        let month_start = store::month_start_ms(now_ms);
        if let Some(spent) = self.cached(team, month_start) {
            return Ok(spent);
        }
        let db_micros = store::events::team_spend_since(&self.db, team, month_start).await?;
        if let Ok(mut teams) = self.teams.lock() {
            teams.insert(
                team.to_owned(),
                TeamSpend {
                    month_start,
                    db_micros,
                    local_micros: 0,
                },
            );
        }
        Ok(db_micros)
    }

    /// Adds the cost of a finished request.
    pub fn record(&self, team: &str, micros: i64) {
        if let Ok(mut teams) = self.teams.lock()
            && let Some(spend) = teams.get_mut(team)
        {
            spend.local_micros += micros;
        }
    }

    /// Re-reads every known team's spend from the database.
    pub async fn refresh(&self) {
        let month_start = store::month_start_ms(store::now_ms());
        let teams: Vec<String> = match self.teams.lock() {
            Ok(teams) => teams.keys().cloned().collect(),
            Err(_) => return,
        };
        for team in teams {
            match store::events::team_spend_since(&self.db, &team, month_start).await {
                Ok(db_micros) => {
                    if let Ok(mut all) = self.teams.lock() {
                        all.insert(
                            team,
                            TeamSpend {
                                month_start,
                                db_micros,
                                local_micros: 0,
                            },
                        );
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "refreshing budgets failed; using the cached spend")
                }
            }
        }
    }

    pub async fn refresh_forever(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tick.tick().await;
            self.refresh().await;
        }
    }
}
