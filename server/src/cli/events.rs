//! `kt events list` and `kt events tail`: recent request events through the
//! control-plane API (`GET /v1/events`, SPEC §3 and §6).
//!
//! Both reach `kt serve` at `--api-url` / `KT_API_URL` (default
//! `http://127.0.0.1:3000`) with `--api-token` / `KT_API_TOKEN` as bearer.
//! Flags are checked before any request (exit 2); an API that cannot be
//! reached or refuses the token is a runtime failure (exit 1).
//!
//! Output:
//! - `list`: a table, newest first, and a footer line with the count and the
//!   total cost; `--json`: the API's events as one pretty-printed JSON array,
//!   newest first.
//! - `tail`: the 20 most recent events, oldest first, then every new event as
//!   it arrives (polling every `--interval` seconds) until Ctrl-C / SIGTERM;
//!   `--json`: one compact JSON object per line (JSON Lines).

use std::collections::HashMap;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::Failure;
pub use super::api::{ApiArgs, DEFAULT_API_URL};
use super::api::{ApiFailure, Client, emit, resolve_team, to_json};

/// Events `kt events list` shows unless `--limit` says otherwise.
const DEFAULT_LIST_LIMIT: u32 = 100;
/// Most events one API call returns (`store::events::MAX_LIST_LIMIT`).
const MAX_LIMIT: u32 = 1000;
/// Events `kt events tail` shows before following.
const TAIL_BACKLOG: u32 = 20;
/// How far back each poll of `kt events tail` looks, before the newest event
/// seen: events reach the database from the gateways' spools a little after
/// they happened, so a poll asks again for this window and skips the ids it
/// has already printed.
const FOLLOW_WINDOW_MS: i64 = 120_000;
/// The verdicts an event may carry.
const VERDICTS: [&str; 6] = ["allow", "block", "redact", "warn", "escalate", "error"];
const SINCE_FORMS: &str =
    "a duration back from now (30s, 5m, 1h, 7d) or an RFC 3339 time (2026-01-31T12:00:00Z)";

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Recent events, newest first: a table with a count and total cost, or --json.
    List(ListArgs),
    /// The most recent events, then each new one as it arrives, until Ctrl-C.
    Tail(TailArgs),
}

