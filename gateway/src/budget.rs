//! Monthly cost caps (`cost_limit`): each team's month-to-date spend, kept in
//! memory so the hot path does not query the database. The first request of
//! a team in a month reads the spend from the rollup once; finished requests
//! add their cost locally; a background refresh re-reads the database so
//! spend from other gateways of the team counts too.
//!
//! Within one gateway process the cap is hard: each request reserves its
//! worst-case cost (prompt estimate plus `max_tokens` at the output price)
//! before it is forwarded, and is refused with 402 when spent + reserved +
//! that worst case would pass the cap; the reservation is settled to the
//! real cost when the request ends. So concurrent requests cannot overshoot
//! the cap by more than what a request's real usage exceeds its reservation.
//! Across replicas, what the others spent is seen within one refresh
//! interval (fleet-wide leases are the next step).

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
    /// Worst-case cost of requests in flight here.
    reserved_micros: i64,
    /// Cost of this process's events stored in the database so far, and
    /// the value of that at the last refresh: the difference is the part of
    /// `local_micros` that the next database read already includes.
    stored_micros: i64,
    stored_at_refresh: i64,
}

/// A reservation of a request's worst-case cost; settle it with
/// [`Budgets::settle`] (a dropped reservation is released by its owner).
#[derive(Debug, Clone)]
pub struct Reservation {
    pub team: String,
    pub micros: i64,
}

/// The cap would be passed.
#[derive(Debug, Clone, Copy)]
pub struct Exceeded {
    pub spent_micros: i64,
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

    /// Loads the team's month-to-date spend from the database the first time
    /// the team is seen in a month.
    async fn ensure_loaded(&self, team: &str, month_start: i64) -> store::Result<()> {
        let loaded = self
            .teams
            .lock()
            .is_ok_and(|t| t.get(team).is_some_and(|s| s.month_start == month_start));
        if loaded {
            return Ok(());
        }
        let db_micros = store::events::team_spend_since(&self.db, team, month_start).await?;
        if let Ok(mut teams) = self.teams.lock() {
            let fresh = TeamSpend {
                month_start,
                db_micros,
                local_micros: 0,
                reserved_micros: 0,
                stored_micros: 0,
                stored_at_refresh: 0,
            };
            let entry = teams.entry(team.to_owned()).or_insert(fresh);
            if entry.month_start != month_start {
                *entry = TeamSpend {
                    reserved_micros: entry.reserved_micros,
                    ..fresh
                };
            }
        }
        Ok(())
    }

    /// Reserves `worst_micros` for a request of `team` if month-to-date spend
    /// plus everything reserved plus this stays within `limit_micros`.
    pub async fn reserve(
        &self,
        team: &str,
        worst_micros: i64,
        limit_micros: i64,
        now_ms: i64,
    ) -> store::Result<Result<Reservation, Exceeded>> {
        let month_start = store::month_start_ms(now_ms);
        self.ensure_loaded(team, month_start).await?;
        let Ok(mut teams) = self.teams.lock() else {
            return Ok(Err(Exceeded { spent_micros: 0 }));
        };
        let Some(spend) = teams.get_mut(team) else {
            return Ok(Err(Exceeded { spent_micros: 0 }));
        };
        let spent = spend.db_micros + spend.local_micros;
        if spent + spend.reserved_micros + worst_micros > limit_micros || spent >= limit_micros {
            return Ok(Err(Exceeded {
                spent_micros: spent,
            }));
        }
        spend.reserved_micros += worst_micros;
        Ok(Ok(Reservation {
            team: team.to_owned(),
            micros: worst_micros,
        }))
    }

    /// Ends a reservation: releases it and counts the request's real cost.
    pub fn settle(&self, reservation: &Reservation, actual_micros: i64) {
        if let Ok(mut teams) = self.teams.lock()
            && let Some(spend) = teams.get_mut(&reservation.team)
        {
            spend.reserved_micros = (spend.reserved_micros - reservation.micros).max(0);
            spend.local_micros += actual_micros;
        }
    }

    /// Adds the cost of a finished request that held no reservation.
    pub fn record(&self, team: &str, micros: i64) {
        if let Ok(mut teams) = self.teams.lock()
            && let Some(spend) = teams.get_mut(team)
        {
            spend.local_micros += micros;
        }
    }

    /// Called by the event spool once events are stored in the database.
    pub fn stored(&self, events: &[store::events::EventRow]) {
        let Ok(mut teams) = self.teams.lock() else {
            return;
        };
        for event in events {
            if let Some(spend) = event.team_id.as_ref().and_then(|t| teams.get_mut(t)) {
                spend.stored_micros += event.cost_micros;
            }
        }
    }

    /// Re-reads every known team's spend from the database (which includes
    /// what other replicas spent). Local spend not yet stored is kept; spend
    /// stored while the read ran may be counted twice until the next refresh
    /// (never less than the truth).
    pub async fn refresh(&self) {
        let month_start = store::month_start_ms(store::now_ms());
        let snapshot: Vec<(String, i64)> = match self.teams.lock() {
            Ok(teams) => teams
                .iter()
                .map(|(t, s)| (t.clone(), s.stored_micros))
                .collect(),
            Err(_) => return,
        };
        for (team, stored_before_read) in snapshot {
            match store::events::team_spend_since(&self.db, &team, month_start).await {
                Ok(db_micros) => {
                    if let Ok(mut all) = self.teams.lock()
                        && let Some(spend) = all.get_mut(&team)
                        && spend.month_start == month_start
                    {
                        let now_in_db = stored_before_read - spend.stored_at_refresh;
                        spend.local_micros = (spend.local_micros - now_in_db).max(0);
                        spend.stored_at_refresh = stored_before_read;
                        spend.db_micros = db_micros;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_bound_concurrent_spend_and_refresh_keeps_unstored_spend() {
        let tdb = store::testing::sqlite().await;
        let budgets = Budgets::new(tdb.db.clone());
        let now = store::now_ms();
        // Cap 100: two reservations of 40 fit, a third does not.
        let a = budgets.reserve("t", 40, 100, now).await.unwrap().unwrap();
        let b = budgets.reserve("t", 40, 100, now).await.unwrap().unwrap();
        assert!(budgets.reserve("t", 40, 100, now).await.unwrap().is_err());
        // Settling to the real (lower) cost frees room.
        budgets.settle(&a, 10);
        budgets.settle(&b, 10);
        let c = budgets.reserve("t", 40, 100, now).await.unwrap().unwrap();
        budgets.settle(&c, 30);
        // Spent 50, not yet stored in the database: a refresh must not forget it.
        budgets.refresh().await;
        assert!(budgets.reserve("t", 51, 100, now).await.unwrap().is_err());
        let d = budgets.reserve("t", 50, 100, now).await.unwrap().unwrap();
        budgets.settle(&d, 0);
        tdb.cleanup().await;
    }
}
