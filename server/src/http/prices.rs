//! `/v1/prices`: the price catalog (USD per million tokens) gateways charge
//! requests with. Everyone authenticated may read it; org admins edit it.
//! An edit adds a new version taking effect at `effective_at` (default:
//! now), so past events keep the price they were charged at.

use axum::extract::{Path, Query};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::prices::{NewPrice, PriceRow};

use super::auth::ApiCaller;
use super::error::ApiError;
use super::json::ApiJson;
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/prices", get(list_prices))
        .route("/prices/{model}", put(set_price))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceQuery {
    /// Every version, not only the prices in effect now.
    #[serde(default)]
    pub history: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPrice {
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    #[serde(default)]
    pub cached_input_usd_per_mtok: Option<f64>,
    pub source: String,
    /// RFC 3339; default now.
    #[serde(default)]
    pub effective_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PriceResponse {
    pub id: String,
    pub model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    pub cached_input_usd_per_mtok: Option<f64>,
    pub source: String,
    pub effective_at: String,
    pub created_at: String,
}

impl From<PriceRow> for PriceResponse {
    fn from(p: PriceRow) -> Self {
        PriceResponse {
            id: p.model_price_id,
            model: p.model,
            input_usd_per_mtok: p.input_usd_per_mtok,
            output_usd_per_mtok: p.output_usd_per_mtok,
            cached_input_usd_per_mtok: p.cached_input_usd_per_mtok,
            source: p.source,
            effective_at: store::format_ms(p.effective_at),
            created_at: store::format_ms(p.created_at),
        }
    }
}

async fn list_prices(
    caller: ApiCaller,
    query: Result<Query<PriceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<PriceResponse>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let db = caller.db();
    let rows = if q.history {
        store::prices::history(db).await?
    } else {
        store::prices::current(db, store::now_ms()).await?
    };
    Ok(Json(List {
        data: rows.into_iter().map(Into::into).collect(),
    }))
}

fn check_price(name: &str, value: f64) -> Result<(), ApiError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(format!(
            "`{name}` must be a non-negative number of USD per million tokens"
        )))
    }
}

async fn set_price(
    caller: ApiCaller,
    Path(model): Path<String>,
    ApiJson(body): ApiJson<SetPrice>,
) -> Result<Json<PriceResponse>, ApiError> {
    if !caller.is_org_admin() {
        return Err(ApiError::Forbidden(
            "only org-admin tokens may change prices".to_owned(),
        ));
    }
    if model.trim().is_empty() || model.contains(char::is_whitespace) {
        return Err(ApiError::Unprocessable(
            "the model (or model prefix) must be a non-empty name without spaces".to_owned(),
        ));
    }
    check_price("input_usd_per_mtok", body.input_usd_per_mtok)?;
    check_price("output_usd_per_mtok", body.output_usd_per_mtok)?;
    if let Some(cached) = body.cached_input_usd_per_mtok {
        check_price("cached_input_usd_per_mtok", cached)?;
    }
    if body.source.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "`source` must say where the price comes from (e.g. \"contract 2026\")".to_owned(),
        ));
    }
    let effective_at = match &body.effective_at {
        None => store::now_ms(),
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|at| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok())
            .ok_or_else(|| {
                ApiError::Unprocessable(format!(
                    "`effective_at` `{t}` is not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z)"
                ))
            })?,
    };
    let row = store::prices::set(
        caller.db(),
        &NewPrice {
            model,
            input_usd_per_mtok: body.input_usd_per_mtok,
            output_usd_per_mtok: body.output_usd_per_mtok,
            cached_input_usd_per_mtok: body.cached_input_usd_per_mtok,
            source: body.source.trim().to_owned(),
            effective_at,
        },
    )
    .await
    .map_err(|e| ApiError::from_store(e, "a price for this model at this time"))?;
    let response = PriceResponse::from(row);
    caller
        .scoped
        .audit(
            None,
            "price.set",
            ("price", &response.model),
            None,
            serde_json::to_value(&response).ok(),
        )
        .await;
    Ok(Json(response))
}
