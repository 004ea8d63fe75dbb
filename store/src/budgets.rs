//! Hard budgets shared by a fleet of gateway processes: team wallets (with
//! their ledger), budget leases and fleet-wide rate windows.
//!
//! A *budget lease* is the part of a team's remaining budget one gateway
//! process may spend without asking the database. A process asks for a
//! slice ([`lease`]) when its local allowance runs out; the grant is taken
//! in a transaction serialised per team, and only when
//!
//! ```text
//! spent (stored events) + every unexpired lease of the team + grant <= cap
//! ```
//!
//! holds for the monthly cap (`cost_limit`, passed by the caller) and for the
//! wallet (when the team has one). Storing a process's events lowers its
//! lease by their cost in the same transaction ([`crate::events::insert_batch_for`]),
//! so the left side never undercounts: spend moves from "leased" to "spent"
//! atomically. A process spends from its lease only up to what it holds, so
//! the fleet cannot pass the cap except by what in-flight requests' real
//! usage exceeds their reservation.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Db, Result, StoreError, Tx, new_id, with_pool, with_tx};

/// The largest allocation (USD) accepted at once.
pub const MAX_AMOUNT_USD: f64 = 1_000_000_000.0;

/// An allocation in micro-USD: finite, not zero (after rounding to a
/// micro-dollar), and not absurdly large. The error names `amount`.
pub fn amount_micros(amount: f64) -> std::result::Result<i64, String> {
    if !amount.is_finite() || amount.abs() > MAX_AMOUNT_USD {
        return Err(format!(
            "`amount` must be a number of USD between -{MAX_AMOUNT_USD:.0} and {MAX_AMOUNT_USD:.0}"
        ));
    }
    let micros = (amount * 1_000_000.0).round() as i64;
    if micros == 0 {
        return Err(
            "`amount` must not be zero: give the USD to add (e.g. 250.0), or a negative amount to correct an earlier allocation (at least $0.000001 either way)".to_owned(),
        );
    }
    Ok(micros)
}

/// A team's wallet.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, PartialEq)]
pub struct WalletRow {
    pub team_id: String,
    pub allocated_micros: i64,
    pub spent_micros: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One entry of a wallet's ledger.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, PartialEq)]
pub struct WalletTransaction {
    pub wallet_transaction_id: String,
    pub team_id: String,
    pub kind: String,
    pub amount_micros: i64,
    pub balance_after_micros: i64,
    pub actor: String,
    pub reason: Option<String>,
    pub created_at: i64,
}

/// A wallet with the part of it gateways hold in leases right now.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Balance {
    pub wallet: Option<WalletRow>,
    /// Held by gateways: in-flight reservations and spend not yet stored.
    pub reserved_micros: i64,
}

impl Balance {
    /// What may still be spent: allocated − spent − reserved (0 without a wallet).
    pub fn balance_micros(&self) -> i64 {
        self.wallet.as_ref().map_or(0, |w| {
            w.allocated_micros - w.spent_micros - self.reserved_micros
        })
    }
}

/// The teams that have a wallet (gateways cache this list).
pub async fn teams_with_wallets(db: &Db) -> Result<Vec<String>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_scalar::<_, String>("select team_id from wallet")
            .fetch_all(pool)
            .await
    })?)
}

pub(crate) async fn balance(db: &Db, team_id: &str, now_ms: i64) -> Result<Balance> {
    Ok(balances(db, Some(team_id), now_ms)
        .await?
        .remove(team_id)
        .unwrap_or_default())
}

/// The balance of every team in `team_filter` (all teams for `None`) that
/// has a wallet or holds leases, in two queries: for watchers that look at
/// every team at once.
pub(crate) async fn balances(
    db: &Db,
    team_filter: Option<&str>,
    now_ms: i64,
) -> Result<HashMap<String, Balance>> {
    let (wallets, reserved) = with_pool!(db, pool => {
        let wallets = sqlx::query_as::<_, WalletRow>(
            "select team_id, allocated_micros, spent_micros, created_at, updated_at \
             from wallet where ($1 is null or team_id = $1)",
        )
        .bind(team_filter)
        .fetch_all(pool)
        .await?;
        let reserved = sqlx::query_as::<_, (String, i64)>(
            "select team_id, cast(coalesce(sum(amount_micros), 0) as bigint) from budget_lease \
             where ($1 is null or team_id = $1) and expires_at > $2 group by team_id",
        )
        .bind(team_filter)
        .bind(now_ms)
        .fetch_all(pool)
        .await?;
        Ok::<_, sqlx::Error>((wallets, reserved))
    })?;
    let mut balances: HashMap<String, Balance> = wallets
        .into_iter()
        .map(|w| {
            (
                w.team_id.clone(),
                Balance {
                    wallet: Some(w),
                    reserved_micros: 0,
                },
            )
        })
        .collect();
    for (team_id, micros) in reserved {
        balances.entry(team_id).or_default().reserved_micros = micros;
    }
    Ok(balances)
}

