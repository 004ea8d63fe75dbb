//! The Dashboard: requests, blocked share, spend and latency over a range,
//! traffic by verdict and spend over time, the gateway fleet with health,
//! and the most recent events, across every gateway the user may see.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::access::Me;
use crate::components::chart::{Chart, ChartData};
use crate::components::events::{EventView, EventsTable};
use crate::components::layout::{Frame, load_page};
use crate::components::stat::Stat;

/// Ranges the Dashboard offers: `(query value, label, hours)`. Ranges are
/// read from hourly rollups, so they start on a whole hour.
pub const RANGES: &[(&str, &str, i64)] = &[
    ("1h", "Last hour", 1),
    ("24h", "Last 24 hours", 24),
    ("7d", "Last 7 days", 24 * 7),
    ("30d", "Last 30 days", 24 * 30),
];

/// Recent events shown in the table.
pub const RECENT_EVENTS: i64 = 50;

/// The headline figures and charts of a range (Dashboard and gateway page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub range: String,
    /// The range's first hour, e.g. "2026-11-27 14:00 UTC".
    pub since: String,
    pub requests: i64,
    pub blocked: i64,
    pub spend_micros: i64,
    pub tokens: i64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub traffic: ChartData,
    pub spend: ChartData,
}

/// A gateway of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayView {
    pub id: String,
    pub name: String,
    pub teams: String,
    pub address: String,
    pub version: String,
    pub status: String,
    pub last_seen: String,
    pub config_hash: String,
    /// `in sync`, `drift` (runs another config than its environment's
    /// current version) or empty (no desired version).
    pub drift: String,
    pub environment: String,
    pub demo: bool,
    /// How long it has run (since its last start).
    pub uptime: String,
    /// The first 12 characters of its environment's current version's hash.
    pub desired_hash: String,
}

/// Everything the Dashboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub me: Me,
    pub summary: Summary,
    pub fleet: Vec<GatewayView>,
    pub events: Vec<EventView>,
}

#[cfg(feature = "ssr")]
pub mod load {
    //! Server-side reading shared by the Dashboard and the gateway page.

    use std::collections::HashMap;

    use leptos::prelude::ServerFnError;
    use store::Scoped;
    use store::rollups::{RollupFilter, quantile};

    use super::*;
    use crate::auth::internal;
    use crate::format;

    /// The range for a query value (unknown values: the default).
    pub fn range(key: &str) -> (&'static str, i64) {
        let (key, _, hours) = RANGES
            .iter()
            .find(|(k, _, _)| *k == key)
            .copied()
            .unwrap_or(RANGES[1]);
        (key, hours)
    }

    /// The rollup slice of a range: hourly up to two days (starting at the
    /// top of the hour `hours` ago), daily beyond (starting at midnight
    /// UTC); the page says where it starts.
    pub fn filter(key: &str, gateway_id: Option<&str>, now: i64) -> (&'static str, RollupFilter) {
        let (key, hours) = range(key);
        let daily = hours > 48;
        let step = if daily {
            store::rollups::DAY_MS
        } else {
            store::events::HOUR_MS
        };
        let since = now - hours * store::events::HOUR_MS;
        let filter = RollupFilter {
            since_ms: since - since.rem_euclid(step),
            gateway_id: gateway_id.map(str::to_owned),
            team_id: None,
            daily,
        };
        (key, filter)
    }

    pub async fn summary(
        scoped: &Scoped,
        key: &str,
        gateway_id: Option<&str>,
    ) -> Result<Summary, ServerFnError> {
        let now = store::now_ms();
        let (key, filter) = filter(key, gateway_id, now);
        let since = filter.since_ms;
        let (rows, hist) = tokio::try_join!(
            scoped.verdict_hours(&filter),
            scoped.latency_histogram(&filter)
        )
        .map_err(internal)?;
        let requests = rows.iter().map(|r| r.requests).sum();
        let blocked = rows
            .iter()
            .filter(|r| r.verdict == "block" || r.verdict == "escalate")
            .map(|r| r.requests)
            .sum();
        Ok(Summary {
            range: key.to_owned(),
            since: format!(
                "{} UTC",
                format::timestamp(&store::format_ms(since))
                    .get(..16)
                    .unwrap_or_default()
            ),
            requests,
            blocked,
            spend_micros: rows.iter().map(|r| r.cost_micros).sum(),
            tokens: rows.iter().map(|r| r.tokens).sum(),
            p50_ms: quantile(&hist, 0.5),
            p95_ms: quantile(&hist, 0.95),
            traffic: crate::charts::traffic(&rows, since, now),
            spend: crate::charts::spend(&rows, since, now),
        })
    }

