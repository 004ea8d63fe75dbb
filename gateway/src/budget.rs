//! Hard budgets — the monthly `cost_limit` and the team wallet — enforced
//! fleet-wide without a database round trip per request.
//!
//! Each gateway process holds a *lease* per team: a slice of the team's
//! remaining budget granted by the database ([`store::budgets::lease`]), in a
//! transaction serialised per team that grants only while
//! `stored spend + all live leases + grant ≤ cap` for the monthly cap and for
//! the wallet. Requests spend from the local lease:
//!
//! 1. before forwarding, a request reserves its worst case (prompt estimate
//!    plus `max_tokens` at the output price) from the lease; when the lease
//!    is short, the process asks the database for more (at least what the
//!    request needs, at most a slice of the cap, never more than half of the
//!    room left); when the database refuses, the caller gets 402;
//! 2. when it ends, the reservation is released and the real cost counted
//!    against the lease as "spent, not yet stored";
//! 3. when the spool stores the process's events, the same transaction lowers
//!    the lease by their cost and adds it to the stored spend (and the
//!    wallet), so spend is never counted in neither place.
//!
//! Every 5 s a process renews its leases and gives back what it does not
//! need (keeping one slice for teams that were active). A lease that is not
//! renewed (a process killed with `kill -9`) stops counting after
//! [`LEASE_TTL_MS`].
//!
//! **Guarantee**: the fleet's spend passes a cap only by what in-flight
//! requests' final usage exceeds their reservation (a model answering more
//! than its `max_tokens`, or a prompt longer than estimated). Two caveats,
//! both bounded by one lease: a process cut off from the database longer than
//! the lease lifetime stops spending from it (it then refuses capped requests
//! with 503) but its events stored later still count; spend of a process
//! killed before its events were stored is replayed from its spool on restart,
//! after its lease may have expired.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use store::Db;
use store::budgets::{LeaseGrant, LeaseRequest};

/// How often leases are renewed and right-sized.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// How long a lease counts without renewal.
pub const LEASE_TTL_MS: i64 = 120_000;
/// A lease is used locally only while this far from its expiry.
const LEASE_MARGIN_MS: i64 = 10_000;
/// A lease slice: this fraction of the cap (1/20 = 5 %).
const SLICE_DIVISOR: i64 = 20;

#[derive(Debug, Clone, Copy)]
struct TeamBudget {
    month_start: i64,
    /// This process's lease (mirrors the database row).
    leased: i64,
    /// Worst-case cost of requests in flight here.
    reserved: i64,
    /// Cost of finished requests not yet stored (still covered by the lease).
    unstored: i64,
    /// The lease may be spent from until then (unix ms).
    valid_until: i64,
    /// A reservation succeeded since the last renewal (a refused process
    /// keeps no spare slice, so what it holds goes back to the others).
    active: bool,
    /// The team has a wallet (checked on first sight and every refresh).
    has_wallet: bool,
    /// Slice to lease at a time.
    slice: i64,
}

impl TeamBudget {
    fn available(&self, now_ms: i64) -> i64 {
        if now_ms >= self.valid_until {
            return 0;
        }
        self.leased - self.reserved - self.unstored
    }
}

/// A reservation of a request's worst-case cost; settle it with
/// [`Budgets::settle`].
#[derive(Debug, Clone)]
pub struct Reservation {
    pub team: String,
    pub micros: i64,
}

/// Which cap refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// The monthly `cost_limit`.
    Monthly,
    /// The team's wallet.
    Wallet,
}

/// The cap would be passed.
#[derive(Debug, Clone, Copy)]
pub struct Exceeded {
    pub cap: Cap,
    /// Stored spend this month (monthly cap).
    pub month_spent_micros: i64,
    /// Wallet balance left (allocated − spent − held by gateways).
    pub wallet_balance_micros: i64,
}

#[derive(Debug)]
pub struct Budgets {
    db: Db,
    /// Identifies this process's leases.
    holder: String,
    teams: Mutex<HashMap<String, TeamBudget>>,
    /// Teams that have a wallet (loaded at start, re-read every refresh), so
    /// a team without a cap needs no database read, even on first sight.
    wallet_teams: Mutex<HashSet<String>>,
    /// One lease request at a time per process.
    acquiring: tokio::sync::Mutex<()>,
}