/// Adds `amount_micros` (negative for a correction; the total allocated
/// never goes below zero) to a team's wallet, creating it on first use, and
/// appends the ledger entry. Returns the wallet after the change.
/// How long after its first allocation a wallet starts to count: gateways
/// re-read which teams have wallets every 5 s, and spend from before they
/// knew is not charged to the wallet.
pub const WALLET_EFFECTIVE_AFTER_MS: i64 = 6_000;

pub(crate) async fn allocate(
    tx: &mut Tx,
    team_id: &str,
    amount_micros: i64,
    actor: &str,
    reason: Option<&str>,
) -> Result<WalletRow> {
    let now = crate::now_ms();
    with_tx!(tx, conn => {
        sqlx::query(
            "insert into wallet (team_id, allocated_micros, spent_micros, effective_at, created_at, updated_at) \
             values ($1, 0, 0, $2, $3, $3) on conflict (team_id) do nothing",
        )
        .bind(team_id)
        .bind(now + WALLET_EFFECTIVE_AFTER_MS)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        let updated = sqlx::query_as::<_, WalletRow>(
            "update wallet set allocated_micros = allocated_micros + $2, updated_at = $3 \
             where team_id = $1 and allocated_micros + $2 >= 0 \
             returning team_id, allocated_micros, spent_micros, created_at, updated_at",
        )
        .bind(team_id)
        .bind(amount_micros)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            StoreError::Invalid("the allocation would make the wallet's total negative".to_owned())
        })?;
        let kind = if amount_micros >= 0 { "allocate" } else { "adjust" };
        sqlx::query(
            "insert into wallet_transaction (wallet_transaction_id, team_id, kind, amount_micros, \
             balance_after_micros, actor, reason, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(team_id)
        .bind(kind)
        .bind(amount_micros)
        .bind(updated.allocated_micros - updated.spent_micros)
        .bind(actor)
        .bind(reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(updated)
    })
}

pub(crate) async fn transactions(
    db: &Db,
    team_id: &str,
    limit: i64,
) -> Result<Vec<WalletTransaction>> {
    Ok(with_pool!(db, pool => {
        sqlx::query_as::<_, WalletTransaction>(
            "select wallet_transaction_id, team_id, kind, amount_micros, balance_after_micros, \
             actor, reason, created_at from wallet_transaction where team_id = $1 \
             order by created_at desc, wallet_transaction_id desc limit $2",
        )
        .bind(team_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(pool)
        .await
    })?)
}

/// Stored spend this month, leases held this month and in all, and the
/// wallet's allocated, spent, created and updated columns.
type BudgetSnapshot = (
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// What a gateway process asks for.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    pub holder: &'a str,
    pub team_id: &'a str,
    pub month_start: i64,
    pub now_ms: i64,
    pub ttl_ms: i64,
    /// The least that helps (the request at hand); below it nothing is granted.
    pub need_micros: i64,
    /// What the holder would like, to serve the next requests locally.
    pub want_micros: i64,
    /// The monthly cap (`cost_limit`), if the holder's config has one.
    pub month_cap_micros: Option<i64>,
}

/// The answer to a [`LeaseRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseGrant {
    /// Added to the holder's lease (0 = refused).
    pub granted_micros: i64,
    /// The team's stored spend this month.
    pub month_spent_micros: i64,
    /// The team's wallet, if it has one.
    pub wallet: Option<WalletRow>,
    /// Room left for anyone after this grant, under the tighter cap (`None`
    /// when no cap applies).
    pub room_after_micros: Option<i64>,
}

