//! `/v1/teams`: the tenants.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::teams::{NewTeam, Team};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::{ApiError, ErrorBody};
use super::json::ApiJson;
use super::openapi::{BadRequest, Forbidden, NotFound, Unprocessable};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/teams", get(list_teams).post(create_team))
        .route("/teams/{id}", get(get_team).patch(rename_team))
        .route("/teams/{id}/archive", post(archive_team))
        .route("/teams/{id}/members", get(list_members))
        .route(
            "/teams/{id}/reviewers",
            get(list_reviewers).put(set_reviewers),
        )
        .route(
            "/teams/{id}/members/{email}",
            put(set_member).delete(remove_member),
        )
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
    /// 1 to 63 lowercase letters, digits and dashes, starting with a letter
    /// and not ending with a dash; names the team's gateways and configs, and
    /// never changes.
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", example = "eng")]
    pub slug: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamResponse {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: String,
    /// When the team was archived (its keys and tokens stopped working).
    pub archived_at: Option<String>,
}

impl From<Team> for TeamResponse {
    fn from(t: Team) -> Self {
        TeamResponse {
            id: t.team_id,
            name: t.name,
            slug: t.slug,
            created_at: store::format_ms(t.created_at),
            archived_at: t.archived_at.map(store::format_ms),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TeamListQuery {
    /// Include archived teams (default: only active ones).
    #[serde(default)]
    #[param(default = false)]
    pub include_archived: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTeam {
    /// 1 to 100 characters (the slug does not change).
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetMember {
    /// `team_lead`, `member` or `viewer`.
    #[schema(examples("team_lead", "member", "viewer"))]
    pub role: String,
}

/// A console user in a team.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberResponse {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub team_id: Option<String>,
}

impl From<store::users::User> for MemberResponse {
    fn from(u: store::users::User) -> Self {
        MemberResponse {
            user_id: u.user_id,
            email: u.email,
            role: u.role,
            team_id: u.team_id,
        }
    }
}

/// Team roles a member may have (org admins are not team members).
const TEAM_ROLES: &[&str] = &["team_lead", "member", "viewer"];

/// A list answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
}

/// Creates a team.
#[utoipa::path(
    post,
    path = "/v1/teams",
    tag = "teams",
    request_body = CreateTeam,
    responses(
        (status = 201, description = "The team", body = TeamResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 409, description = "`conflict`: a team with this slug exists", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn create_team(
    caller: ApiCaller,
    State(_): State<AppState>,
    ApiJson(body): ApiJson<CreateTeam>,
) -> Result<(StatusCode, Json<TeamResponse>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() {
        return Err(ApiError::Unprocessable(
            "`name` must not be empty".to_owned(),
        ));
    }
    store::teams::validate_slug(&body.slug).map_err(ApiError::Unprocessable)?;
    let team = caller
        .scoped
        .create_team(&NewTeam {
            name: name.to_owned(),
            slug: body.slug.clone(),
        })
        .await
        .map_err(|e| ApiError::from_store(e, &format!("a team with slug `{}`", body.slug)))?;
    Ok((StatusCode::CREATED, Json(team.into())))
}

/// Lists the teams the caller can see (active ones unless
/// `include_archived=true`).
#[utoipa::path(
    get,
    path = "/v1/teams",
    tag = "teams",
    params(TeamListQuery),
    responses(
        (status = 200, description = "The teams", body = List<TeamResponse>),
        (status = 400, response = BadRequest),
    ),
    security(("bearer" = [])),
)]
pub async fn list_teams(
    caller: ApiCaller,
    query: Result<Query<TeamListQuery>, QueryRejection>,
) -> Result<Json<List<TeamResponse>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let teams = caller.scoped.list_teams().await?;
    Ok(Json(List {
        data: teams
            .into_iter()
            .filter(|t| q.include_archived || t.archived_at.is_none())
            .map(Into::into)
            .collect(),
    }))
}

fn org_only(caller: &ApiCaller, what: &str) -> Result<(), ApiError> {
    if caller.is_org_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "only org admins can {what}; this token is scoped to one team"
        )))
    }
}

/// Renames a team (org admins); the slug does not change.
#[utoipa::path(
    patch,
    path = "/v1/teams/{id}",
    tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    request_body = RenameTeam,
    responses(
        (status = 200, description = "The renamed team", body = TeamResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn rename_team(
    caller: ApiCaller,
    Path(id): Path<String>,
    body: Result<ApiJson<RenameTeam>, ApiError>,
) -> Result<Json<TeamResponse>, ApiError> {
    org_only(&caller, "rename teams")?;
    let ApiJson(body) = body?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::Unprocessable(
            "`name` must be 1 to 100 characters (the slug does not change: it names the team's gateways and configs)".to_owned(),
        ));
    }
    let team = caller
        .scoped
        .rename_team(&id, name)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(team.into()))
}

/// Archives a team (org admins): its gateway keys and tokens stop working
/// and it is hidden from lists unless `include_archived=true`.
#[utoipa::path(
    post,
    path = "/v1/teams/{id}/archive",
    tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The archived team", body = TeamResponse),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn archive_team(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<TeamResponse>, ApiError> {
    org_only(&caller, "archive teams")?;
    let team = caller
        .scoped
        .archive_team(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(team.into()))
}

