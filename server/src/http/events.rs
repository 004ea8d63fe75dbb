//! `GET /v1/events`: request events, newest first, or their totals per
//! gateway, team, model or day.
//!
//! Query parameters (each at most once; any other name is a 400 that names
//! it, as is every invalid value):
//! - `since`, `until`: a duration back from now (`30s`, `5m`, `2h`, `30d`) or
//!   an RFC 3339 time; `since` is inclusive, `until` exclusive, and `until`
//!   must be later than `since`.
//! - `gateway_id` (a gateway's id or name), `team_id`, `model` (exact),
//!   `verdict` (allow, block, redact, warn, escalate, error).
//! - `limit`: 1 to 1000 events per page (default 100); with `group_by`, the
//!   most groups returned (default 1000).
//! - `cursor`: the `next_cursor` of the previous page, with the same filters.
//!   Pages are keyed on (`created_at`, `id`), newest first, so events stored
//!   meanwhile never shift a walk: each event shows up once. (A relative
//!   `since` moves with the clock; use an RFC 3339 time for long walks.)
//! - `group_by=gateway|team|model|day`: totals from the hourly rollup, never
//!   the raw events. The range is widened to whole hours: every hour that
//!   overlaps [`since`, `until`) counts in full, and the answer's `since` /
//!   `until` give the hour-aligned range used.
//!
//! Answers: `{"data": [event…], "next_cursor": "…" | null}`, or with
//! `group_by`: `{"data": [{"key", "name"?, "requests", "blocked",
//! "input_tokens", "output_tokens", "cost_usd"}…], "group_by", "since",
//! "until"}`, highest cost first (`day`: oldest first, keys `YYYY-MM-DD` in
//! UTC). `key` is the gateway id, team id (`null`: events of no team), model
//! or day; `name` (gateway and team groups only) is the gateway's or team's
//! name when known. `blocked` counts block and escalate verdicts.

use axum::extract::Query;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::events::{
    EventCursor, EventFilter, EventGroup, EventRow, GroupBy, HOUR_MS, MAX_LIST_LIMIT, VERDICTS,
};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiCaller;
use super::error::ApiError;
use super::openapi::BadRequest;
use crate::AppState;

/// Events per page unless `limit` says otherwise.
const DEFAULT_LIMIT: i64 = 100;
/// The query parameters `GET /v1/events` accepts.
const PARAMS: [&str; 9] = [
    "since",
    "until",
    "limit",
    "cursor",
    "gateway_id",
    "team_id",
    "verdict",
    "model",
    "group_by",
];

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(list_events))
}

/// The query of `GET /v1/events`, as given (each parameter at most once;
/// any other is a 400 naming it).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Events from then on (inclusive): a duration back from now (`30s`,
    /// `5m`, `2h`, `30d`) or an RFC 3339 time.
    #[param(example = "5m")]
    pub since: Option<String>,
    /// Events before then (exclusive), later than `since`: a duration back
    /// from now or an RFC 3339 time.
    pub until: Option<String>,
    /// Events per page, 1 to 1000 (default 100); with `group_by`, the most
    /// groups returned (default 1000).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page, with the same filters (not
    /// with `group_by`).
    pub cursor: Option<String>,
    /// A gateway's id or name.
    pub gateway_id: Option<String>,
    /// A team's id.
    pub team_id: Option<String>,
    #[param(schema_with = verdict_schema)]
    pub verdict: Option<String>,
    /// The model, exactly.
    pub model: Option<String>,
    /// Totals per group from the hourly rollup instead of events; the range
    /// is widened to whole hours.
    #[param(schema_with = group_by_schema)]
    pub group_by: Option<String>,
}

/// `verdict`: one of [`VERDICTS`].
fn verdict_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Only events with this verdict"))
        .enum_values(Some(VERDICTS.iter().copied()))
}

/// `group_by`: one of [`GroupBy::ALL`].
fn group_by_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(GroupBy::ALL.iter().map(|g| g.as_str())))
}

impl EventQuery {
    /// Collects the parameters; unknown, repeated and empty ones are refused.
    fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, String> {
        let mut q = EventQuery::default();
        let mut unknown: Vec<String> = Vec::new();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "since" => &mut q.since,
                "until" => &mut q.until,
                "limit" => &mut q.limit,
                "cursor" => &mut q.cursor,
                "gateway_id" => &mut q.gateway_id,
                "team_id" => &mut q.team_id,
                "verdict" => &mut q.verdict,
                "model" => &mut q.model,
                "group_by" => &mut q.group_by,
                _ => {
                    if !unknown.contains(&name) {
                        unknown.push(name);
                    }
                    continue;
                }
            };
            if slot.is_some() {
                return Err(format!("query parameter `{name}` is given more than once"));
            }
            if value.trim().is_empty() {
                return Err(format!(
                    "query parameter `{name}` is empty: give a value or leave it out"
                ));
            }
            *slot = Some(value);
        }
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
            return Err(format!(
                "unknown query parameter{} {}: GET /v1/events accepts {}",
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                PARAMS.join(", ")
            ));
        }
        Ok(q)
    }
}

