//! The control-plane API (`/v1`), one module per resource, each with its own
//! router; authentication is an extractor ([`auth::ApiCaller`]) and every
//! error renders through [`error::ApiError`]. The OpenAPI document
//! ([`openapi::ApiDoc`]) is served at `/v1/openapi.json`.

pub mod audit;
pub mod auth;
pub mod configs;
pub mod error;
pub mod escalations;
pub mod events;
pub mod gateways;
pub mod git_repos;
pub mod json;
pub mod onboarding;
pub mod openapi;
pub mod prices;
pub mod secrets;
pub mod teams;
pub mod tokens;
pub mod wallets;
pub mod webhooks;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::AppState;

/// Largest API request body.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(teams::router())
        .merge(audit::router())
        .merge(tokens::router())
        .merge(events::router())
        .merge(gateways::router())
        .merge(prices::router())
        .merge(secrets::router())
        .merge(wallets::router())
        .merge(configs::router())
        .merge(git_repos::router())
        .merge(onboarding::router())
        .merge(escalations::router())
        .merge(webhooks::router())
        .fallback(|| async {
            error::ApiError::NotFound(
                "no such API endpoint; see SPEC §6 for the /v1 paths".to_owned(),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `/healthz` (the process is alive) and `/readyz` (database reachable and
/// migrated) for load balancers and Kubernetes probes.
pub fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")),
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database is reachable and migrated.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    responses(
        (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "The database is unreachable or not migrated", body = String, content_type = "text/plain"),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.db.is_ready().await {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable or not migrated",
        )
    }
}