impl Budgets {
    /// Loads which teams have wallets.
    pub async fn load(db: Db, holder: String) -> store::Result<Self> {
        let wallet_teams = store::budgets::teams_with_wallets(&db).await?;
        Ok(Budgets {
            db,
            holder,
            teams: Mutex::default(),
            wallet_teams: Mutex::new(wallet_teams.into_iter().collect()),
            acquiring: tokio::sync::Mutex::new(()),
        })
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Reserves `worst_micros` for a request of `team` against the monthly
    /// cap `month_cap_micros` (if the config has one) and the team's wallet
    /// (if it has one). `Ok(Ok(None))`: no cap applies, nothing reserved.
    pub async fn reserve(
        &self,
        team: &str,
        worst_micros: i64,
        month_cap_micros: Option<i64>,
        now_ms: i64,
    ) -> store::Result<Result<Option<Reservation>, Exceeded>> {
        let month_start = store::month_start_ms(now_ms);
        if !self.known(team, month_start) {
            let has_wallet = self.wallet_teams.lock().is_ok_and(|w| w.contains(team));
            self.insert(team, month_start, has_wallet, month_cap_micros);
        }
        // Fast path: the local lease covers it.
        match self.take_local(team, worst_micros, month_cap_micros, now_ms) {
            Local::NoCap => return Ok(Ok(None)),
            Local::Taken => return Ok(Ok(Some(self.reservation(team, worst_micros)))),
            Local::Short => {}
        }
        let _one_at_a_time = self.acquiring.lock().await;
        // Another request may have refilled the lease meanwhile.
        let (need, slice) = match self.take_local(team, worst_micros, month_cap_micros, now_ms) {
            Local::NoCap => return Ok(Ok(None)),
            Local::Taken => return Ok(Ok(Some(self.reservation(team, worst_micros)))),
            Local::Short => self.shortfall(team, worst_micros, now_ms),
        };
        let grant = store::budgets::lease(
            &self.db,
            &LeaseRequest {
                holder: &self.holder,
                team_id: team,
                month_start,
                now_ms,
                ttl_ms: LEASE_TTL_MS,
                need_micros: need,
                want_micros: need + slice,
                month_cap_micros,
            },
        )
        .await?;
        Ok(self.apply_grant(team, worst_micros, need, month_cap_micros, now_ms, &grant))
    }

    fn known(&self, team: &str, month_start: i64) -> bool {
        self.teams
            .lock()
            .is_ok_and(|t| t.get(team).is_some_and(|b| b.month_start == month_start))
    }

    fn insert(&self, team: &str, month_start: i64, has_wallet: bool, cap: Option<i64>) {
        if let Ok(mut teams) = self.teams.lock() {
            let entry = teams.entry(team.to_owned()).or_insert(TeamBudget {
                month_start,
                leased: 0,
                reserved: 0,
                unstored: 0,
                valid_until: 0,
                active: false,
                has_wallet,
                slice: 0,
            });
            if entry.month_start != month_start {
                // A new month: last month's lease is of no use for this one.
                entry.month_start = month_start;
                entry.leased = 0;
                entry.unstored = 0;
            }
            entry.has_wallet = has_wallet;
            entry.slice = cap.map_or(0, |c| c / SLICE_DIVISOR);
        }
    }

    fn take_local(&self, team: &str, worst: i64, cap: Option<i64>, now_ms: i64) -> Local {
        let Ok(mut teams) = self.teams.lock() else {
            return Local::Short;
        };
        let Some(b) = teams.get_mut(team) else {
            return Local::Short;
        };
        if cap.is_none() && !b.has_wallet {
            return Local::NoCap;
        }
        if b.available(now_ms) >= worst {
            b.reserved += worst;
            b.active = true;
            Local::Taken
        } else {
            Local::Short
        }
    }

    /// What the lease lacks for `worst`, and the slice to ask for on top.
    fn shortfall(&self, team: &str, worst: i64, now_ms: i64) -> (i64, i64) {
        let Ok(mut teams) = self.teams.lock() else {
            return (worst, 0);
        };
        let Some(b) = teams.get_mut(team) else {
            return (worst, 0);
        };
        if now_ms >= b.valid_until {
            // The database no longer counts an expired lease: start over.
            b.leased = b.reserved + b.unstored;
        }
        let need = (worst - b.available(now_ms).max(0)).max(1);
        (need, b.slice.max(worst))
    }

    fn apply_grant(
        &self,
        team: &str,
        worst: i64,
        need: i64,
        cap: Option<i64>,
        now_ms: i64,
        grant: &LeaseGrant,
    ) -> Result<Option<Reservation>, Exceeded> {
        let Ok(mut teams) = self.teams.lock() else {
            return Err(exceeded(cap, grant));
        };
        let Some(b) = teams.get_mut(team) else {
            return Err(exceeded(cap, grant));
        };
        b.has_wallet = grant.wallet.is_some();
        if let Some(w) = &grant.wallet
            && cap.is_none()
        {
            b.slice = w.allocated_micros / SLICE_DIVISOR;
        }
        if grant.granted_micros < need {
            return Err(exceeded(cap, grant));
        }
        if now_ms >= b.valid_until {
            b.leased = b.reserved + b.unstored;
        }
        b.leased += grant.granted_micros;
        b.valid_until = now_ms + LEASE_TTL_MS - LEASE_MARGIN_MS;
        b.reserved += worst;
        b.active = true;
        drop(teams);
        Ok(Some(self.reservation(team, worst)))
    }

    fn reservation(&self, team: &str, micros: i64) -> Reservation {
        Reservation {
            team: team.to_owned(),
            micros,
        }
    }

    /// Ends a reservation: releases it and counts the request's real cost.
    pub fn settle(&self, reservation: &Reservation, actual_micros: i64) {
        if let Ok(mut teams) = self.teams.lock()
            && let Some(b) = teams.get_mut(&reservation.team)
        {
            b.reserved = (b.reserved - reservation.micros).max(0);
            b.unstored += actual_micros;
        }
    }

    /// Counts the cost of a finished request that held no reservation.
    pub fn record(&self, team: &str, micros: i64) {
        if let Ok(mut teams) = self.teams.lock()
            && let Some(b) = teams.get_mut(team)
        {
            b.unstored += micros;
        }
    }

    /// Called by the event spool once events are stored (the database moved
    /// their cost out of this process's lease in the same transaction).
    pub fn stored(&self, events: &[store::events::EventRow]) {
        let Ok(mut teams) = self.teams.lock() else {
            return;
        };
        for event in events {
            if let Some(b) = event.team_id.as_ref().and_then(|t| teams.get_mut(t)) {
                if store::month_start_ms(event.created_at) == b.month_start {
                    b.leased = (b.leased - event.cost_micros).max(0);
                }
                b.unstored = (b.unstored - event.cost_micros).max(0);
            }
        }
    }

    /// Renews every lease and gives back what is not needed: a team keeps
    /// its reservations and unstored spend, plus a slice if it was active.
    /// Also re-reads which teams have wallets.
    pub async fn refresh(&self) {
        // No grant may land between shrinking a lease here and in the
        // database: the database must never hold less than this process
        // may spend.
        let _no_grants = self.acquiring.lock().await;
        let now = store::now_ms();
        let month_start = store::month_start_ms(now);
        let plan: Vec<(String, i64, i64)> = match self.teams.lock() {
            Ok(mut teams) => teams
                .iter_mut()
                .map(|(team, b)| {
                    let mut keep = b.reserved + b.unstored;
                    if b.active {
                        keep += b.slice;
                    }
                    // Shrink locally first: the database never holds less
                    // than this process may spend.
                    b.leased = b.leased.min(keep);
                    b.active = false;
                    (team.clone(), b.month_start, b.leased)
                })
                .collect(),
            Err(_) => return,
        };
        for (team, month, keep) in &plan {
            match store::budgets::renew_lease(
                &self.db,
                &self.holder,
                team,
                *month,
                *keep,
                now,
                LEASE_TTL_MS,
            )
            .await
            {
                Ok(held) => {
                    if let Ok(mut teams) = self.teams.lock()
                        && let Some(b) = teams.get_mut(team)
                        && b.month_start == *month
                    {
                        b.leased = b.leased.min(held);
                        b.valid_until = now + LEASE_TTL_MS - LEASE_MARGIN_MS;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, team = %team, "renewing a budget lease failed; spending from the cached lease until it expires");
                }
            }
        }
        if let Ok(wallets) = store::budgets::teams_with_wallets(&self.db).await {
            let wallets: HashSet<String> = wallets.into_iter().collect();
            let Ok(mut all) = self.teams.lock() else {
                return;
            };
            for (team, b) in all.iter_mut() {
                b.has_wallet = wallets.contains(team);
                if b.month_start != month_start && b.reserved == 0 {
                    b.month_start = month_start;
                    b.leased = 0;
                    b.unstored = 0;
                }
            }
            drop(all);
            if let Ok(mut w) = self.wallet_teams.lock() {
                *w = wallets;
            }
        }
    }

    /// Total held in this process's leases (for `/metrics`).
    pub fn leased_micros(&self) -> i64 {
        self.teams
            .lock()
            .map_or(0, |t| t.values().map(|b| b.leased).sum())
    }

    /// Gives every lease back (shutdown, after the last events are stored).
    pub async fn release(&self) {
        if let Err(err) = store::budgets::release_all(&self.db, &self.holder).await {
            tracing::warn!(error = %err, "releasing budget leases failed; they expire on their own");
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

enum Local {
    /// Neither a monthly cap nor a wallet applies.
    NoCap,
    Taken,
    Short,
}

fn exceeded(cap: Option<i64>, grant: &LeaseGrant) -> Exceeded {
    let month_room = cap.map(|c| c - grant.month_spent_micros);
    let wallet_balance = grant
        .wallet
        .as_ref()
        .map_or(i64::MAX, |w| w.allocated_micros - w.spent_micros);
    // The wallet refused when it is the tighter of the two.
    let wallet_refused =
        grant.wallet.is_some() && month_room.is_none_or(|room| wallet_balance <= room);
    Exceeded {
        cap: if wallet_refused {
            Cap::Wallet
        } else {
            Cap::Monthly
        },
        month_spent_micros: grant.month_spent_micros,
        wallet_balance_micros: grant.room_after_micros.unwrap_or(wallet_balance).max(0),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_processes_share_one_cap_through_leases() {
        for tdb in store::testing::backends().await {
            let team = tdb
                .db
                .scoped(store::Scope::Org)
                .create_team(&store::teams::NewTeam {
                    name: "T".into(),
                    slug: "t".into(),
                })
                .await
                .unwrap();
            let t = team.team_id.as_str();
            let a = Budgets::load(tdb.db.clone(), "a".into()).await.unwrap();
            let b = Budgets::load(tdb.db.clone(), "b".into()).await.unwrap();
            let now = store::now_ms();
            let cap = Some(1_000);
            // No cap, no wallet: nothing is reserved.
            assert!(
                a.reserve(t, 40, None, now)
                    .await
                    .unwrap()
                    .unwrap()
                    .is_none()
            );
            // Reservations of 100 from both processes: exactly ten fit.
            let mut held = Vec::new();
            for i in 0..20 {
                let p = if i % 2 == 0 { &a } else { &b };
                if let Ok(Some(r)) = p.reserve(t, 100, cap, now).await.unwrap() {
                    held.push((i % 2, r));
                }
            }
            assert_eq!(held.len(), 10, "{}", tdb.name());
            // Settling below the reservation frees room; spend is counted.
            for (p, r) in &held {
                let p = if *p == 0 { &a } else { &b };
                p.settle(r, 50);
            }
            a.refresh().await;
            b.refresh().await;
            let mut more = 0;
            for i in 0..20 {
                let p = if i % 2 == 0 { &a } else { &b };
                if p.reserve(t, 100, cap, now).await.unwrap().is_ok() {
                    more += 1;
                }
            }
            // Near the cap, part of the budget may sit unused in the other
            // process's lease until its next renewal gives it back.
            a.refresh().await;
            b.refresh().await;
            for i in 0..20 {
                let p = if i % 2 == 0 { &a } else { &b };
                if p.reserve(t, 100, cap, now).await.unwrap().is_ok() {
                    more += 1;
                }
            }
            assert_eq!(more, 5, "500 spent, 500 left: {}", tdb.name());
            tdb.cleanup().await;
        }
    }

    #[tokio::test]
    async fn a_wallet_caps_a_team_without_a_monthly_limit() {
        for tdb in store::testing::backends().await {
            let org = tdb.db.scoped(store::Scope::Org);
            let team = org
                .create_team(&store::teams::NewTeam {
                    name: "W".into(),
                    slug: "w".into(),
                })
                .await
                .unwrap();
            let t = team.team_id.as_str();
            org.allocate(t, 300, None).await.unwrap();
            let a = Budgets::load(tdb.db.clone(), "a".into()).await.unwrap();
            let now = store::now_ms();
            let r1 = a.reserve(t, 200, None, now).await.unwrap().unwrap();
            assert!(r1.is_some());
            let refused = a.reserve(t, 200, None, now).await.unwrap().unwrap_err();
            assert_eq!(refused.cap, Cap::Wallet, "{}", tdb.name());
            tdb.cleanup().await;
        }
    }
}
