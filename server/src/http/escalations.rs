//! `/v1/escalations` (SPEC §10): requests held by an `escalate` policy.
//! A team's tokens and members see its escalations (org admins see every
//! team's; another team's answer 404). Its designated reviewers (the org
//! admins when it names none) claim and resolve them, and only they see the
//! prompt, when the policy keeps it (`reviewers_see_prompt`); otherwise only
//! metadata and the matched entity types are shown.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::StoreError;
use store::escalations::Escalation;
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::json::ApiJson;
use super::openapi::{BadRequest, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/escalations", get(list_escalations))
        .route("/escalations/{id}", get(get_escalation))
        .route("/escalations/{id}/claim", post(claim_escalation))
        .route("/escalations/{id}/unclaim", post(unclaim_escalation))
        .route("/escalations/{id}/resolve", post(resolve_escalation))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationResponse {
    pub id: String,
    pub team_id: String,
    pub gateway_id: String,
    /// The gateway key that sent the request.
    pub token_id: String,
    pub policy: String,
    pub reason: String,
    pub model: String,
    /// Entity types the policy matched (never the values).
    pub entities: Vec<String>,
    /// `pending`, `claimed`, `approved`, `denied` or `expired`.
    pub status: String,
    pub claimed_by: Option<String>,
    pub resolved_by: Option<String>,
    pub note: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub resolved_at: Option<String>,
    /// When the approved retry passed (it passes once).
    pub used_at: Option<String>,
    /// Whether the request's text is kept for the reviewers (the policy has
    /// `reviewers_see_prompt: true`); it is erased on resolution or expiry.
    pub prompt_kept: bool,
    /// The request's messages as sent, in `GET /v1/escalations/{id}` for its
    /// reviewers only, while kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

impl From<Escalation> for EscalationResponse {
    fn from(e: Escalation) -> Self {
        EscalationResponse {
            status: e.shown_status(store::now_ms()).to_owned(),
            entities: e.entities(),
            id: e.escalation_id,
            team_id: e.team_id,
            gateway_id: e.gateway_id,
            token_id: e.token_id,
            policy: e.policy,
            reason: e.reason,
            model: e.model,
            claimed_by: e.claimed_by,
            resolved_by: e.resolved_by,
            note: e.note,
            created_at: store::format_ms(e.created_at),
            expires_at: store::format_ms(e.expires_at),
            resolved_at: e.resolved_at.map(store::format_ms),
            used_at: e.used_at.map(store::format_ms),
            prompt_kept: e.prompt_sealed.is_some(),
            prompt: None,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `pending`, `claimed`, `expired`, `resolved` (approved or denied), `approved`, `denied`.
    pub status: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

const STATUSES: [&str; 6] = [
    "pending", "claimed", "expired", "resolved", "approved", "denied",
];

fn from_store(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::Conflict(m),
        StoreError::Invalid(m) => ApiError::Unprocessable(m),
        other => ApiError::from_store(other, "escalation"),
    }
}

/// The caller's team's escalations (every team's for org admins), newest first.
#[utoipa::path(get, path = "/v1/escalations", tag = "escalations", params(ListQuery),
    responses(
        (status = 200, description = "Escalations", body = List<EscalationResponse>),
        (status = 400, response = BadRequest),
    ),
    security(("bearer" = [])))]
pub async fn list_escalations(
    caller: ApiCaller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<EscalationResponse>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "`status` {s:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let rows = caller
        .scoped
        .list_escalations(q.status.as_deref(), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(List {
        data: rows.into_iter().map(Into::into).collect(),
    }))
}

/// One escalation.
#[utoipa::path(get, path = "/v1/escalations/{id}", tag = "escalations",
    params(("id" = String, Path, description = "Escalation id")),
    responses(
        (status = 200, description = "The escalation", body = EscalationResponse),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])))]
pub async fn get_escalation(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<EscalationResponse>, ApiError> {
    let e = caller
        .scoped
        .get_escalation(&id)
        .await
        .map_err(from_store)?;
    let prompt = match &e.prompt_sealed {
        Some(sealed) if caller.scoped.reviews(&e.team_id).await? => Some(
            store::escalations::open_prompt(&state.master_key, &e, sealed)?,
        ),
        _ => None,
    };
    let mut response = EscalationResponse::from(e);
    response.prompt = prompt;
    Ok(Json(response))
}

/// Claims an open escalation (the caller reviews it).
#[utoipa::path(post, path = "/v1/escalations/{id}/claim", tag = "escalations",
    params(("id" = String, Path, description = "Escalation id")),
    responses(
        (status = 200, description = "Claimed", body = EscalationResponse),
        (status = 404, response = NotFound),
        (status = 409, description = "`conflict`: not pending (claimed, resolved or expired)", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn claim_escalation(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<EscalationResponse>, ApiError> {
    Ok(Json(
        caller
            .scoped
            .claim_escalation(&id, true)
            .await
            .map_err(from_store)?
            .into(),
    ))
}

/// Gives a claimed escalation back to the queue.
#[utoipa::path(post, path = "/v1/escalations/{id}/unclaim", tag = "escalations",
    params(("id" = String, Path, description = "Escalation id")),
    responses(
        (status = 200, description = "Pending again", body = EscalationResponse),
        (status = 404, response = NotFound),
        (status = 409, description = "`conflict`: not claimed", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn unclaim_escalation(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<EscalationResponse>, ApiError> {
    Ok(Json(
        caller
            .scoped
            .claim_escalation(&id, false)
            .await
            .map_err(from_store)?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// `approved` or `denied`.
    pub outcome: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// Approves (the caller's retry with `X-Escalation-Id` passes, once) or denies.
#[utoipa::path(post, path = "/v1/escalations/{id}/resolve", tag = "escalations",
    params(("id" = String, Path, description = "Escalation id")),
    request_body = Resolve,
    responses(
        (status = 200, description = "Resolved", body = EscalationResponse),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 409, description = "`conflict`: already resolved, or expired", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])))]
pub async fn resolve_escalation(
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Resolve>,
) -> Result<Json<EscalationResponse>, ApiError> {
    let note = body
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    Ok(Json(
        caller
            .scoped
            .resolve_escalation(&id, &body.outcome, note)
            .await
            .map_err(from_store)?
            .into(),
    ))
}
