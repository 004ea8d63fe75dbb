//! `/v1/webhooks` (SPEC §10, org admins): where kt sends notifications —
//! `escalation.created`, `escalation.resolved`, `config.deployed` (and `*`
//! for all) — signed with the webhook's secret, retried with back-off, and
//! listed with each delivery's result. See [`crate::notify`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::webhooks::{Delivery, Webhook};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::error::ApiError;
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route("/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/webhooks/{id}/test", post(test_webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https://…` (plain `http://` only to this machine).
    pub url: String,
    /// Event names, or `["*"]` for all.
    pub events: Vec<String>,
    /// The HMAC-SHA256 key deliveries are signed with (16 to 256 characters);
    /// stored encrypted, never returned.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at: String,
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        WebhookResponse {
            events: w.events(),
            id: w.webhook_id,
            url: w.url,
            created_by: w.created_by,
            created_at: store::format_ms(w.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: String,
    pub event: String,
    /// `pending` (to be sent or retried), `delivered`, `failed` (gave up).
    pub status: String,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    pub next_attempt_at: Option<String>,
    /// The body that is (or was) sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> Self {
        DeliveryResponse {
            next_attempt_at: (d.status == "pending").then(|| store::format_ms(d.next_attempt_at)),
            payload: serde_json::from_str(&d.payload).unwrap_or_default(),
            id: d.delivery_id,
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: store::format_ms(d.created_at),
            delivered_at: d.delivered_at.map(store::format_ms),
        }
    }
}

fn org_only(caller: &ApiCaller) -> Result<(), ApiError> {
    if caller.is_org_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only org admins manage webhooks".to_owned(),
        ))
    }
}

fn check(body: &NewWebhook) -> Result<(), ApiError> {
    let url = body.url.trim();
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p) && url[p.len()..].starts_with([':', '/']) || url == *p);
    if !(url.starts_with("https://") || loopback) || url.contains(char::is_whitespace) {
        return Err(ApiError::Unprocessable(format!(
            "`url` {url:?} must be https://… (plain http:// only to this machine)"
        )));
    }
    if body.events.is_empty() {
        return Err(ApiError::Unprocessable(
            "`events`: name at least one event, or [\"*\"] for all".to_owned(),
        ));
    }
    if let Some(bad) = body
        .events
        .iter()
        .find(|e| *e != "*" && !store::webhooks::EVENTS.contains(&e.as_str()))
    {
        return Err(ApiError::Unprocessable(format!(
            "`events`: {bad:?} is not one of {}",
            store::webhooks::EVENTS.join(", ")
        )));
    }
    if !(16..=256).contains(&body.secret.len()) {
        return Err(ApiError::Unprocessable(
            "`secret`: 16 to 256 characters (receivers verify X-Kt-Signature with it)".to_owned(),
        ));
    }
    Ok(())
}

/// Adds a webhook.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses(
        (status = 201, description = "Added", body = WebhookResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookResponse>), ApiError> {
    org_only(&caller)?;
    check(&body)?;
    let url = body.url.trim();
    let sealed = state
        .master_key
        .encrypt(
            body.secret.as_bytes(),
            crate::notify::secret_context(url).as_bytes(),
        )
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let hook = caller
        .scoped
        .create_webhook(url, &body.events, &sealed)
        .await
        .map_err(|e| ApiError::from_store(e, "webhook"))?;
    Ok((StatusCode::CREATED, Json(hook.into())))
}

/// The webhooks.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Webhooks", body = List<WebhookResponse>),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])))]
pub async fn list_webhooks(caller: ApiCaller) -> Result<Json<List<WebhookResponse>>, ApiError> {
    org_only(&caller)?;
    let hooks = caller.scoped.list_webhooks().await?;
    Ok(Json(List {
        data: hooks.into_iter().map(Into::into).collect(),
    }))
}

/// Removes a webhook (its pending deliveries are not sent).
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    org_only(&caller)?;
    caller
        .scoped
        .delete_webhook(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "webhook"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's latest deliveries with their results.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Deliveries, newest first", body = List<DeliveryResponse>),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<List<DeliveryResponse>>, ApiError> {
    org_only(&caller)?;
    let (_, deliveries) = caller
        .scoped
        .webhook_deliveries(&id, 100)
        .await
        .map_err(|e| ApiError::from_store(e, "webhook"))?;
    Ok(Json(List {
        data: deliveries.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    /// The queued `webhook.test` delivery.
    pub delivery_id: String,
}

/// Queues a `webhook.test` delivery (sent within a second).
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 202, description = "Queued", body = TestQueued),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])))]
pub async fn test_webhook(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    org_only(&caller)?;
    let delivery_id = caller
        .scoped
        .test_webhook(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "webhook"))?;
    Ok((StatusCode::ACCEPTED, Json(TestQueued { delivery_id })))
}