/// What `GET /v1/events` answers: a page of events, or with `group_by`,
/// totals per group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EventsAnswer {
    Page(EventPageResponse),
    Groups(GroupsResponse),
}

/// A page of events.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventPageResponse {
    pub data: Vec<EventResponse>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Totals per group, highest cost first (`day`: oldest first).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupsResponse {
    pub data: Vec<GroupResponse>,
    /// `gateway`, `team`, `model` or `day`.
    pub group_by: String,
    /// Start of the range used (whole hours), `null` when unbounded.
    pub since: Option<String>,
    /// End (exclusive) of the range used (whole hours), `null` when unbounded.
    pub until: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupResponse {
    /// The gateway id, team id (`null`: events of no team), model or day
    /// (`YYYY-MM-DD`, UTC).
    pub key: Option<String>,
    /// Gateway and team groups only: the name, `null` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    pub requests: i64,
    /// Block and escalate verdicts.
    pub blocked: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

impl GroupResponse {
    fn new(g: EventGroup, by: GroupBy) -> Self {
        GroupResponse {
            key: g.key,
            name: matches!(by, GroupBy::Gateway | GroupBy::Team).then_some(g.name),
            requests: g.totals.requests,
            blocked: g.totals.blocked,
            input_tokens: g.totals.input_tokens,
            output_tokens: g.totals.output_tokens,
            cost_usd: g.totals.cost_micros as f64 / 1_000_000.0,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
    /// `allow`, `block`, `redact`, `warn`, `escalate` or `error`.
    pub verdict: String,
    /// Why a policy acted.
    pub reason: Option<String>,
    /// The policy that decided.
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
    parse_time("since", value, now_ms)
}

/// Parses the time parameter `name` (`since` or `until`): a duration back
/// from now or an RFC 3339 time; the error names the parameter.
pub fn parse_time(name: &str, value: &str, now_ms: i64) -> Result<i64, String> {
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
            format!("invalid `{name}` value `{value}`: use a duration like 30s, 5m, 2h, 30d or an RFC 3339 time like 2026-01-31T12:00:00Z")
        })
}

/// `limit`: a whole number from 1 to [`MAX_LIST_LIMIT`].
fn parse_limit(value: &str) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
        .ok_or_else(|| {
            format!(
                "invalid `limit` value `{value}`: use a whole number from 1 to {MAX_LIST_LIMIT}"
            )
        })
}

fn parse_verdict(value: &str) -> Result<String, String> {
    if VERDICTS.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "invalid `verdict` value `{value}`: use one of {}",
            VERDICTS.join(", ")
        ))
    }
}

fn parse_group_by(value: &str) -> Result<GroupBy, String> {
    GroupBy::parse(value).ok_or_else(|| {
        let all: Vec<&str> = GroupBy::ALL.iter().map(|g| g.as_str()).collect();
        format!(
            "invalid `group_by` value `{value}`: use one of {}",
            all.join(", ")
        )
    })
}

fn parse_cursor(value: &str) -> Result<EventCursor, String> {
    EventCursor::decode(value).ok_or_else(|| {
        format!(
            "invalid `cursor` value `{value}`: pass the `next_cursor` of a previous page unchanged"
        )
    })
}

/// What a valid query asks for.
#[derive(Debug)]
struct Request {
    filter: EventFilter,
    group_by: Option<GroupBy>,
}

/// Checks every parameter; the error names the one at fault.
fn validate(q: EventQuery, now_ms: i64) -> Result<Request, String> {
    let since_ms = q
        .since
        .as_deref()
        .map(|v| parse_time("since", v, now_ms))
        .transpose()?;
    let until_ms = q
        .until
        .as_deref()
        .map(|v| parse_time("until", v, now_ms))
        .transpose()?;
    if let (Some(since), Some(until)) = (since_ms, until_ms)
        && until <= since
    {
        return Err(format!(
            "`until` ({}) must be later than `since` ({})",
            store::format_ms(until),
            store::format_ms(since)
        ));
    }
    let group_by = q.group_by.as_deref().map(parse_group_by).transpose()?;
    let limit = q.limit.as_deref().map(parse_limit).transpose()?;
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    if let Some(by) = group_by
        && after.is_some()
    {
        return Err(format!(
            "`cursor` cannot be combined with `group_by` (group_by={}): grouped answers come whole, not in pages",
            by.as_str()
        ));
    }
    let verdict = q.verdict.as_deref().map(parse_verdict).transpose()?;
    let default_limit = if group_by.is_some() {
        MAX_LIST_LIMIT
    } else {
        DEFAULT_LIMIT
    };
    Ok(Request {
        filter: EventFilter {
            since_ms,
            until_ms,
            limit: limit.unwrap_or(default_limit),
            gateway_id: q.gateway_id,
            team_id: q.team_id,
            verdict,
            model: q.model,
            after,
        },
        group_by,
    })
}

