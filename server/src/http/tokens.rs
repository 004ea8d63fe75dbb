//! `/v1/tokens`: access tokens (`kt_ak_…`) and gateway keys (`kt_gk_…`).
//! The secret is returned once, at creation; only its digest is stored.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::crypto::TokenKind;
use store::tokens::{NewToken, TokenRow};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// `gateway` (a `kt_gk_` key for applications) or `access` (a `kt_ak_`
    /// API token).
    #[schema(examples("gateway", "access"))]
    pub token_type: String,
    /// The team the token belongs to (an access token with a team sees only
    /// that team); absent = org-wide.
    #[serde(default)]
    pub team_id: Option<String>,
    /// RFC 3339; the token stops working then. Default: never.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// A console user's email: a personal access token that acts as that
    /// user (an org admin or a team lead; for escalation reviewers using the
    /// API). It gets the user's scope; `team_id` may be left out.
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub id: String,
    pub name: String,
    /// `gateway` or `access`.
    pub token_type: String,
    pub team_id: Option<String>,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub expires_at: Option<String>,
    /// When the token was last used (gateway keys: within a few seconds;
    /// API tokens: within a minute). `null` = never.
    pub last_used_at: Option<String>,
    /// A personal token's user (`null`: a team or org token).
    pub user_id: Option<String>,
    /// The secret: present only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<TokenRow> for TokenResponse {
    fn from(t: TokenRow) -> Self {
        TokenResponse {
            id: t.token_id,
            name: t.name,
            token_type: t.token_type,
            team_id: t.team_id,
            prefix: t.prefix,
            created_at: store::format_ms(t.created_at),
            revoked_at: t.revoked_at.map(store::format_ms),
            expires_at: t.expires_at.map(store::format_ms),
            last_used_at: t.last_used_at.map(store::format_ms),
            user_id: t.user_id,
            token: None,
        }
    }
}

/// Creates a gateway key or an access token; the secret is in this answer
/// only.
#[utoipa::path(
    post,
    path = "/v1/tokens",
    tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, description = "The token, with its secret in `token`", body = TokenResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such team (`team_id`)", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn create_token(
    caller: ApiCaller,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let kind = TokenKind::parse(&body.token_type).ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "unknown token_type `{}`: use \"gateway\" (a kt_gk_ key for applications) or \"access\" (a kt_ak_ API token)",
            body.token_type
        ))
    })?;
    if body.name.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "`name` must not be empty".to_owned(),
        ));
    }
    let mut team_id = body.team_id;
    let user_id = match body.user.as_deref().map(str::trim) {
        None => None,
        Some(email) => {
            if kind != TokenKind::Access {
                return Err(ApiError::Unprocessable(
                    "`user` is for access tokens: a gateway key belongs to a team".to_owned(),
                ));
            }
            let user = store::users::by_email(caller.db(), email)
                .await?
                .ok_or_else(|| {
                    ApiError::Unprocessable(format!("there is no console user {email}"))
                })?;
            if team_id.is_none() && user.role != "admin" {
                team_id.clone_from(&user.team_id);
            }
            Some(user.user_id)
        }
    };
    if let Some(team_id) = &team_id {
        // The team must exist and be visible to the caller (404 otherwise).
        caller
            .scoped
            .get_team(team_id)
            .await
            .map_err(|e| ApiError::from_store(e, "team"))?;
    }
    let expires_at = match &body.expires_at {
        None => None,
        Some(t) => {
            let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .ok()
                .and_then(|at| i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok())
                .ok_or_else(|| {
                    ApiError::Unprocessable(format!(
                        "`expires_at` `{t}` is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z)"
                    ))
                })?;
            if at <= store::now_ms() {
                return Err(ApiError::Unprocessable(format!(
                    "`expires_at` {t} is in the past: give a future time, or leave it out for a token that does not expire"
                )));
            }
            Some(at)
        }
    };
    let created = caller
        .scoped
        .create_token(&NewToken {
            name: body.name.trim().to_owned(),
            kind,
            team_id,
            expires_at,
            user_id,
        })
        .await
        .map_err(|e| ApiError::from_store(e, "token"))?;
    let mut response = TokenResponse::from(created.row);
    response.token = Some(created.secret);
    Ok((StatusCode::CREATED, Json(response)))
}

/// Lists the tokens the caller can see (never their secrets).
#[utoipa::path(
    get,
    path = "/v1/tokens",
    tag = "tokens",
    responses((status = 200, description = "The tokens", body = List<TokenResponse>)),
    security(("bearer" = [])),
)]
pub async fn list_tokens(caller: ApiCaller) -> Result<Json<List<TokenResponse>>, ApiError> {
    let tokens = caller.scoped.list_tokens().await?;
    Ok(Json(List {
        data: tokens.into_iter().map(Into::into).collect(),
    }))
}

/// Revokes a token (not the caller's own).
#[utoipa::path(
    delete,
    path = "/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The revoked token", body = TokenResponse),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`conflict`: a token cannot revoke itself", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn revoke_token(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<TokenResponse>, ApiError> {
    if id == caller.token_id {
        return Err(ApiError::Conflict(
            "a token cannot revoke itself; use another token".to_owned(),
        ));
    }
    let row = caller
        .scoped
        .revoke_token(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "token"))?;
    Ok(Json(row.into()))
}
