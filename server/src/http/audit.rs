//! `GET /v1/audit`: the audit log (who changed what, when, before and after),
//! newest first. A team-scoped token sees its own team's entries.

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::audit::{AuditFilter, AuditRow};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::ApiError;
use super::openapi::BadRequest;
use super::teams::List;
use crate::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list_audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries from then on: a duration back from now (`30s`, `5m`, `2h`,
    /// `30d`) or an RFC 3339 time.
    pub since: Option<String>,
    /// Entries before then: a duration back from now or an RFC 3339 time.
    pub until: Option<String>,
    /// Exact actor, as listed (`name (token id)`, `email (console)`).
    pub actor: Option<String>,
    /// An action (`token.revoke`) or a prefix ending in `.` (`token.`).
    pub action: Option<String>,
    /// Entries about this team (a team token sees only its own).
    pub team_id: Option<String>,
    /// Most entries returned: 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditResponse {
    pub id: String,
    pub created_at: String,
    pub actor: String,
    pub team_id: Option<String>,
    /// What was done, e.g. `token.revoke`, `price.set`.
    pub action: String,
    /// The kind of object changed, e.g. `token`.
    pub target_type: String,
    pub target_id: String,
    /// The object before the change (`null` for a creation); secret values
    /// are always masked.
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl From<AuditRow> for AuditResponse {
    fn from(a: AuditRow) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        AuditResponse {
            id: a.audit_id,
            created_at: store::format_ms(a.created_at),
            actor: a.actor,
            team_id: a.team_id,
            action: a.action,
            target_type: a.target_type,
            target_id: a.target_id,
            before: parse(a.before_json),
            after: parse(a.after_json),
        }
    }
}

/// Lists audit entries, newest first.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit entries, newest first", body = List<AuditResponse>),
        (status = 400, response = BadRequest),
    ),
    security(("bearer" = [])),
)]
pub async fn list_audit(
    caller: ApiCaller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<List<AuditResponse>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = store::now_ms();
    let time = |name: &str, value: &Option<String>| -> Result<Option<i64>, ApiError> {
        value
            .as_deref()
            .map(|v| {
                super::events::parse_since(v, now)
                    .map_err(|why| ApiError::BadRequest(format!("`{name}`: {why}")))
            })
            .transpose()
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    let filter = AuditFilter {
        since_ms: time("since", &q.since)?,
        until_ms: time("until", &q.until)?,
        actor: q.actor,
        action: q.action,
        team_id: q.team_id,
        limit,
    };
    let rows = caller.scoped.list_audit(&filter).await?;
    Ok(Json(List {
        data: rows.into_iter().map(Into::into).collect(),
    }))
}
