//! `/v1/wallets`: team wallets, a hard budget on top of (or instead of) the
//! monthly `cost_limit`. Org admins allocate credit; every allocation is a
//! ledger entry saying who, how much, why and when. Gateways spend from the
//! wallet fleet-wide (see `store::budgets`).
//!
//! Amounts are USD (JSON numbers) on the wire and micro-USD inside.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::StoreError;
use store::budgets::{Balance, WalletTransaction};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::ApiError;
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

/// Ledger entries listed when `limit` is not given.
const DEFAULT_LIMIT: i64 = 100;
/// Most ledger entries one request may list.
const MAX_LIMIT: i64 = 1000;
/// Longest `reason`, in characters.
const MAX_REASON_CHARS: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/wallets/allocate", post(allocate))
        .route("/wallets/balance", get(balance))
        .route("/wallets/transactions", get(transactions))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Allocate {
    pub team_id: String,
    /// USD; negative for a correction.
    #[schema(example = 250.0)]
    pub amount: f64,
    /// Why (at most 500 characters), recorded in the ledger.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// The team (required).
    #[param(required = true, value_type = String)]
    pub team_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransactionsQuery {
    /// The team (required).
    #[param(required = true, value_type = String)]
    pub team_id: Option<String>,
    /// Newest entries to list (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A wallet as the API shows it (USD).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WalletResponse {
    pub team_id: String,
    /// Credit allocated so far (allocations minus corrections).
    pub allocated: f64,
    /// Spend stored in events.
    pub spent: f64,
    /// Held by gateways right now: in-flight reservations and spend not yet
    /// stored.
    pub reserved: f64,
    /// What may still be spent: allocated − spent − reserved.
    pub balance: f64,
    /// Whether the team has a wallet at all (a team without one is not
    /// limited by a wallet).
    pub has_wallet: bool,
}

/// One ledger entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransactionResponse {
    pub id: String,
    pub team_id: String,
    /// `allocate` (credit added) or `adjust` (a negative correction).
    #[schema(examples("allocate", "adjust"))]
    pub kind: String,
    /// USD; negative for a correction.
    pub amount: f64,
    /// allocated − spent right after this entry.
    pub balance_after: f64,
    /// Who made it: the API token's name and id.
    pub actor: String,
    pub reason: Option<String>,
    pub created_at: String,
}

fn usd(micros: i64) -> f64 {
    micros as f64 / 1_000_000.0
}

fn wallet_response(team_id: &str, b: &Balance) -> WalletResponse {
    // Without a wallet, leases gateways hold for a monthly `cost_limit` are
    // no concern of the (absent) wallet: all zeros.
    let (allocated, spent, reserved) = b.wallet.as_ref().map_or((0, 0, 0), |w| {
        (w.allocated_micros, w.spent_micros, b.reserved_micros)
    });
    WalletResponse {
        team_id: team_id.to_owned(),
        allocated: usd(allocated),
        spent: usd(spent),
        reserved: usd(reserved),
        balance: usd(b.balance_micros()),
        has_wallet: b.wallet.is_some(),
    }
}

impl From<WalletTransaction> for TransactionResponse {
    fn from(t: WalletTransaction) -> Self {
        TransactionResponse {
            id: t.wallet_transaction_id,
            team_id: t.team_id,
            kind: t.kind,
            amount: usd(t.amount_micros),
            balance_after: usd(t.balance_after_micros),
            actor: t.actor,
            reason: t.reason,
            created_at: store::format_ms(t.created_at),
        }
    }
}

/// The amount in micro-USD (see [`store::budgets::amount_micros`]).
fn amount_micros(amount: f64) -> Result<i64, ApiError> {
    store::budgets::amount_micros(amount).map_err(ApiError::Unprocessable)
}

/// The `team_id` query parameter, required.
fn required_team(team_id: Option<&str>, path: &str) -> Result<String, ApiError> {
    match team_id.map(str::trim) {
        Some(team) if !team.is_empty() => Ok(team.to_owned()),
        _ => Err(ApiError::BadRequest(format!(
            "missing query parameter `team_id`: use GET /v1/wallets/{path}?team_id=TEAM_ID (see GET /v1/teams for the ids)"
        ))),
    }
}