    /// Team id → slug, for the teams the caller may see.
    pub async fn team_slugs(scoped: &Scoped) -> Result<HashMap<String, String>, ServerFnError> {
        Ok(scoped
            .list_teams()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|t| (t.team_id, t.slug))
            .collect())
    }

    pub async fn fleet(
        scoped: &Scoped,
        teams: &HashMap<String, String>,
    ) -> Result<Vec<GatewayView>, ServerFnError> {
        let now = store::now_ms();
        let desired = scoped.desired_config_hashes().await.map_err(internal)?;
        Ok(scoped
            .list_gateways()
            .await
            .map_err(internal)?
            .into_iter()
            .map(|g| GatewayView {
                uptime: format::duration_ms(now - g.started_at),
                desired_hash: g
                    .desired_hash(&desired)
                    .map(|h| h.chars().take(12).collect())
                    .unwrap_or_default(),
                drift: match g.desired_hash(&desired) {
                    Some(want) if want == g.config_hash => "in sync".to_owned(),
                    Some(_) => "drift".to_owned(),
                    None => String::new(),
                },
                environment: g.environment.clone().unwrap_or_default(),
                status: g.status(now).to_owned(),
                last_seen: format::timestamp(&store::format_ms(g.last_seen_at)),
                teams: if g.teams.is_empty() {
                    "every team".to_owned()
                } else {
                    g.teams
                        .split(',')
                        .map(|t| teams.get(t).map_or(t, String::as_str))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                id: g.gateway_id,
                name: g.name,
                address: g.address,
                version: g.version,
                config_hash: g.config_hash.chars().take(12).collect(),
                demo: g.demo,
            })
            .collect())
    }

    pub async fn recent_events(
        scoped: &Scoped,
        teams: &HashMap<String, String>,
        gateway_id: Option<&str>,
    ) -> Result<Vec<EventView>, ServerFnError> {
        Ok(scoped
            .list_events(&store::events::EventFilter {
                gateway_id: gateway_id.map(str::to_owned),
                limit: RECENT_EVENTS,
                ..Default::default()
            })
            .await
            .map_err(internal)?
            .into_iter()
            .map(|e| EventView::from_row(e, teams))
            .collect())
    }
}

#[server(prefix = "/api", endpoint = "dashboard")]
pub async fn load_dashboard(range: String) -> Result<Option<DashboardData>, ServerFnError> {
    let caller = crate::auth::require_user().await?;
    if !caller.me.role.sees_dashboard() {
        // A viewer's home is the Cost Center: a redirect on a full page
        // load; after a client-side sign-in the page redirects (`None`).
        leptos_axum::redirect("/cost");
        return Ok(None);
    }
    let teams = load::team_slugs(&caller.scoped).await?;
    let (summary, fleet, events) = tokio::try_join!(
        load::summary(&caller.scoped, &range, None),
        load::fleet(&caller.scoped, &teams),
        load::recent_events(&caller.scoped, &teams, None),
    )?;
    Ok(Some(DashboardData {
        me: caller.me,
        summary,
        fleet,
        events,
    }))
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let range = move || query.read().get("range").unwrap_or_default();
    let data = Resource::new(range, load_dashboard);
    view! {
        <Title text="Dashboard" />
        {load_page(data, |d: Option<DashboardData>, hydrated| {
            let Some(d) = d else {
                return view! { <leptos_router::components::Redirect path="/cost" /> }.into_any();
            };
            let any_demo = d.events.iter().any(|e| e.demo) || d.fleet.iter().any(|g| g.demo);
            view! {
                <Frame me=d.me crumbs=vec![("/", "Dashboard".to_owned())] hydrated>
                    <div class="page-head">
                        <h1>"Dashboard"</h1>
                        <RangePicker base="/".to_owned() current=d.summary.range.clone() />
                    </div>
                    <Show when=move || any_demo>
                        <p class="demo-banner">
                            "Demo traffic: requests marked "<span class="badge demo">"demo"</span>
                            " were answered by kt's built-in demo provider, not by a vendor."
                        </p>
                    </Show>
                    <SummaryView summary=d.summary />
                    <FleetTable fleet=d.fleet />
                    <EventsTable events=d.events />
                </Frame>
            }
            .into_any()
        })}
    }
}