/// Grants part of a team's remaining budget to `req.holder`: at least
/// `need`, at most `want`, and never more than half of what is left beyond
/// `need`, so one process cannot starve the others near the cap.
pub async fn lease(db: &Db, req: &LeaseRequest<'_>) -> Result<LeaseGrant> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        // Serialise grants per team (a row lock on PostgreSQL, the write lock
        // on SQLite), before reading anything.
        sqlx::query(
            "insert into budget_lock (team_id, grants) values ($1, 1) \
             on conflict (team_id) do update set grants = budget_lock.grants + 1",
        )
        .bind(req.team_id)
        .execute(&mut *tx)
        .await?;
        // One statement, so one snapshot: an event batch committing
        // meanwhile moves spend from a lease to the rollup and the wallet
        // atomically, and reading them at different moments could miss it.
        let (month_spent, held_month, held_all, wallet_allocated, wallet_spent, wallet_created, wallet_updated): BudgetSnapshot = sqlx::query_as(
            "select \
               (select cast(coalesce(sum(cost_micros), 0) as bigint) from event_rollup_hour \
                  where team_id = $1 and bucket_start >= $2), \
               (select cast(coalesce(sum(amount_micros), 0) as bigint) from budget_lease \
                  where team_id = $1 and month_start = $2 and expires_at > $3), \
               (select cast(coalesce(sum(amount_micros), 0) as bigint) from budget_lease \
                  where team_id = $1 and expires_at > $3), \
               (select allocated_micros from wallet where team_id = $1), \
               (select spent_micros from wallet where team_id = $1), \
               (select created_at from wallet where team_id = $1), \
               (select updated_at from wallet where team_id = $1)",
        )
        .bind(req.team_id)
        .bind(req.month_start)
        .bind(req.now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let wallet = match (wallet_allocated, wallet_spent, wallet_created, wallet_updated) {
            (Some(allocated_micros), Some(spent_micros), Some(created_at), Some(updated_at)) => {
                Some(WalletRow {
                    team_id: req.team_id.to_owned(),
                    allocated_micros,
                    spent_micros,
                    created_at,
                    updated_at,
                })
            }
            _ => None,
        };
        let month_room = req.month_cap_micros.map(|cap| cap - month_spent - held_month);
        let wallet_room = wallet
            .as_ref()
            .map(|w| w.allocated_micros - w.spent_micros - held_all);
        let room = match (month_room, wallet_room) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let granted = match room {
            None => req.want_micros.max(req.need_micros),
            Some(room) if room < req.need_micros || room <= 0 => 0,
            Some(room) => {
                let spare = room - req.need_micros;
                let extra = (req.want_micros - req.need_micros).clamp(0, spare / 2);
                req.need_micros + extra
            }
        };
        if granted > 0 {
            sqlx::query(
                "insert into budget_lease (holder, team_id, month_start, amount_micros, expires_at) \
                 values ($1, $2, $3, $4, $5) on conflict (holder, team_id, month_start) do update set \
                 amount_micros = budget_lease.amount_micros + excluded.amount_micros, \
                 expires_at = excluded.expires_at",
            )
            .bind(req.holder)
            .bind(req.team_id)
            .bind(req.month_start)
            .bind(granted)
            .bind(req.now_ms + req.ttl_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(LeaseGrant {
            granted_micros: granted,
            month_spent_micros: month_spent,
            wallet,
            room_after_micros: room.map(|r| r - granted),
        })
    })
}

/// Renews a holder's lease on one team and month, shrinking it to at most
/// `keep_micros` (what the holder still needs); returns the amount held
/// afterwards. Expired leases of any holder are removed on the way.
pub async fn renew_lease(
    db: &Db,
    holder: &str,
    team_id: &str,
    month_start: i64,
    keep_micros: i64,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<i64> {
    with_pool!(db, pool => {
        let held: Option<i64> = sqlx::query_scalar(
            "update budget_lease set \
             amount_micros = case when amount_micros < $4 then amount_micros else $4 end, \
             expires_at = $5 \
             where holder = $1 and team_id = $2 and month_start = $3 returning amount_micros",
        )
        .bind(holder)
        .bind(team_id)
        .bind(month_start)
        .bind(keep_micros.max(0))
        .bind(now_ms + ttl_ms)
        .fetch_optional(pool)
        .await?;
        sqlx::query("delete from budget_lease where expires_at < $1")
            .bind(now_ms)
            .execute(pool)
            .await?;
        Ok(held.unwrap_or(0))
    })
}

/// Gives back every lease of `holder` (a gateway shutting down after its
/// events are stored).
pub async fn release_all(db: &Db, holder: &str) -> Result<()> {
    with_pool!(db, pool => {
        sqlx::query("delete from budget_lease where holder = $1")
            .bind(holder)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// Length of a rate window.
pub const WINDOW_MS: i64 = 60_000;

/// Takes up to `want` request slots of `team_id`'s window starting at
/// `window_start` (at least one when any is left, at most half of what is
/// left beyond the first), counted against `limit`. Returns how many were
/// taken (0 = the window is full).
pub async fn take_request_slots(
    db: &Db,
    team_id: &str,
    window_start: i64,
    want: i64,
    limit: i64,
) -> Result<i64> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let used: i64 = sqlx::query_scalar(
            "insert into rate_window (team_id, window_start, requests, tokens) values ($1, $2, 0, 0) \
             on conflict (team_id, window_start) do update set requests = rate_window.requests \
             returning requests",
        )
        .bind(team_id)
        .bind(window_start)
        .fetch_one(&mut *tx)
        .await?;
        let left = limit - used;
        let take = if left <= 0 { 0 } else { want.clamp(1, (left + 1) / 2) };
        if take > 0 {
            sqlx::query(
                "update rate_window set requests = requests + $3 where team_id = $1 and window_start = $2",
            )
            .bind(team_id)
            .bind(window_start)
            .bind(take)
            .execute(&mut *tx)
            .await?;
        }
        // Old windows are of no use to anyone.
        sqlx::query("delete from rate_window where team_id = $1 and window_start < $2")
            .bind(team_id)
            .bind(window_start - 2 * WINDOW_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(take)
    })
}

/// Adds `tokens` to a team's window and returns the window's fleet-wide total.
pub async fn add_window_tokens(
    db: &Db,
    team_id: &str,
    window_start: i64,
    tokens: i64,
) -> Result<i64> {
    with_pool!(db, pool => {
        Ok(sqlx::query_scalar::<_, i64>(
            "insert into rate_window (team_id, window_start, requests, tokens) values ($1, $2, 0, $3) \
             on conflict (team_id, window_start) do update set tokens = rate_window.tokens + excluded.tokens \
             returning tokens",
        )
        .bind(team_id)
        .bind(window_start)
        .bind(tokens)
        .fetch_one(pool)
        .await?)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::backends;

    fn req<'a>(
        holder: &'a str,
        team: &'a str,
        need: i64,
        want: i64,
        cap: Option<i64>,
    ) -> LeaseRequest<'a> {
        LeaseRequest {
            holder,
            team_id: team,
            month_start: crate::month_start_ms(crate::now_ms()),
            now_ms: crate::now_ms(),
            ttl_ms: 60_000,
            need_micros: need,
            want_micros: want,
            month_cap_micros: cap,
        }
    }

    #[tokio::test]
    async fn leases_never_grant_past_the_cap_and_stored_events_move_spend_out_of_leases() {
        for tdb in backends().await {
            let db = &tdb.db;
            let team = db
                .scoped(crate::Scope::Org)
                .create_team(&crate::teams::NewTeam {
                    name: "A".into(),
                    slug: "a".into(),
                })
                .await
                .unwrap();
            let t = team.team_id.as_str();
            // Cap 1000: the first holder asks for 100 and would like 800:
            // it gets need + half of the spare room.
            let g = lease(db, &req("h1", t, 100, 800, Some(1000)))
                .await
                .unwrap();
            assert_eq!(g.granted_micros, 100 + 450, "{}", tdb.name());
            // The second holder cannot get more than what is left (450).
            let g = lease(db, &req("h2", t, 500, 500, Some(1000)))
                .await
                .unwrap();
            assert_eq!(g.granted_micros, 0, "{}", tdb.name());
            let g = lease(db, &req("h2", t, 400, 400, Some(1000)))
                .await
                .unwrap();
            assert_eq!(g.granted_micros, 400, "{}", tdb.name());
            // h1's 300 of spend is stored: its lease drops by as much, the
            // rollup rises by as much; the room left stays 50.
            let event = crate::testing::event_for(t, 300);
            crate::events::insert_batch_for(db, &[event], Some("h1"))
                .await
                .unwrap();
            let g = lease(db, &req("h3", t, 51, 51, Some(1000))).await.unwrap();
            assert_eq!(g.granted_micros, 0, "{}", tdb.name());
            let g = lease(db, &req("h3", t, 50, 50, Some(1000))).await.unwrap();
            assert_eq!(g.granted_micros, 50, "{}", tdb.name());
            // Shrinking h1's lease to what it needs frees room for others.
            let month = crate::month_start_ms(crate::now_ms());
            let held = renew_lease(db, "h1", t, month, 0, crate::now_ms(), 60_000)
                .await
                .unwrap();
            assert_eq!(held, 0, "{}", tdb.name());
            let g = lease(db, &req("h3", t, 250, 250, Some(1000)))
                .await
                .unwrap();
            assert_eq!(g.granted_micros, 250, "{}", tdb.name());
            tdb.cleanup().await;
        }
    }

    #[tokio::test]
    async fn wallets_cap_leases_once_allocated_and_keep_a_ledger() {
        for tdb in backends().await {
            let db = &tdb.db;
            let team = db
                .scoped(crate::Scope::Org)
                .create_team(&crate::teams::NewTeam {
                    name: "W".into(),
                    slug: "w".into(),
                })
                .await
                .unwrap();
            let t = team.team_id.as_str();
            // No wallet, no cap: whatever is wanted.
            let g = lease(db, &req("h", t, 10, 10_000, None)).await.unwrap();
            assert_eq!(g.granted_micros, 10_000, "{}", tdb.name());
            assert!(g.wallet.is_none());
            release_all(db, "h").await.unwrap();
            let w = crate::in_tx!(db, allocate, t, 1_000, "admin@kt", Some("pilot")).unwrap();
            assert_eq!(w.allocated_micros, 1_000);
            let g = lease(db, &req("h", t, 10, 10_000, None)).await.unwrap();
            assert_eq!(g.granted_micros, 10 + 495, "{}", tdb.name());
            // Spend counts against the wallet from its effective time on.
            let mut before = crate::testing::event_for(t, 70);
            before.created_at = w.created_at;
            let mut after = crate::testing::event_for(t, 200);
            after.created_at = w.created_at + WALLET_EFFECTIVE_AFTER_MS;
            let batch = [before, after];
            crate::events::insert_batch_for(db, &batch, Some("h"))
                .await
                .unwrap();
            // A retried batch (the spool replaying) changes nothing.
            crate::events::insert_batch_for(db, &batch, Some("h"))
                .await
                .unwrap();
            let b = balance(db, t, crate::now_ms()).await.unwrap();
            let wallet = b.wallet.clone().unwrap();
            assert_eq!(wallet.spent_micros, 200, "{}", tdb.name());
            // Both events' cost left the lease: 505 - 70 - 200.
            assert_eq!(b.reserved_micros, 235, "{}", tdb.name());
            assert_eq!(b.balance_micros(), 1_000 - 200 - 235, "{}", tdb.name());
            assert!(crate::in_tx!(db, allocate, t, -5_000, "admin@kt", None).is_err());
            crate::in_tx!(db, allocate, t, 500, "admin@kt", Some("top-up")).unwrap();
            let ledger = transactions(db, t, 10).await.unwrap();
            assert_eq!(ledger.len(), 2, "{}", tdb.name());
            assert_eq!(ledger[0].amount_micros, 500);
            assert_eq!(ledger[0].reason.as_deref(), Some("top-up"));
            assert_eq!(ledger[0].balance_after_micros, 1_500 - 200);
            tdb.cleanup().await;
        }
    }

    #[tokio::test]
    async fn request_slots_are_shared_and_never_exceed_the_limit() {
        for tdb in backends().await {
            let db = &tdb.db;
            let w = 1_000 * WINDOW_MS;
            let mut total = 0;
            // Two holders asking for 10 at a time against a limit of 25.
            for _ in 0..10 {
                total += take_request_slots(db, "t", w, 10, 25).await.unwrap();
                total += take_request_slots(db, "t", w, 10, 25).await.unwrap();
            }
            assert_eq!(total, 25, "{}", tdb.name());
            assert_eq!(
                take_request_slots(db, "t", w + WINDOW_MS, 10, 25)
                    .await
                    .unwrap(),
                10
            );
            assert_eq!(add_window_tokens(db, "t", w, 7).await.unwrap(), 7);
            assert_eq!(add_window_tokens(db, "t", w, 5).await.unwrap(), 12);
            tdb.cleanup().await;
        }
    }
}