/// Lists a team's members (console users).
#[utoipa::path(
    get,
    path = "/v1/teams/{id}/members",
    tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The members", body = List<MemberResponse>),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn list_members(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<List<MemberResponse>>, ApiError> {
    let members = caller
        .scoped
        .team_members(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(List {
        data: members.into_iter().map(Into::into).collect(),
    }))
}

fn member_error(err: store::StoreError, email: &str) -> ApiError {
    match err {
        store::StoreError::NotFound => ApiError::NotFound(format!(
            "team, or console user `{email}`, not found (create users with `kt admin create-user`)"
        )),
        store::StoreError::Invalid(msg) => ApiError::Unprocessable(msg),
        other => ApiError::from_store(other, "member"),
    }
}

/// Makes a console user a member of the team with a role, or changes their
/// role (org admins).
#[utoipa::path(
    put,
    path = "/v1/teams/{id}/members/{email}",
    tag = "teams",
    params(
        ("id" = String, Path, description = "The team's id"),
        ("email" = String, Path, description = "The console user's email"),
    ),
    request_body = SetMember,
    responses(
        (status = 200, description = "The member", body = MemberResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such team or console user", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn set_member(
    caller: ApiCaller,
    Path((id, email)): Path<(String, String)>,
    body: Result<ApiJson<SetMember>, ApiError>,
) -> Result<Json<MemberResponse>, ApiError> {
    org_only(&caller, "change team members")?;
    let ApiJson(body) = body?;
    if !TEAM_ROLES.contains(&body.role.as_str()) {
        return Err(ApiError::Unprocessable(format!(
            "`role` `{}` is not a team role: use one of {}",
            body.role,
            TEAM_ROLES.join(", ")
        )));
    }
    let user = caller
        .scoped
        .set_member(&id, &email, Some(&body.role))
        .await
        .map_err(|e| member_error(e, &email))?;
    Ok(Json(user.into()))
}

/// Removes a console user from the team (org admins).
#[utoipa::path(
    delete,
    path = "/v1/teams/{id}/members/{email}",
    tag = "teams",
    params(
        ("id" = String, Path, description = "The team's id"),
        ("email" = String, Path, description = "The console user's email"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, response = Forbidden),
        (status = 404, description = "`not_found`: no such team or console user", body = ErrorBody),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn remove_member(
    caller: ApiCaller,
    Path((id, email)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    org_only(&caller, "change team members")?;
    caller
        .scoped
        .set_member(&id, &email, None)
        .await
        .map_err(|e| member_error(e, &email))?;
    Ok(StatusCode::NO_CONTENT)
}

/// One team.
#[utoipa::path(
    get,
    path = "/v1/teams/{id}",
    tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The team", body = TeamResponse),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn get_team(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<TeamResponse>, ApiError> {
    let team = caller
        .scoped
        .get_team(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(team.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewerResponse {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub added_at: String,
}

/// A team's designated reviewers, and who its escalations go to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewersResponse {
    pub data: Vec<ReviewerResponse>,
    /// `team_reviewers`, or `org_admins` when the team names none.
    pub routed_to: String,
}

impl From<Vec<store::escalations::Reviewer>> for ReviewersResponse {
    fn from(rows: Vec<store::escalations::Reviewer>) -> Self {
        ReviewersResponse {
            routed_to: if rows.is_empty() {
                "org_admins"
            } else {
                "team_reviewers"
            }
            .to_owned(),
            data: rows
                .into_iter()
                .map(|r| ReviewerResponse {
                    user_id: r.user_id,
                    email: r.email,
                    role: r.role,
                    added_at: store::format_ms(r.added_at),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetReviewers {
    /// Emails of the team's members who review its escalations (not
    /// viewers); empty: the org admins review them.
    pub reviewers: Vec<String>,
}

/// Lists a team's escalation reviewers (SPEC §10).
#[utoipa::path(
    get,
    path = "/v1/teams/{id}/reviewers",
    tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The reviewers", body = ReviewersResponse),
        (status = 404, response = NotFound),
    ),
    security(("bearer" = [])),
)]
pub async fn list_reviewers(
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Json<ReviewersResponse>, ApiError> {
    let rows = caller
        .scoped
        .team_reviewers(&id)
        .await
        .map_err(|e| ApiError::from_store(e, "team"))?;
    Ok(Json(rows.into()))
}

/// Names a team's escalation reviewers, replacing the list (org admins, or a
/// team lead of the team with a personal token).
#[utoipa::path(
    put,
    path = "/v1/teams/{id}/reviewers",
    tag = "teams",
    params(("id" = String, Path, description = "The team's id")),
    request_body = SetReviewers,
    responses(
        (status = 200, description = "The reviewers now", body = ReviewersResponse),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Unprocessable),
    ),
    security(("bearer" = [])),
)]
pub async fn set_reviewers(
    caller: ApiCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetReviewers>,
) -> Result<Json<ReviewersResponse>, ApiError> {
    let rows = caller
        .scoped
        .set_team_reviewers(&id, &body.reviewers)
        .await
        .map_err(|e| match e {
            store::StoreError::Invalid(msg) => ApiError::Unprocessable(msg),
            other => ApiError::from_store(other, "team"),
        })?;
    Ok(Json(rows.into()))
}
