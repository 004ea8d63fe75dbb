//! Self-service onboarding (SPEC §9): templates, requests, approval (which
//! runs the provisioning pipeline and answers with every step's status and
//! the new gateway key, once), rejection, and Kubernetes manifests.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::StoreError;
use store::onboarding::{NewRequest, Request, Template};
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::error::ApiError;
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use super::teams::List;
use crate::AppState;

/// Largest template accepted.
const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(list_templates))
        .route("/templates/{name}", put(put_template))
        .route(
            "/onboarding/requests",
            get(list_requests).post(create_request),
        )
        .route("/onboarding/requests/{id}", get(get_request))
        .route("/onboarding/requests/{id}/approve", post(approve))
        .route("/onboarding/requests/{id}/reject", post(reject))
        .route("/onboarding/requests/{id}/manifests", get(manifests))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateResponse {
    pub name: String,
    /// The policy config (YAML, SPEC §4); onboarding sets its
    /// `monthly_limit` and `allowed_models` from the request.
    pub content: String,
    pub updated_by: String,
    pub updated_at: String,
}

impl From<Template> for TemplateResponse {
    fn from(t: Template) -> Self {
        TemplateResponse {
            name: t.name,
            content: t.content,
            updated_by: t.updated_by,
            updated_at: store::format_ms(t.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTemplate {
    pub content: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOnboarding {
    pub team_name: String,
    /// Lowercase letters, digits and `-`; names the team's gateway and configs.
    pub team_slug: String,
    pub lead_email: String,
    #[serde(default)]
    pub use_case: String,
    /// `std`, `reg`, `exp`, or another template (`GET /v1/templates`).
    pub template: String,
    /// USD per calendar month: the config's `cost_limit` and the wallet allocation.
    pub monthly_budget: f64,
    pub models: Vec<String>,
    /// Default `production`.
    #[serde(default)]
    pub environment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepResponse {
    /// `team`, `config`, `wallet`, `key`, `gateway`
    pub step: String,
    /// `pending`, `running`, `done`, `failed`
    pub status: String,
    pub detail: Option<String>,
    pub at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestResponse {
    pub id: String,
    pub team_name: String,
    pub team_slug: String,
    pub lead_email: String,
    pub use_case: String,
    pub template: String,
    pub monthly_budget: f64,
    pub models: Vec<String>,
    pub environment: String,
    /// `pending`, `provisioning`, `ready`, `failed` (approve again to retry) or `rejected`
    pub status: String,
    pub reason: Option<String>,
    pub steps: Vec<StepResponse>,
    pub team_id: Option<String>,
    pub gateway_name: Option<String>,
    /// The gateway's base URL (local runner): OpenAI SDKs use `<url>/v1`.
    pub gateway_url: Option<String>,
    pub requested_by: String,
    pub created_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Only in the answer to the approval that created it: the gateway key
    /// (`kt_gk_…`), never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_key: Option<String>,
}

impl From<Request> for RequestResponse {
    fn from(r: Request) -> Self {
        RequestResponse {
            models: r.models(),
            steps: r
                .steps()
                .into_iter()
                .map(|s| StepResponse {
                    step: s.step,
                    status: s.status,
                    detail: s.detail,
                    at: s.at.map(store::format_ms),
                })
                .collect(),
            id: r.onboarding_request_id,
            team_name: r.team_name,
            team_slug: r.team_slug,
            lead_email: r.lead_email,
            use_case: r.use_case,
            template: r.template,
            monthly_budget: r.monthly_budget_micros as f64 / 1e6,
            environment: r.environment,
            status: r.status,
            reason: r.reason,
            team_id: r.team_id,
            gateway_name: r.gateway_name,
            gateway_url: r.gateway_url,
            requested_by: r.requested_by,
            created_at: store::format_ms(r.created_at),
            decided_by: r.decided_by,
            decided_at: r.decided_at.map(store::format_ms),
            gateway_key: None,
        }
    }
}

fn from_store(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid(m) => ApiError::Unprocessable(m),
        StoreError::Conflict(m) => ApiError::Conflict(m),
        other => ApiError::from_store(other, "onboarding request"),
    }
}

fn org_only(caller: &ApiCaller, what: &str) -> Result<(), ApiError> {
    if caller.is_org_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("only org admins {what}")))
    }
}

/// The policy templates.
#[utoipa::path(get, path = "/v1/templates", tag = "onboarding",
    responses((status = 200, description = "Templates", body = List<TemplateResponse>)),
    security(("bearer" = [])))]
pub async fn list_templates(caller: ApiCaller) -> Result<Json<List<TemplateResponse>>, ApiError> {
    let all = store::onboarding::templates(caller.db()).await?;
    Ok(Json(List {
        data: all.into_iter().map(Into::into).collect(),
    }))
}

/// Replaces (or adds) a template; it must pass lint (org admins).
#[utoipa::path(put, path = "/v1/templates/{name}", tag = "onboarding",
    params(("name" = String, Path, description = "Template name, e.g. `std`")),
    request_body = PutTemplate,
    responses(
        (status = 200, description = "The template", body = TemplateResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])))]
