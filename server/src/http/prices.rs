//! `/v1/prices`: the price catalog (USD per million tokens) gateways charge
//! requests with. Everyone authenticated may read it; org admins edit it.
//! An edit adds a new version taking effect at `effective_at` (default:
//! now), so past events keep the price they were charged at.

use axum::extract::{Path, Query};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::prices::{NewPrice, PriceRow};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, Unprocessable};
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/prices", get(list_prices))
        .route("/prices/{model}", put(set_price))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PriceQuery {
    /// Every version, not only the prices in effect now.
    #[serde(default)]
    #[param(default = false)]
    pub history: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPrice {
    /// USD per million input tokens (≥ 0).
    #[schema(minimum = 0.0)]
    pub input_usd_per_mtok: f64,
    /// USD per million output tokens (≥ 0).
    #[schema(minimum = 0.0)]
    pub output_usd_per_mtok: f64,
    /// USD per million cached input tokens (≥ 0).
    #[serde(default)]
    #[schema(minimum = 0.0)]
    pub cached_input_usd_per_mtok: Option<f64>,
    /// Where the price comes from, e.g. `contract 2026`.
    pub source: String,
    /// RFC 3339; default now.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub effective_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceResponse {
    pub id: String,
    /// A model name or prefix.
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

/// Lists the prices in effect now (or, with `history=true`, every version).
#[utoipa::path(
    get,
    path = "/v1/prices",
    tag = "prices",
    params(PriceQuery),
    responses(
        (status = 200, description = "The price catalog", body = List<PriceResponse>),
        (status = 400, response = BadRequest),
    ),
    security(("bearer" = [])),
)]
pub async fn list_prices(
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

/// Sets a model's price (org admins): adds a version taking effect at
/// `effective_at`, so past events keep the price they were charged at.
#[utoipa::path(
    put,
    path = "/v1/prices/{model}",
    tag = "prices",
    params(("model" = String, Path, description = "A model name or prefix, e.g. `gpt-4o`")),
    request_body = SetPrice,
    responses(
        (status = 200, description = "The new price version", body = PriceResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 409, description = "`conflict`: this model already has a price at that time", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn set_price(
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
    let row = caller
        .scoped
        .set_price(&NewPrice {
            model,
            input_usd_per_mtok: body.input_usd_per_mtok,
            output_usd_per_mtok: body.output_usd_per_mtok,
            cached_input_usd_per_mtok: body.cached_input_usd_per_mtok,
            source: body.source.trim().to_owned(),
            effective_at,
        })
        .await
        .map_err(|e| ApiError::from_store(e, "a price for this model at this time"))?;
    Ok(Json(PriceResponse::from(row)))
}
