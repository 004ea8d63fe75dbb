//! `GET /v1/gateways`: the fleet, with health from heartbeats.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use store::gateways::GatewayRow;
use utoipa::ToSchema;

use super::auth::ApiCaller;
use super::error::ApiError;
use super::teams::List;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/gateways", get(list_gateways))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayResponse {
    pub id: String,
    pub name: String,
    /// Team ids served; empty = every team.
    pub teams: Vec<String>,
    pub address: String,
    /// From heartbeats: `healthy`, `stale` or `down`.
    #[schema(value_type = String, examples("healthy", "stale", "down"))]
    pub status: &'static str,
    /// The last heartbeat (RFC 3339).
    pub last_seen: String,
    pub started_at: String,
    /// kt's version on the gateway.
    pub version: String,
    /// The hash of the configuration the gateway runs.
    pub config_hash: String,
    pub running_config_hash: String,
    /// The hash of its environment's current configuration version, when
    /// it serves one team in a named environment (`--environment`).
    pub desired_config_hash: Option<String>,
    /// The gateway runs another configuration than the desired one.
    pub drift: bool,
    /// The environment it serves, when it says (managed gateways, and
    /// file-based ones started with `--environment`).
    pub environment: Option<String>,
    /// A demo gateway (answers with canned text, no provider).
    pub demo: bool,
}

impl GatewayResponse {
    /// `desired`: the current version's hash of the gateway's team and
    /// environment, when it serves one team in a named environment.
    fn new(g: GatewayRow, now: i64, desired: Option<String>) -> Self {
        GatewayResponse {
            drift: desired.as_ref().is_some_and(|d| *d != g.config_hash),
            desired_config_hash: desired,
            status: g.status(now),
            teams: g
                .teams
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            id: g.gateway_id,
            name: g.name,
            address: g.address,
            last_seen: store::format_ms(g.last_seen_at),
            started_at: store::format_ms(g.started_at),
            version: g.version,
            running_config_hash: g.config_hash.clone(),
            config_hash: g.config_hash,
            environment: g.environment,
            demo: g.demo,
        }
    }
}

/// Lists the gateways, with their health from heartbeats.
#[utoipa::path(
    get,
    path = "/v1/gateways",
    tag = "gateways",
    responses((status = 200, description = "The fleet", body = List<GatewayResponse>)),
    security(("bearer" = [])),
)]
pub async fn list_gateways(caller: ApiCaller) -> Result<Json<List<GatewayResponse>>, ApiError> {
    let now = store::now_ms();
    let gateways = caller.scoped.list_gateways().await?;
    let desired = caller.scoped.desired_config_hashes().await?;
    Ok(Json(List {
        data: gateways
            .into_iter()
            .map(|g| {
                let wanted = g.desired_hash(&desired).map(str::to_owned);
                GatewayResponse::new(g, now, wanted)
            })
            .collect(),
    }))
}