/// Lists request events, newest first, or their totals per gateway, team,
/// model or day (`group_by`).
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events (`{data, next_cursor}`), or with `group_by` totals per group (`{data, group_by, since, until}`)", body = EventsAnswer),
        (status = 400, response = BadRequest),
    ),
    security(("bearer" = [])),
)]
pub async fn list_events(
    caller: ApiCaller,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventsAnswer>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let q = EventQuery::from_pairs(pairs).map_err(ApiError::BadRequest)?;
    let req = validate(q, store::now_ms()).map_err(ApiError::BadRequest)?;
    Ok(Json(match req.group_by {
        None => {
            let page = caller.scoped.list_events_page(&req.filter).await?;
            EventsAnswer::Page(EventPageResponse {
                data: page.events.into_iter().map(Into::into).collect(),
                next_cursor: page.next.map(|c| c.encode()),
            })
        }
        Some(by) => {
            let groups = caller.scoped.group_events(by, &req.filter).await?;
            let f = &req.filter;
            EventsAnswer::Groups(GroupsResponse {
                data: groups
                    .into_iter()
                    .map(|g| GroupResponse::new(g, by))
                    .collect(),
                group_by: by.as_str().to_owned(),
                since: f
                    .since_ms
                    .map(|ms| store::format_ms(ms - ms.rem_euclid(HOUR_MS))),
                until: f.until_ms.map(|ms| {
                    let up = (HOUR_MS - ms.rem_euclid(HOUR_MS)) % HOUR_MS;
                    store::format_ms(ms.saturating_add(up))
                }),
            })
        }
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Result<EventQuery, String> {
        EventQuery::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn check(pairs: &[(&str, &str)]) -> Result<Request, String> {
        validate(query(pairs)?, 10_000_000_000)
    }

    #[test]
    fn every_invalid_parameter_is_named() {
        for (pairs, named, hint) in [
            (
                &[("verdict", "blocked")][..],
                "`verdict`",
                "allow, block, redact, warn, escalate, error",
            ),
            (&[("limit", "0")][..], "`limit`", "1 to 1000"),
            (&[("limit", "1001")][..], "`limit`", "1 to 1000"),
            (&[("limit", "ten")][..], "`limit`", "1 to 1000"),
            (&[("until", "yesterday")][..], "`until`", "RFC 3339"),
            (
                &[("since", "1h"), ("until", "2h")][..],
                "`until`",
                "`since`",
            ),
            (&[("cursor", "nope!")][..], "`cursor`", "next_cursor"),
            (
                &[("group_by", "week")][..],
                "`group_by`",
                "gateway, team, model, day",
            ),
            (
                &[("group_by", "team"), ("cursor", "MTI6YQ")][..],
                "`cursor`",
                "`group_by`",
            ),
            (
                &[("foo", "1"), ("bar", "2"), ("foo", "3")][..],
                "`foo`, `bar`",
                "group_by",
            ),
            (
                &[("model", "a"), ("model", "b")][..],
                "`model`",
                "more than once",
            ),
            (&[("team_id", "")][..], "`team_id`", "empty"),
        ] {
            let err = check(pairs).unwrap_err();
            assert!(
                err.contains(named) && err.contains(hint),
                "{pairs:?}: {err}"
            );
        }
    }

    #[test]
    fn valid_queries_become_filters() {
        let r = check(&[]).unwrap();
        assert_eq!((r.filter.limit, r.group_by), (DEFAULT_LIMIT, None));
        let r = check(&[("group_by", "day")]).unwrap();
        assert_eq!(
            (r.filter.limit, r.group_by),
            (MAX_LIST_LIMIT, Some(GroupBy::Day))
        );
        let cursor = EventCursor {
            created_at: 12,
            event_id: "a".to_owned(),
        };
        let r = check(&[
            ("since", "1970-01-01T00:00:01Z"),
            ("until", "5m"),
            ("limit", "1000"),
            ("cursor", &cursor.encode()),
            ("verdict", "escalate"),
            ("model", "gpt-4o"),
            ("gateway_id", "gw"),
            ("team_id", "t"),
        ])
        .unwrap();
        let f = r.filter;
        assert_eq!(
            (f.since_ms, f.until_ms),
            (Some(1_000), Some(10_000_000_000 - 300_000))
        );
        assert_eq!(f.after, Some(cursor));
        assert_eq!(f.verdict.as_deref(), Some("escalate"));
        assert_eq!(f.model.as_deref(), Some("gpt-4o"));
        assert_eq!(f.limit, 1000);
    }

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