/// The range links (plain links: they work without JavaScript).
#[component]
pub fn RangePicker(base: String, current: String) -> impl IntoView {
    view! {
        <nav class="ranges" aria-label="Time range">
            {RANGES
                .iter()
                .map(|(key, label, _)| {
                    let is_current = *key == current;
                    view! {
                        <a
                            href=format!("{base}?range={key}")
                            class:current=is_current
                            aria-current=is_current.then_some("page")
                        >
                            {*label}
                        </a>
                    }
                })
                .collect_view()}
        </nav>
    }
}

/// Headline numbers and the traffic and spend charts.
#[component]
pub fn SummaryView(summary: Summary) -> impl IntoView {
    let share = if summary.requests > 0 {
        format!(
            "{:.1}% of requests",
            summary.blocked as f64 * 100.0 / summary.requests as f64
        )
    } else {
        "no requests".to_owned()
    };
    let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.0} ms"));
    view! {
        <p class="muted range-note">"Since " {summary.since.clone()}</p>
        <section class="stats">
            <Stat label="Requests" value=crate::format::count(summary.requests) testid="stat-requests" />
            <Stat label="Blocked" value=crate::format::count(summary.blocked) testid="stat-blocked" note=share />
            <Stat label="Spend" value=crate::format::usd(summary.spend_micros) testid="stat-spend" />
            <Stat label="Tokens" value=crate::format::count(summary.tokens) testid="stat-tokens" />
            <Stat label="Latency p50" value=ms(summary.p50_ms) testid="stat-p50" />
            <Stat label="Latency p95" value=ms(summary.p95_ms) testid="stat-p95" />
        </section>
        <div class="charts">
            <Chart name="requests" title="Requests by verdict" data=summary.traffic />
            <Chart name="spend" title="Spend" data=summary.spend />
        </div>
    }
}

#[component]
fn FleetTable(fleet: Vec<GatewayView>) -> impl IntoView {
    let empty = fleet.is_empty();
    view! {
        <section class="panel" aria-labelledby="fleet-title">
            <h2 id="fleet-title">"Gateways"</h2>
            {if empty {
                view! {
                    <p class="empty">
                        "No gateway has registered yet. Start one with "<code>"kt gateway run"</code>"."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table id="fleet">
                            <thead>
                                <tr>
                                    <th scope="col">"Gateway"</th>
                                    <th scope="col">"Status"</th>
                                    <th scope="col">"Teams"</th>
                                    <th scope="col">"Address"</th>
                                    <th scope="col">"Version"</th>
                                    <th scope="col">"Environment"</th>
                                    <th scope="col">"Config"</th>
                                    <th scope="col">"Last heartbeat (UTC)"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {fleet
                                    .into_iter()
                                    .map(|g| {
                                        view! {
                                            <tr data-gateway=g.name.clone()>
                                                <td>
                                                    <a href=format!("/gateways/{}", g.id)>{g.name.clone()}</a>
                                                    {g.demo.then(|| view! { <span class="badge demo">"demo"</span> })}
                                                </td>
                                                <td><span class=format!("health health-{}", g.status)>{g.status.clone()}</span></td>
                                                <td>{g.teams}</td>
                                                <td><code>{g.address}</code></td>
                                                <td>{g.version}</td>
                                                <td>{g.environment}</td>
                                                <td>
                                                    <code>{g.config_hash}</code>
                                                    {(!g.drift.is_empty()).then(|| view! {
                                                        <span class=format!("badge {}", if g.drift == "drift" { "drift" } else { "" })>{g.drift.clone()}</span>
                                                    })}
                                                </td>
                                                <td>{g.last_seen}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                }
                    .into_any()
            }}
        </section>
    }
}
