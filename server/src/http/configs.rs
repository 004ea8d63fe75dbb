//! `/v1/configurations`: versioned policy configurations per team and
//! environment (SPEC §8). Only content that passes `kt policy lint` becomes
//! a version (422 otherwise, with every diagnostic and its line and column);
//! the newest version is current, and managed gateways
//! (`kt gateway run --team T --environment E`) switch to it within seconds.
//! A rollback adds a new version with an old one's content.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::configs::{ConfigVersion, NewVersion, Source};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::ApiError;
use super::json::ApiJson;
use super::openapi::{BadRequest, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

/// Largest configuration accepted (bytes).
const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// Versions listed when `limit` is not given, and at most.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/configurations", get(list).post(create))
        .route("/configurations/rollback", post(rollback))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConfiguration {
    pub team_id: String,
    /// `production`, `staging`, … (lowercase letters, digits, `-`).
    #[schema(example = "production")]
    pub environment: String,
    /// The policy config (YAML), as `kt policy lint` checks it.
    pub content: String,
    /// What changed and why.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    pub team_id: String,
    pub environment: String,
    /// The version whose content becomes current again.
    pub version: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The team (required).
    #[param(required = true, value_type = String)]
    pub team_id: Option<String>,
    /// One environment (default: every environment of the team).
    pub environment: Option<String>,
    /// At most this many versions (default 50, at most 500).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigurationResponse {
    pub id: String,
    pub team_id: String,
    pub environment: String,
    pub version: i64,
    /// SHA-256 of the content: what gateways report as their config hash.
    pub content_hash: String,
    pub content: String,
    /// `git`, `console` or `api`.
    pub source: String,
    pub git_commit: Option<String>,
    pub git_author: Option<String>,
    pub message: Option<String>,
    /// Who made it (token or user).
    pub author: String,
    pub created_at: String,
}

impl From<ConfigVersion> for ConfigurationResponse {
    fn from(v: ConfigVersion) -> Self {
        ConfigurationResponse {
            id: v.config_version_id,
            team_id: v.team_id,
            environment: v.environment,
            version: v.version,
            content_hash: v.content_hash,
            content: v.content,
            source: v.source,
            git_commit: v.git_commit,
            git_author: v.git_author,
            message: v.message,
            author: v.author,
            created_at: store::format_ms(v.created_at),
        }
    }
}

fn environment(env: &str) -> Result<(), ApiError> {
    store::configs::validate_environment(env).map_err(ApiError::Unprocessable)
}

/// A team's configuration versions, newest first.
#[utoipa::path(
    get,
    path = "/v1/configurations",
    tag = "configurations",
    params(ListQuery),
    responses(
        (status = 200, description = "Versions, newest first per environment", body = List<ConfigurationResponse>),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    caller: ApiCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<List<ConfigurationResponse>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Some(team_id) = q
        .team_id
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Err(ApiError::BadRequest(
            "missing query parameter `team_id`: use GET /v1/configurations?team_id=TEAM_ID[&environment=ENV]".to_owned(),
        ));
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    if let Some(env) = &q.environment {
        environment(env)?;
    }
    let versions = caller
        .scoped
        .list_configs(team_id, q.environment.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(List {
        data: versions.into_iter().map(Into::into).collect(),
    }))
}

/// Adds a version (it becomes current). 422 with the lint diagnostics when
/// the content does not pass `kt policy lint`.
#[utoipa::path(
    post,
    path = "/v1/configurations",
    tag = "configurations",
    request_body = NewConfiguration,
    responses(
        (status = 201, description = "The new current version", body = ConfigurationResponse),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    caller: ApiCaller,
    body: Result<ApiJson<NewConfiguration>, ApiError>,
) -> Result<(StatusCode, Json<ConfigurationResponse>), ApiError> {
    let ApiJson(body) = body?;
    environment(&body.environment)?;
    if body.content.len() > MAX_CONTENT_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "`content` is larger than {MAX_CONTENT_BYTES} bytes"
        )));
    }
    if let Err(errors) = policy::parse(&body.content) {
        return Err(lint_error(errors));
    }
    let hash = policy::source_hash(&body.content);
    let version = caller
        .scoped
        .add_config(&NewVersion {
            team_id: &body.team_id,
            environment: &body.environment,
            content: &body.content,
            content_hash: &hash,
            source: Source::Api,
            git_commit: None,
            git_author: None,
            message: body.message.as_deref(),
        })
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok((StatusCode::CREATED, Json(version.into())))
}

/// Makes an old version current again, as a new version.
#[utoipa::path(
    post,
    path = "/v1/configurations/rollback",
    tag = "configurations",
    request_body = Rollback,
    responses(
        (status = 201, description = "The new current version (the old content)", body = ConfigurationResponse),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn rollback(
    caller: ApiCaller,
    body: Result<ApiJson<Rollback>, ApiError>,
) -> Result<(StatusCode, Json<ConfigurationResponse>), ApiError> {
    let ApiJson(body) = body?;
    environment(&body.environment)?;
    let version = caller
        .scoped
        .rollback_config(&body.team_id, &body.environment, body.version, Source::Api)
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => ApiError::NotFound(format!(
                "no version {} of {} for this team (see GET /v1/configurations?team_id={})",
                body.version, body.environment, body.team_id
            )),
            other => ApiError::from_store(other, "team"),
        })?;
    Ok((StatusCode::CREATED, Json(version.into())))
}

/// 422 for content that fails lint: the first error in the message, every
/// one in `error.diagnostics`.
pub fn lint_error(errors: Vec<policy::Diagnostic>) -> ApiError {
    let first = errors
        .first()
        .map(|d| {
            format!(
                "; first at line {}, column {}: {}",
                d.line, d.column, d.message
            )
        })
        .unwrap_or_default();
    ApiError::Lint(
        format!(
            "`content` does not pass lint ({} error{}{first}); nothing was changed",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
        ),
        errors,
    )
}
