//! `GET /v1/events`: recent request events, newest first.

use axum::extract::Query;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::events::{EventFilter, EventRow};

use super::auth::ApiCaller;
use super::error::ApiError;
use super::teams::List;
use crate::AppState;

const DEFAULT_LIMIT: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(list_events))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub gateway_id: Option<String>,
    pub team_id: Option<String>,
    pub verdict: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EventResponse {
    pub id: String,
    pub created_at: String,
    pub gateway_id: String,
    pub gateway_name: String,
    pub team_id: Option<String>,
    pub token_id: Option<String>,
    pub model: String,
    pub provider_target: Option<String>,
    pub provider_kind: Option<String>,
    pub verdict: String,
    pub reason: Option<String>,
    pub policy: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub upstream_status: Option<i64>,
    pub streamed: bool,
    pub demo: bool,
    /// PII entity types a policy found (never the values).
    pub pii_entities: Vec<String>,
    /// The model had no catalog price: charged at a large model's price.
    pub unpriced: bool,
}

impl From<EventRow> for EventResponse {
    fn from(e: EventRow) -> Self {
        EventResponse {
            id: e.event_id,
            created_at: store::format_ms(e.created_at),
            gateway_id: e.gateway_id,
            gateway_name: e.gateway_name,
            team_id: e.team_id,
            token_id: e.token_id,
            model: e.model,
            provider_target: e.provider_target,
            provider_kind: e.provider_kind,
            verdict: e.verdict,
            reason: e.reason,
            policy: e.policy,
            input_tokens: e.input_tokens,
            output_tokens: e.output_tokens,
            cost_usd: e.cost_micros as f64 / 1_000_000.0,
            latency_ms: e.latency_ms,
            upstream_status: e.upstream_status,
            streamed: e.streamed,
            demo: e.demo,
            pii_entities: e
                .pii_entities
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            unpriced: e.unpriced,
        }
    }
}

/// Parses `since`: a duration back from now (`30s`, `5m`, `2h`, `30d`) or an
/// RFC 3339 time; returns unix milliseconds.
pub fn parse_since(value: &str, now_ms: i64) -> Result<i64, String> {
    let value = value.trim();
    let unit_ms = match value.chars().last() {
        Some('s') => Some(1_000),
        Some('m') => Some(60_000),
        Some('h') => Some(3_600_000),
        Some('d') => Some(86_400_000),
        _ => None,
    };
    if let Some(unit) = unit_ms
        && let Ok(n) = value[..value.len() - 1].parse::<i64>()
        && n >= 0
    {
        return Ok(now_ms.saturating_sub(n.saturating_mul(unit)));
    }
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        .map_err(|_| {
            format!("invalid `since` value `{value}`: use a duration like 30s, 5m, 2h, 30d or an RFC 3339 time like 2026-01-31T12:00:00Z")
        })
}

async fn list_events(
    caller: ApiCaller,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<EventResponse>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let since_ms = q
        .since
        .as_deref()
        .map(|s| parse_since(s, store::now_ms()))
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=store::events::MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be between 1 and {}",
            store::events::MAX_LIST_LIMIT
        )));
    }
    let events = caller
        .scoped
        .list_events(&EventFilter {
            since_ms,
            limit,
            gateway_id: q.gateway_id,
            team_id: q.team_id,
            verdict: q.verdict,
        })
        .await?;
    Ok(Json(List {
        data: events.into_iter().map(Into::into).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_accepts_durations_and_times() {
        let now = 10_000_000_000;
        assert_eq!(parse_since("5m", now), Ok(now - 300_000));
        assert_eq!(parse_since("30d", now), Ok(now - 30 * 86_400_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z", now), Ok(1_000));
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("30s, 5m")
        );
        assert!(parse_since("-5m", now).is_err());
        assert!(parse_since("", now).is_err());
    }
}