pub async fn put_template(
    caller: ApiCaller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutTemplate>,
) -> Result<Json<TemplateResponse>, ApiError> {
    org_only(&caller, "edit templates")?;
    if body.content.len() > MAX_TEMPLATE_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "`content` is larger than {MAX_TEMPLATE_BYTES} bytes"
        )));
    }
    if let Err(errors) = policy::parse(&body.content) {
        return Err(super::configs::lint_error(errors));
    }
    let t = caller
        .scoped
        .put_template(&name, &body.content)
        .await
        .map_err(from_store)?;
    Ok(Json(t.into()))
}

/// Files an onboarding request (any access token).
#[utoipa::path(post, path = "/v1/onboarding/requests", tag = "onboarding",
    request_body = NewOnboarding,
    responses(
        (status = 201, description = "Pending", body = RequestResponse),
        (status = 400, response = BadRequest),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])))]
pub async fn create_request(
    caller: ApiCaller,
    ApiJson(body): ApiJson<NewOnboarding>,
) -> Result<(StatusCode, Json<RequestResponse>), ApiError> {
    if !(body.monthly_budget.is_finite() && body.monthly_budget > 0.0 && body.monthly_budget < 1e9)
    {
        return Err(ApiError::Unprocessable(
            "`monthly_budget`: a positive amount of USD per month".to_owned(),
        ));
    }
    let r = caller
        .scoped
        .request_onboarding(&NewRequest {
            team_name: body.team_name.trim().to_owned(),
            team_slug: body.team_slug.trim().to_owned(),
            lead_email: body.lead_email.trim().to_owned(),
            use_case: body.use_case.trim().to_owned(),
            template: body.template.trim().to_owned(),
            monthly_budget_micros: (body.monthly_budget * 1e6).round() as i64,
            models: body.models.iter().map(|m| m.trim().to_owned()).collect(),
            environment: body
                .environment
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .unwrap_or("production")
                .to_owned(),
        })
        .await
        .map_err(from_store)?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

/// Requests, newest first: all for org admins, the caller's own otherwise.
#[utoipa::path(get, path = "/v1/onboarding/requests", tag = "onboarding",
    responses((status = 200, description = "Requests", body = List<RequestResponse>)),
    security(("bearer" = [])))]
pub async fn list_requests(caller: ApiCaller) -> Result<Json<List<RequestResponse>>, ApiError> {
    let all = caller.scoped.list_onboarding(200).await?;
    Ok(Json(List {
        data: all.into_iter().map(Into::into).collect(),
    }))
}

/// One request with each step's status.
#[utoipa::path(get, path = "/v1/onboarding/requests/{id}", tag = "onboarding",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = RequestResponse),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])))]
pub async fn get_request(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<RequestResponse>, ApiError> {
    let r = caller
        .scoped
        .get_onboarding(&id)
        .await
        .map_err(from_store)?;
    Ok(Json(r.into()))
}

/// Approves a pending request (or retries a failed one) and runs the
/// provisioning pipeline: team → config from the template (linted) →
/// wallet allocation → gateway key → gateway. Answers with every step's
/// status and, when this run created it, the gateway key (shown once).
#[utoipa::path(post, path = "/v1/onboarding/requests/{id}/approve", tag = "onboarding",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The pipeline's result (`status` `ready` or `failed`)", body = RequestResponse),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`conflict`: the request is not pending or failed", body = super::error::ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<RequestResponse>, ApiError> {
    org_only(&caller, "approve onboarding requests")?;
    let outcome = state
        .provision
        .approve(&caller.scoped, &id)
        .await
        .map_err(from_store)?;
    let mut response = RequestResponse::from(outcome.request);
    response.gateway_key = outcome.key;
    Ok(Json(response))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// Why, for the requester.
    pub reason: String,
}

/// Rejects a pending request with a reason (org admins).
#[utoipa::path(post, path = "/v1/onboarding/requests/{id}/reject", tag = "onboarding",
    params(("id" = String, Path, description = "Request id")),
    request_body = Reject,
    responses(
        (status = 200, description = "Rejected", body = RequestResponse),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, description = "`conflict`: the request is not pending", body = super::error::ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])))]
pub async fn reject(
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Reject>,
) -> Result<Json<RequestResponse>, ApiError> {
    org_only(&caller, "reject onboarding requests")?;
    let r = caller
        .scoped
        .reject_onboarding(&id, &body.reason)
        .await
        .map_err(from_store)?;
    Ok(Json(r.into()))
}

/// Kubernetes manifests for the request's tenant (org admins): Namespace
/// `tenant-<slug>`, the policy config in a ConfigMap, Secret references
/// (never values), a Deployment with probes, a Service, a NetworkPolicy.
#[utoipa::path(get, path = "/v1/onboarding/requests/{id}/manifests", tag = "onboarding",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Multi-document YAML", content_type = "application/yaml", body = String),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])))]
pub async fn manifests(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    org_only(&caller, "render manifests")?;
    let r = caller
        .scoped
        .get_onboarding(&id)
        .await
        .map_err(from_store)?;
    let template = store::onboarding::template(caller.db(), &r.template)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("template {} not found", r.template)))?;
    let config = provision::render(&template.content, r.monthly_budget_micros, &r.models())
        .map_err(|e| ApiError::Unprocessable(format!("template {}: {e}", r.template)))?;
    let image = std::env::var("KT_GATEWAY_IMAGE").unwrap_or_else(|_| "kt:latest".to_owned());
    Ok((
        [(header::CONTENT_TYPE, "application/yaml")],
        provision::manifests(&r, &config, &image),
    ))
}
