//! `/v1/secrets` (provider keys, write-only, AES-256-GCM-SIV at rest) and
//! `/v1/providers` (organisation-wide defaults per provider kind), SPEC §6.
//!
//! A secret's value goes in and never comes out: lists carry names, teams and
//! times only. Team-scoped tokens manage their own team's secrets; org-wide
//! secrets and provider defaults need an org-admin token.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::secrets::{ProviderDefault, SecretRow};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list_secrets).post(put_secret))
        .route("/secrets/{name}", delete(delete_secret))
        .route("/providers", get(list_providers))
        .route("/providers/{kind}", put(set_provider))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    /// 1 to 64 letters, digits, `_`, `-` or `.`; configs refer to it as
    /// `secret_key_ref.secret`.
    #[schema(pattern = r"^[A-Za-z0-9_.\-]{1,64}$", example = "openai-prod")]
    pub name: String,
    /// The secret (1 to 16384 bytes); it is never returned.
    #[schema(write_only)]
    pub value: String,
    /// The team the secret belongs to; absent = org-wide (org admins only).
    #[serde(default)]
    pub team_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SecretTeam {
    /// The team whose secret it is; absent = the org-wide secret.
    #[serde(default)]
    pub team_id: Option<String>,
}

/// A secret as the API shows it: never its value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretResponse {
    pub name: String,
    /// `null` for an org-wide secret.
    pub team_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: String,
}

impl From<SecretRow> for SecretResponse {
    fn from(s: SecretRow) -> Self {
        SecretResponse {
            name: s.name,
            team_id: (!s.team_id.is_empty()).then_some(s.team_id),
            created_at: store::format_ms(s.created_at),
            updated_at: store::format_ms(s.updated_at),
            updated_by: s.updated_by,
        }
    }
}

/// Stores a secret (a provider key), creating or replacing it. Team tokens
/// manage their own team's secrets; org-wide secrets need an org-admin token.
#[utoipa::path(
    post,
    path = "/v1/secrets",
    tag = "secrets",
    request_body = NewSecret,
    responses(
        (status = 201, description = "Created (the value is never returned)", body = SecretResponse),
        (status = 200, description = "Replaced", body = SecretResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such team", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn put_secret(
    State(state): State<AppState>,
    caller: ApiCaller,
    body: Result<ApiJson<NewSecret>, ApiError>,
) -> Result<(StatusCode, Json<SecretResponse>), ApiError> {
    let ApiJson(body) = body?;
    store::secrets::validate(&body.name, &body.value).map_err(ApiError::Unprocessable)?;
    let (row, created) = caller
        .scoped
        .put_secret(
            &state.master_key,
            &body.name,
            body.team_id.as_deref(),
            &body.value,
        )
        .await
        .map_err(|e| secret_error(e, body.team_id.as_deref()))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(row.into())))
}

fn secret_error(err: store::StoreError, team_id: Option<&str>) -> ApiError {
    match err {
        store::StoreError::Forbidden => ApiError::Forbidden(
            "org-wide secrets need an org-admin token; a team token manages its own team's secrets (give `team_id`)".to_owned(),
        ),
        store::StoreError::NotFound => ApiError::NotFound(match team_id {
            Some(team) => format!("team `{team}` or its secret not found"),
            None => "secret not found".to_owned(),
        }),
        other => ApiError::from_store(other, "secret"),
    }
}

/// Lists the secrets the caller can see: names, teams and times, never values.
#[utoipa::path(
    get,
    path = "/v1/secrets",
    tag = "secrets",
    responses((status = 200, description = "The secrets", body = List<SecretResponse>)),
    security(("bearer" = [])),
)]
pub async fn list_secrets(caller: ApiCaller) -> Result<Json<List<SecretResponse>>, ApiError> {
    let rows = caller.scoped.list_secrets().await?;
    Ok(Json(List {
        data: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Deletes a secret.
#[utoipa::path(
    delete,
    path = "/v1/secrets/{name}",
    tag = "secrets",
    params(("name" = String, Path, description = "The secret's name"), SecretTeam),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn delete_secret(
    caller: ApiCaller,
    Path(name): Path<String>,
    query: Result<Query<SecretTeam>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    caller
        .scoped
        .delete_secret(&name, q.team_id.as_deref())
        .await
        .map_err(|e| secret_error(e, q.team_id.as_deref()))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetProvider {
    /// The vendor URL for this kind (an Azure endpoint, an internal vLLM …).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The name of an org-wide secret holding the key.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderResponse {
    /// The provider kind: `openai` or `anthropic`.
    pub kind: String,
    pub base_url: Option<String>,
    /// The name of the org-wide secret holding the key.
    pub secret: Option<String>,
    pub updated_at: String,
    pub updated_by: String,
}

impl From<ProviderDefault> for ProviderResponse {
    fn from(p: ProviderDefault) -> Self {
        ProviderResponse {
            kind: p.kind,
            base_url: p.base_url,
            secret: p.secret_name,
            updated_at: store::format_ms(p.updated_at),
            updated_by: p.updated_by,
        }
    }
}

/// Sets the organisation-wide defaults of a provider kind (org admins).
#[utoipa::path(
    put,
    path = "/v1/providers/{kind}",
    tag = "secrets",
    params(("kind" = String, Path, description = "`openai` or `anthropic`")),
    request_body = SetProvider,
    responses(
        (status = 200, description = "The provider defaults", body = ProviderResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such provider kind", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn set_provider(
    caller: ApiCaller,
    Path(kind): Path<String>,
    body: Result<ApiJson<SetProvider>, ApiError>,
) -> Result<Json<ProviderResponse>, ApiError> {
    if !caller.is_org_admin() {
        return Err(ApiError::Forbidden(
            "provider defaults apply to every team: only org admins can set them".to_owned(),
        ));
    }
    let Some(kind) =
        policy::ProviderKind::from_name(&kind).filter(|k| *k != policy::ProviderKind::Demo)
    else {
        return Err(ApiError::NotFound(format!(
            "no provider kind `{kind}`: use openai or anthropic"
        )));
    };
    let ApiJson(body) = body?;
    if let Some(url) = &body.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ApiError::Unprocessable(format!(
            "`base_url` must be an http(s):// URL, not {url:?}"
        )));
    }
    if let Some(name) = &body.secret {
        let exists = caller
            .scoped
            .list_secrets()
            .await?
            .iter()
            .any(|s| &s.name == name && s.team_id.is_empty());
        if !exists {
            return Err(ApiError::Unprocessable(format!(
                "`secret`: no org-wide secret named `{name}`; store it first with POST /v1/secrets"
            )));
        }
    }
    let row = caller
        .scoped
        .set_provider(
            kind.as_str(),
            body.base_url.as_deref(),
            body.secret.as_deref(),
        )
        .await?;
    Ok(Json(row.into()))
}

/// Lists the provider defaults.
#[utoipa::path(
    get,
    path = "/v1/providers",
    tag = "secrets",
    responses((status = 200, description = "The provider defaults", body = List<ProviderResponse>)),
    security(("bearer" = [])),
)]
pub async fn list_providers(caller: ApiCaller) -> Result<Json<List<ProviderResponse>>, ApiError> {
    let rows = caller.scoped.list_providers().await?;
    Ok(Json(List {
        data: rows.into_iter().map(Into::into).collect(),
    }))
}
