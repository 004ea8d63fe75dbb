//! `/v1/teams`: the tenants.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::teams::{NewTeam, Team};

use super::auth::ApiCaller;
use super::error::ApiError;
use super::json::ApiJson;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/teams", get(list_teams).post(create_team))
        .route("/teams/{id}", get(get_team))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Serialize)]
pub struct TeamResponse {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: String,
}

impl From<Team> for TeamResponse {
    fn from(t: Team) -> Self {
        TeamResponse {
            id: t.team_id,
            name: t.name,
            slug: t.slug,
            created_at: store::format_ms(t.created_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct List<T> {
    pub data: Vec<T>,
}

async fn create_team(
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

async fn list_teams(caller: ApiCaller) -> Result<Json<List<TeamResponse>>, ApiError> {
    let teams = caller.scoped.list_teams().await?;
    Ok(Json(List {
        data: teams.into_iter().map(Into::into).collect(),
    }))
}

async fn get_team(
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