/// Allocates credit to a team's wallet (org admins); a negative amount
/// corrects an earlier allocation. Every allocation is a ledger entry.
#[utoipa::path(
    post,
    path = "/v1/wallets/allocate",
    tag = "wallets",
    request_body = Allocate,
    responses(
        (status = 200, description = "The wallet after the allocation", body = WalletResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn allocate(
    caller: ApiCaller,
    body: Result<ApiJson<Allocate>, ApiError>,
) -> Result<Json<WalletResponse>, ApiError> {
    // Say "not allowed" before judging the body: a team token can never
    // allocate, whatever it sends.
    if !caller.is_org_admin() {
        return Err(ApiError::Forbidden(
            "only org admins can allocate credit to a wallet; this token is scoped to one team (use an org-admin token, `kt admin create-token`)".to_owned(),
        ));
    }
    let ApiJson(body) = body?;
    let team_id = body.team_id.trim();
    if team_id.is_empty() {
        return Err(ApiError::Unprocessable(
            "`team_id` must not be empty (see GET /v1/teams for the ids)".to_owned(),
        ));
    }
    let micros = amount_micros(body.amount)?;
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::Unprocessable(format!(
            "`reason` must be at most {MAX_REASON_CHARS} characters"
        )));
    }
    let wallet = match caller.scoped.allocate(team_id, micros, reason).await {
        Ok(wallet) => wallet,
        Err(StoreError::Invalid(_)) => {
            // Only a correction can be refused: it would take more than
            // was ever allocated.
            let allocated = caller
                .scoped
                .wallet_balance(team_id)
                .await
                .map_err(|e| ApiError::from_store(e, "team"))?
                .wallet
                .map_or(0, |w| w.allocated_micros);
            return Err(ApiError::Unprocessable(format!(
                "a correction of ${:.6} would make the wallet's total allocation negative: only ${:.6} is allocated to this team; correct by at most -${:.6}",
                usd(micros),
                usd(allocated),
                usd(allocated),
            )));
        }
        Err(e) => return Err(ApiError::from_store(e, "team")),
    };
    let reserved = caller
        .scoped
        .wallet_balance(team_id)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?
        .reserved_micros;
    tracing::info!(
        team_id,
        amount_micros = micros,
        actor = %caller.actor(),
        allocated_micros = wallet.allocated_micros,
        "wallet allocation"
    );
    let balance = Balance {
        wallet: Some(wallet),
        reserved_micros: reserved,
    };
    Ok(Json(wallet_response(team_id, &balance)))
}

/// A team's wallet: allocated, spent, reserved by gateways, and the balance.
#[utoipa::path(
    get,
    path = "/v1/wallets/balance",
    tag = "wallets",
    params(BalanceQuery),
    responses(
        (status = 200, description = "The wallet", body = WalletResponse),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn balance(
    caller: ApiCaller,
    query: Result<Query<BalanceQuery>, QueryRejection>,
) -> Result<Json<WalletResponse>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let team_id = required_team(q.team_id.as_deref(), "balance")?;
    let balance = caller
        .scoped
        .wallet_balance(&team_id)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(wallet_response(&team_id, &balance)))
}

/// A team's wallet ledger, newest first.
#[utoipa::path(
    get,
    path = "/v1/wallets/transactions",
    tag = "wallets",
    params(TransactionsQuery),
    responses(
        (status = 200, description = "Ledger entries, newest first", body = List<TransactionResponse>),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn transactions(
    caller: ApiCaller,
    query: Result<Query<TransactionsQuery>, QueryRejection>,
) -> Result<Json<List<TransactionResponse>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let team_id = required_team(q.team_id.as_deref(), "transactions")?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    let rows = caller
        .scoped
        .wallet_transactions(&team_id, limit)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(List {
        data: rows.into_iter().map(Into::into).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::amount_micros;

    #[test]
    fn amounts_are_rounded_to_micro_dollars_and_must_not_be_zero() {
        assert_eq!(amount_micros(0.03).ok(), Some(30_000));
        assert_eq!(amount_micros(-1.5).ok(), Some(-1_500_000));
        assert_eq!(amount_micros(0.000_000_6).ok(), Some(1));
        assert!(amount_micros(0.0).is_err());
        assert!(amount_micros(0.000_000_4).is_err());
        assert!(amount_micros(f64::NAN).is_err());
        assert!(amount_micros(1e15).is_err());
    }
}
