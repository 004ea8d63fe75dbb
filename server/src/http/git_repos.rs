//! `/v1/git-repos`: Git repositories whose files become configuration
//! versions (SPEC §8); org admins only, except the push webhook, which a
//! Git host calls with an HMAC signature instead of a token. See
//! [`gitsync`] for the sync.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::git_repos::{FileResult, GitRepo, GitSync};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/git-repos", get(list_repos).post(link_repo))
        .route("/git-repos/{id}", get(get_repo).delete(unlink_repo))
        .route("/git-repos/{id}/sync", post(sync_repo))
        .route("/git-repos/{id}/webhook", post(push_webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRepo {
    /// `file://…`, `https://…`, or a local path.
    pub repo_url: String,
    /// The folder holding `<team slug>.yaml` files (`""` for the root).
    #[serde(default)]
    pub path: String,
    /// Branch → environment, e.g. `{"main": "production", "staging": "staging"}`.
    #[schema(value_type = Object)]
    pub branches: std::collections::BTreeMap<String, String>,
    /// Seconds between polls (default 60; 5 to 86400).
    #[serde(default)]
    pub poll_interval_seconds: Option<i64>,
    /// For https remotes: a token, stored encrypted and never returned.
    #[serde(default)]
    pub access_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncResponse {
    pub branch: String,
    pub environment: String,
    pub commit: Option<String>,
    pub synced_at: String,
    /// `ok`, `partial` (some files refused) or `error`.
    pub status: String,
    pub message: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub files: Vec<FileResult>,
}

impl From<GitSync> for SyncResponse {
    fn from(s: GitSync) -> Self {
        SyncResponse {
            files: serde_json::from_str(&s.files).unwrap_or_default(),
            branch: s.branch,
            environment: s.environment,
            commit: s.commit_sha,
            synced_at: store::format_ms(s.synced_at),
            status: s.status,
            message: s.message,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepoResponse {
    pub id: String,
    pub repo_url: String,
    pub path: String,
    #[schema(value_type = Object)]
    pub branches: std::collections::BTreeMap<String, String>,
    pub poll_interval_seconds: i64,
    /// Whether an access token is stored (it is never returned).
    pub has_access_token: bool,
    pub created_by: String,
    pub created_at: String,
    pub last_polled_at: Option<String>,
    /// The last sync of each branch (`GET /v1/git-repos/{id}` and sync only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<Vec<SyncResponse>>,
    /// Only in the answer to linking: the key the Git host signs push
    /// webhooks with (`X-Hub-Signature-256`). Store it there; kt never shows
    /// it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Where the Git host sends push webhooks.
    pub webhook_path: String,
}

fn repo_response(r: GitRepo, syncs: Option<Vec<GitSync>>) -> RepoResponse {
    RepoResponse {
        webhook_secret: None,
        webhook_path: format!("/v1/git-repos/{}/webhook", r.git_repo_id),
        branches: r.branch_map().into_iter().collect(),
        has_access_token: r.access_token_sealed.is_some(),
        id: r.git_repo_id,
        repo_url: r.repo_url,
        path: r.path,
        poll_interval_seconds: r.poll_interval_seconds,
        created_by: r.created_by,
        created_at: store::format_ms(r.created_at),
        last_polled_at: r.last_polled_at.map(store::format_ms),
        last_sync: syncs.map(|s| s.into_iter().map(Into::into).collect()),
    }
}

fn org_only(caller: &ApiCaller) -> Result<(), ApiError> {
    if caller.is_org_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Git repositories configure every team: only org admins manage them".to_owned(),
        ))
    }
}

/// Links a repository and syncs it at once.
#[utoipa::path(
    post,
    path = "/v1/git-repos",
    tag = "git",
    request_body = LinkRepo,
    responses(
        (status = 201, description = "Linked, with the first sync's result", body = RepoResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn link_repo(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Result<ApiJson<LinkRepo>, ApiError>,
) -> Result<(StatusCode, Json<RepoResponse>), ApiError> {
    org_only(&caller)?;
    let ApiJson(body) = body?;
    let linked = state
        .git
        .link(
            &caller.scoped,
            &gitsync::LinkRequest {
                repo_url: body.repo_url,
                path: body.path,
                branches: body.branches,
                poll_interval_seconds: body.poll_interval_seconds,
                access_token: body.access_token,
            },
        )
        .await
        .map_err(|e| match e {
            gitsync::LinkError::Invalid(message) => ApiError::Unprocessable(message),
            gitsync::LinkError::Store(e) => ApiError::from_store(e, "repository"),
        })?;
    let mut response = repo_response(linked.repo, Some(linked.syncs));
    response.webhook_secret = Some(linked.webhook_secret);
    Ok((StatusCode::CREATED, Json(response)))
}

/// The linked repositories.
#[utoipa::path(
    get,
    path = "/v1/git-repos",
    tag = "git",
    responses(
        (status = 200, description = "Linked repositories", body = List<RepoResponse>),
        (status = 403, response = Forbidden),
    ),
    security(("bearer" = [])),
)]
pub async fn list_repos(caller: ApiCaller) -> Result<Json<List<RepoResponse>>, ApiError> {
    org_only(&caller)?;
    let repos = caller.scoped.list_repos().await?;
    Ok(Json(List {
        data: repos.into_iter().map(|r| repo_response(r, None)).collect(),
    }))
}

/// A repository with the last sync of each branch.
#[utoipa::path(
    get,
    path = "/v1/git-repos/{id}",
    tag = "git",
    params(("id" = String, Path, description = "Repository id")),
    responses(
        (status = 200, description = "The repository and its last syncs", body = RepoResponse),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn get_repo(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<RepoResponse>, ApiError> {
    org_only(&caller)?;
    let (repo, syncs) = caller
        .scoped
        .get_repo(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "repository"))?;
    Ok(Json(repo_response(repo, Some(syncs))))
}

/// Syncs a repository now; answers with that sync's result.
#[utoipa::path(
    post,
    path = "/v1/git-repos/{id}/sync",
    tag = "git",
    params(("id" = String, Path, description = "Repository id")),
    responses(
        (status = 200, description = "The sync's result per branch", body = RepoResponse),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn sync_repo(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<RepoResponse>, ApiError> {
    org_only(&caller)?;
    let (repo, _) = caller
        .scoped
        .get_repo(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "repository"))?;
    let syncs = state.git.sync(&repo).await;
    Ok(Json(repo_response(repo, Some(syncs))))
}

/// Unlinks a repository (the versions it made stay).
#[utoipa::path(
    delete,
    path = "/v1/git-repos/{id}",
    tag = "git",
    params(("id" = String, Path, description = "Repository id")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn unlink_repo(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    org_only(&caller)?;
    state
        .git
        .unlink(&caller.scoped, &id)
        .await
        .map_err(|e| ApiError::from_store(e, "repository"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A Git host's push webhook (GitHub, Gitea, Forgejo): signed with the
/// repository's webhook secret as `X-Hub-Signature-256: sha256=<hex HMAC-
/// SHA256 of the body>`, no bearer token. A valid call starts a sync at once
/// and answers 202; the result shows in `GET /v1/git-repos/{id}`. Anything
/// else, an unknown repository included, is 401.
#[utoipa::path(
    post,
    path = "/v1/git-repos/{id}/webhook",
    tag = "git",
    params(("id" = String, Path, description = "Repository id")),
    request_body(content = Object, description = "The Git host's push event (its content is not needed)"),
    responses(
        (status = 202, description = "Signature valid: a sync has started"),
        (status = 401, description = "`unauthorized`: missing or wrong signature, or no such repository with a webhook", body = ErrorBody),
    ),
    security(("webhook_signature" = [])),
)]
pub async fn push_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let repo = state
        .git
        .verify_webhook(&id, &body, signature)
        .await
        // One answer for an unknown repository and a wrong signature: a
        // caller without the secret learns nothing about which ids exist.
        .map_err(|_: gitsync::WebhookError| {
            ApiError::Unauthorized(
                "X-Hub-Signature-256 is missing or does not match this repository's webhook secret: sign the body with HMAC-SHA256 under the secret shown when the repository was linked".to_owned(),
            )
        })?;
    let git = state.git.clone();
    tokio::spawn(async move {
        git.sync(&repo).await;
    });
    Ok(StatusCode::ACCEPTED)
}