/// Filters shared by `list` and `tail`.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only events since: a duration back from now (30s, 5m, 1h, 7d) or an RFC 3339 time.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_since_flag)]
    pub since: Option<String>,
    /// Only events of this gateway (its name or id).
    #[arg(long)]
    pub gateway: Option<String>,
    /// Only events of this team (its slug).
    #[arg(long)]
    pub team: Option<String>,
    /// Only events with this verdict.
    #[arg(long, value_parser = VERDICTS)]
    pub verdict: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filters: FilterArgs,
    /// How many events at most (the newest), 1 to 1000.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_LIST_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIMIT))
    )]
    pub limit: u32,
    /// Print the API's events as one JSON array (pretty-printed), newest first.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Seconds between two polls of the API (0.1 to 3600; fractions allowed).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,
    /// Print one JSON object per event and line (JSON Lines).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn run(cmd: EventsCommand) -> Result<(), Failure> {
    match cmd {
        EventsCommand::List(args) => list(args).await,
        EventsCommand::Tail(args) => {
            // Ctrl-C / SIGTERM ends the command at whatever it awaits: every
            // line is written whole, between two awaits.
            tokio::select! {
                result = tail(args) => result,
                () = super::shutdown_signal() => Ok(()),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Flags

/// `--since`: what `GET /v1/events` accepts (the API evaluates durations
/// against its own clock, so the value is sent as given).
fn parse_since_flag(value: &str) -> Result<String, String> {
    let value = value.trim();
    crate::http::events::parse_since(value, store::now_ms())
        .map(|_| value.to_owned())
        .map_err(|_| format!("`{value}` is not a valid time: use {SINCE_FORMS}"))
}

fn parse_interval(value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a number of seconds (e.g. 1 or 0.5)"))?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err(format!("{secs} s is out of range: use 0.1 to 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

// ---------------------------------------------------------------------------
// Query

/// The query for `GET /v1/events`, with `--team` resolved to a team id.
struct Query {
    gateway: Option<String>,
    team_id: Option<String>,
    verdict: Option<String>,
}

impl Query {
    fn params(&self, since: Option<&str>, limit: u32) -> Vec<(&'static str, String)> {
        let mut params = vec![("limit", limit.to_string())];
        if let Some(since) = since {
            params.push(("since", since.to_owned()));
        }
        if let Some(g) = &self.gateway {
            params.push(("gateway_id", g.clone()));
        }
        if let Some(t) = &self.team_id {
            params.push(("team_id", t.clone()));
        }
        if let Some(v) = &self.verdict {
            params.push(("verdict", v.clone()));
        }
        params
    }
}

/// Checks the flags and connects what `list` and `tail` share: the client,
/// the query, and the team slugs (fetched when `need_slugs` or `--team`).
async fn prepare(
    api: &ApiArgs,
    filters: &FilterArgs,
    need_slugs: bool,
) -> Result<(Client, Query, HashMap<String, String>), Failure> {
    let client = Client::new(api)?;
    let slugs = if need_slugs || filters.team.is_some() {
        client.team_slugs().await?
    } else {
        HashMap::new()
    };
    let team_id = filters
        .team
        .as_deref()
        .map(|slug| resolve_team("--team", slug.trim(), &slugs))
        .transpose()?;
    let query = Query {
        gateway: filters.gateway.clone(),
        team_id,
        verdict: filters.verdict.clone(),
    };
    Ok((client, query, slugs))
}

// ---------------------------------------------------------------------------
// Rendering

/// An event's RFC 3339 `created_at` in unix milliseconds.
fn created_ms(event: &Value) -> Option<i64> {
    let text = event["created_at"].as_str()?;
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `created_at` as `YYYY-MM-DD HH:MM:SS` in UTC (as given when unreadable).
fn utc_time(event: &Value) -> String {
    let raw = event["created_at"].as_str().unwrap_or_default();
    let formatted =
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
            .ok()
            .and_then(|t| {
                t.to_offset(time::UtcOffset::UTC)
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second]"
                    ))
                    .ok()
            });
    formatted.unwrap_or_else(|| raw.to_owned())
}

fn cost_micros(event: &Value) -> i64 {
    let usd = event["cost_usd"].as_f64().unwrap_or(0.0);
    // Events carry whole micro-dollars: rounding gives them back exactly.
    (usd * 1_000_000.0).round() as i64
}

fn usd(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

fn text_or_dash(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "-".to_owned(),
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

/// Table columns: title, alignment, and the width `tail` pads to.
const COLUMNS: [(&str, Align, usize); 11] = [
    ("TIME (UTC)", Align::Left, 19),
    ("GATEWAY", Align::Left, 14),
    ("TEAM", Align::Left, 10),
    ("MODEL", Align::Left, 18),
    ("VERDICT", Align::Left, 8),
    ("POLICY / REASON", Align::Left, 28),
    ("TOKENS IN", Align::Right, 9),
    ("TOKENS OUT", Align::Right, 10),
    ("COST USD", Align::Right, 10),
    ("LATENCY MS", Align::Right, 10),
    ("STATUS", Align::Right, 6),
];

/// One table row for `event`; teams show as their slug when known.
fn row(event: &Value, slugs: &HashMap<String, String>) -> [String; 11] {
    let team = match event["team_id"].as_str() {
        Some(id) => slugs.get(id).cloned().unwrap_or_else(|| id.to_owned()),
        None => "-".to_owned(),
    };
    let policy = event["policy"].as_str().filter(|s| !s.is_empty());
    let reason = event["reason"].as_str().filter(|s| !s.is_empty());
    let policy_reason = match (policy, reason) {
        (Some(p), Some(r)) => format!("{p}: {r}"),
        (Some(x), None) | (None, Some(x)) => x.to_owned(),
        (None, None) => "-".to_owned(),
    };
    [
        utc_time(event),
        text_or_dash(&event["gateway_name"]),
        team,
        text_or_dash(&event["model"]),
        text_or_dash(&event["verdict"]),
        policy_reason,
        text_or_dash(&event["input_tokens"]),
        text_or_dash(&event["output_tokens"]),
        usd(cost_micros(event)),
        text_or_dash(&event["latency_ms"]),
        text_or_dash(&event["upstream_status"]),
    ]
}

/// Cells joined with two spaces, each padded to `widths` (the last one is
/// not padded on the right).
fn format_line(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (cell, (_, align, _))) in cells.iter().zip(COLUMNS).enumerate() {
        let width = widths.get(i).copied().unwrap_or(0);
        let pad = width.saturating_sub(cell.chars().count());
        if i > 0 {
            line.push_str("  ");
        }
        match align {
            Align::Left if i + 1 == cells.len() => line.push_str(cell),
            Align::Left => {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
            Align::Right => {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            }
        }
    }
    line
}

fn header_cells() -> Vec<String> {
    COLUMNS.iter().map(|(t, _, _)| (*t).to_owned()).collect()
}

/// The table of `events` (in the given order), columns as wide as their
/// widest cell.
fn table(events: &[Value], slugs: &HashMap<String, String>) -> String {
    let header = header_cells();
    let rows: Vec<[String; 11]> = events.iter().map(|e| row(e, slugs)).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format_line(&header, &widths);
    out.push('\n');
    for r in &rows {
        out.push_str(&format_line(r, &widths));
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------
// list

async fn list(args: ListArgs) -> Result<(), Failure> {
    let (client, query, slugs) = prepare(&args.api, &args.filters, !args.json).await?;
    let events = client
        .list(
            "/v1/events",
            &query.params(args.filters.since.as_deref(), args.limit),
        )
        .await?;
    let mut text = if args.json {
        to_json(&Value::Array(events.clone()), true)?
    } else {
        let total: i64 = events.iter().map(cost_micros).sum();
        let mut out = if events.is_empty() {
            String::new()
        } else {
            table(&events, &slugs)
        };
        let noun = if events.len() == 1 { "event" } else { "events" };
        out.push_str(&format!(
            "{} {noun}, total cost ${}",
            events.len(),
            usd(total)
        ));
        if events.len() >= args.limit as usize {
            out.push_str(&format!(
                " (the newest {}: more may match; raise --limit, up to {MAX_LIMIT}, or narrow --since)",
                args.limit
            ));
        }
        out
    };
    text.push('\n');
    emit(&text)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// tail

/// Prints `event` as a JSON line or a padded table line.
fn print_event(
    event: &Value,
    json: bool,
    slugs: &HashMap<String, String>,
) -> Result<bool, Failure> {
    let mut line = if json {
        to_json(event, false)?
    } else {
        let widths: Vec<usize> = COLUMNS.iter().map(|(_, _, w)| *w).collect();
        format_line(&row(event, slugs), &widths)
    };
    line.push('\n');
    emit(&line)
}

/// Sorts oldest first (by time, then id).
fn oldest_first(events: &mut [Value]) {
    events.sort_by(|a, b| {
        created_ms(a)
            .cmp(&created_ms(b))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
}

/// Ids already printed (or present when `tail` started), with their time.
#[derive(Default)]
struct Seen {
    ids: HashMap<String, i64>,
    newest_ms: Option<i64>,
}

impl Seen {
    /// Records `event`; `true` when its id is new.
    fn insert(&mut self, event: &Value) -> bool {
        let Some(id) = event["id"].as_str() else {
            return true;
        };
        let ms = created_ms(event).unwrap_or(0);
        self.newest_ms = Some(self.newest_ms.map_or(ms, |n| n.max(ms)));
        self.ids.insert(id.to_owned(), ms).is_none()
    }

    /// Forgets ids that no poll can return any more.
    fn prune(&mut self) {
        if let Some(newest) = self.newest_ms {
            let horizon = newest - 2 * FOLLOW_WINDOW_MS;
            self.ids.retain(|_, ms| *ms >= horizon);
        }
    }

    /// The `since` of the next poll: the window before the newest event
    /// seen (times from the events themselves, so the local clock does not
    /// matter), or the window back from the API's "now".
    fn since(&self) -> String {
        self.newest_ms
            .and_then(|ms| {
                time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(ms - FOLLOW_WINDOW_MS) * 1_000_000,
                )
                .ok()?
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
            })
            .unwrap_or_else(|| format!("{}s", FOLLOW_WINDOW_MS / 1000))
    }
}

async fn tail(args: TailArgs) -> Result<(), Failure> {
    let (client, query, slugs) = prepare(&args.api, &args.filters, !args.json).await?;
    let mut seen = Seen::default();

    // What was there already: the newest events (printed), and every event
    // of the follow window (not printed, so never taken for a new one).
    let mut backlog = client
        .list(
            "/v1/events",
            &query.params(args.filters.since.as_deref(), TAIL_BACKLOG),
        )
        .await?;
    let present = client
        .list("/v1/events", &query.params(Some(&seen.since()), MAX_LIMIT))
        .await?;
    if !args.json && !emit(&(format_line(&header_cells(), &widths()) + "\n"))? {
        return Ok(());
    }
    oldest_first(&mut backlog);
    for event in &backlog {
        seen.insert(event);
        if !print_event(event, args.json, &slugs)? {
            return Ok(());
        }
    }
    for event in &present {
        seen.insert(event);
    }

    let mut outage = false;
    let mut warned_full = false;
    loop {
        tokio::time::sleep(args.interval).await;
        let polled = client
            .list("/v1/events", &query.params(Some(&seen.since()), MAX_LIMIT))
            .await;
        let events = match polled {
            Ok(events) => events,
            Err(ApiFailure::Unavailable(message)) => {
                if !outage {
                    eprintln!(
                        "warning: {message}\nwarning: still following: retrying every {:?}",
                        args.interval
                    );
                }
                outage = true;
                continue;
            }
            Err(err @ ApiFailure::Refused(_)) => {
                return Err(Failure::Runtime(anyhow::Error::msg(
                    err.message().to_owned(),
                )));
            }
        };
        if std::mem::take(&mut outage) {
            eprintln!("the kt API at {} answers again", client.base);
        }
        if events.len() >= MAX_LIMIT as usize && !warned_full {
            warned_full = true;
            eprintln!(
                "warning: more than {MAX_LIMIT} events within {} s: events that reach the API late may be missed; narrow the filters (--gateway, --team, --verdict)",
                FOLLOW_WINDOW_MS / 1000
            );
        }
        let mut new: Vec<Value> = events.into_iter().filter(|e| seen.insert(e)).collect();
        oldest_first(&mut new);
        for event in &new {
            if !print_event(event, args.json, &slugs)? {
                return Ok(());
            }
        }
        seen.prune();
    }
}

fn widths() -> Vec<usize> {
    COLUMNS.iter().map(|(_, _, w)| *w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_are_checked_locally() {
        assert!(parse_since_flag("5m").is_ok());
        assert!(parse_since_flag("7d").is_ok());
        assert!(parse_since_flag("2026-01-31T12:00:00Z").is_ok());
        let err = parse_since_flag("yesterday").unwrap_err();
        assert!(err.contains("30s") && err.contains("RFC 3339"), "{err}");
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn rows_show_utc_time_slug_and_micro_dollars() {
        let slugs = HashMap::from([("t1".to_owned(), "eng".to_owned())]);
        let event = json!({
            "id": "e1", "created_at": "2026-01-31T12:34:56.789+01:00",
            "gateway_name": "gw", "team_id": "t1", "model": "gpt-4o",
            "verdict": "block", "policy": "pii", "reason": "pii_detected:email",
            "input_tokens": 12, "output_tokens": 0, "cost_usd": 0.001234,
            "latency_ms": 7, "upstream_status": null
        });
        let r = row(&event, &slugs);
        assert_eq!(r[0], "2026-01-31 11:34:56");
        assert_eq!(r[2], "eng");
        assert_eq!(r[5], "pii: pii_detected:email");
        assert_eq!(r[8], "0.001234");
        assert_eq!(r[10], "-");
        assert_eq!(usd(-1_500_000), "-1.500000");
    }

    #[test]
    fn seen_ids_are_printed_once() {
        let mut seen = Seen::default();
        let e = json!({"id": "a", "created_at": "2026-01-31T12:00:00Z"});
        assert!(seen.insert(&e));
        assert!(!seen.insert(&e));
        assert_eq!(seen.since(), "2026-01-31T11:58:00Z");
    }
}
