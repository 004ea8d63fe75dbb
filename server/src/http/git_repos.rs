//! `/v1/git-repos`: Git repositories whose files become configuration
//! versions (SPEC §8); org admins only. See [`crate::git`] for the sync.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::git_repos::{FileResult, GitRepo, GitSync};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::error::ApiError;
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

/// Shortest and longest poll interval accepted (seconds).
const MIN_POLL_SECONDS: i64 = 5;
const MAX_POLL_SECONDS: i64 = 86_400;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/git-repos", get(list_repos).post(link_repo))
        .route("/git-repos/{id}", get(get_repo).delete(unlink_repo))
        .route("/git-repos/{id}/sync", post(sync_repo))
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
}

fn repo_response(r: GitRepo, syncs: Option<Vec<GitSync>>) -> RepoResponse {
    RepoResponse {
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
    let url = body.repo_url.trim();
    let local = url.starts_with('/');
    if !(url.starts_with("file://") || url.starts_with("https://") || local) {
        return Err(ApiError::Unprocessable(format!(
            "`repo_url` {url:?} must be file://…, https://… or an absolute local path"
        )));
    }
    if url.starts_with('-') || url.contains(char::is_whitespace) {
        return Err(ApiError::Unprocessable(
            "`repo_url` must not contain spaces".to_owned(),
        ));
    }
    if body.path.contains("..") || body.path.starts_with('-') {
        return Err(ApiError::Unprocessable(format!(
            "`path` {:?} must be a folder inside the repository",
            body.path
        )));
    }
    if body.branches.is_empty() {
        return Err(ApiError::Unprocessable(
            "`branches` maps at least one branch to an environment, e.g. {\"main\": \"production\"}".to_owned(),
        ));
    }
    for (branch, env) in &body.branches {
        let bad = branch.is_empty()
            || branch.starts_with('-')
            || branch.contains(['\0', ' ', '~', '^', ':', '?', '*', '[', '\\'])
            || branch.contains("..");
        if bad {
            return Err(ApiError::Unprocessable(format!(
                "`branches`: {branch:?} is not a branch name"
            )));
        }
        store::configs::validate_environment(env)
            .map_err(|e| ApiError::Unprocessable(format!("`branches.{branch}`: {e}")))?;
    }
    let interval = body.poll_interval_seconds.unwrap_or(60);
    if !(MIN_POLL_SECONDS..=MAX_POLL_SECONDS).contains(&interval) {
        return Err(ApiError::Unprocessable(format!(
            "`poll_interval_seconds` must be between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS}"
        )));
    }
    let sealed = match body.access_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => Some(
            state
                .master_key
                .encrypt(token.as_bytes(), crate::git::token_context(url).as_bytes())
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
        None => None,
    };
    let branches: Vec<(String, String)> = body.branches.into_iter().collect();
    let repo = caller
        .scoped
        .link_repo(&store::git_repos::NewRepo {
            repo_url: url,
            path: body.path.trim_matches('/'),
            branches: &branches,
            poll_interval_seconds: interval,
            access_token_sealed: sealed,
        })
        .await?;
    let syncs = crate::git::sync_repo(&state.db, &state.master_key, &state.git_root, &repo).await;
    Ok((StatusCode::CREATED, Json(repo_response(repo, Some(syncs)))))
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
    let syncs = crate::git::sync_repo(&state.db, &state.master_key, &state.git_root, &repo).await;
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
    caller
        .scoped
        .unlink_repo(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "repository"))?;
    let _ = std::fs::remove_dir_all(state.git_root.join(format!("{id}.git")));
    Ok(StatusCode::NO_CONTENT)
}
