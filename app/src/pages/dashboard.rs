//! The Dashboard: requests, blocked requests and spend over a range, requests
//! per hour as a chart, and the most recent events across all gateways the
//! signed-in user may see.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::components::chart::{Chart, ChartData};
use crate::components::layout::{Header, hydrated_signal};
use crate::components::stat::Stat;
use crate::format;

/// Ranges the Dashboard offers: `(query value, label, hours)`.
pub const RANGES: &[(&str, &str, i64)] = &[
    ("24h", "Last 24 hours", 24),
    ("7d", "Last 7 days", 24 * 7),
    ("30d", "Last 30 days", 24 * 30),
];

/// Recent events shown in the table.
pub const RECENT_EVENTS: i64 = 50;

/// One row of the events table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub id: String,
    pub time: String,
    pub gateway: String,
    pub team: String,
    pub model: String,
    pub verdict: String,
    pub reason: String,
    pub tokens: String,
    pub cost: String,
    pub latency_ms: i64,
    pub streamed: bool,
    pub demo: bool,
}

impl EventView {
    /// The text the client-side filter matches against.
    fn haystack(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.gateway, self.team, self.model, self.verdict, self.reason, self.time
        )
        .to_lowercase()
    }
}

/// Everything the Dashboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub email: String,
    pub range: String,
    pub requests: i64,
    pub blocked: i64,
    pub spend_micros: i64,
    pub tokens: i64,
    pub chart: ChartData,
    pub events: Vec<EventView>,
}

#[server(prefix = "/api", endpoint = "dashboard")]
pub async fn load_dashboard(range: String) -> Result<DashboardData, ServerFnError> {
    use std::collections::HashMap;

    let (user, scoped) = crate::auth::require_user().await?;
    let internal = crate::auth::internal;
    let (key, _, hours) = RANGES
        .iter()
        .find(|(k, _, _)| *k == range)
        .copied()
        .unwrap_or(RANGES[0]);
    let now = store::now_ms();
    let since = now - hours * store::events::HOUR_MS;
    let totals = scoped.totals(since).await.map_err(internal)?;
    let hourly = scoped.hourly(since).await.map_err(internal)?;
    let events = scoped
        .list_events(&store::events::EventFilter {
            since_ms: Some(since),
            limit: RECENT_EVENTS,
            ..Default::default()
        })
        .await
        .map_err(internal)?;
    let teams: HashMap<String, String> = scoped
        .list_teams()
        .await
        .map_err(internal)?
        .into_iter()
        .map(|t| (t.team_id, t.slug))
        .collect();
    let events = events
        .into_iter()
        .map(|e| EventView {
            time: format::timestamp(&store::format_ms(e.created_at)),
            team: e
                .team_id
                .as_ref()
                .and_then(|t| teams.get(t).cloned())
                .unwrap_or_else(|| "—".to_owned()),
            tokens: format!(
                "{} / {}",
                format::count(e.input_tokens),
                format::count(e.output_tokens)
            ),
            cost: format::usd_precise(e.cost_micros),
            reason: e.reason.unwrap_or_default(),
            id: e.event_id,
            gateway: e.gateway_name,
            model: e.model,
            verdict: e.verdict,
            latency_ms: e.latency_ms,
            streamed: e.streamed,
            demo: e.demo,
        })
        .collect();
    Ok(DashboardData {
        email: user.email,
        range: key.to_owned(),
        requests: totals.requests,
        blocked: totals.blocked,
        spend_micros: totals.cost_micros,
        tokens: totals.input_tokens + totals.output_tokens,
        chart: crate::charts::requests_over_time(&hourly, since, now),
        events,
    })
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let query = use_query_map();
    let range = move || {
        query
            .read()
            .get("range")
            .unwrap_or_else(|| RANGES[0].0.to_owned())
    };
    let data = Resource::new(range, load_dashboard);
    let hydrated = hydrated_signal();
    view! {
        <Title text="Dashboard" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <Dashboard data=d hydrated /> }.into_any(),
                    Err(e) => view! {
                        <main class="narrow" data-hydrated=move || hydrated.get().to_string()>
                            <p role="alert" class="form-error">{e.to_string()}</p>
                            <p><a href="/login">"Sign in"</a></p>
                        </main>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Dashboard(data: DashboardData, hydrated: ReadSignal<bool>) -> impl IntoView {
    let (filter, set_filter) = signal(String::new());
    let total = data.events.len();
    let haystacks: Vec<String> = data.events.iter().map(EventView::haystack).collect();
    let visible = move || {
        let needle = filter.read().trim().to_lowercase();
        haystacks.iter().filter(|h| h.contains(&needle)).count()
    };
    let any_demo = data.events.iter().any(|e| e.demo);
    let range = data.range.clone();
    view! {
        <Header email=data.email.clone() />
        <main class="page" data-hydrated=move || hydrated.get().to_string()>
            <div class="page-head">
                <h1>"Dashboard"</h1>
                <nav class="ranges" aria-label="Time range">
                    {RANGES
                        .iter()
                        .map(|(key, label, _)| {
                            let current = *key == range;
                            view! {
                                <a
                                    href=format!("/?range={key}")
                                    class:current=current
                                    aria-current=current.then_some("page")
                                >
                                    {*label}
                                </a>
                            }
                        })
                        .collect_view()}
                </nav>
            </div>
            <Show when=move || any_demo>
                <p class="demo-banner">
                    "Demo traffic: requests marked "<span class="badge demo">"demo"</span>
                    " were answered by kt's built-in demo provider, not by a vendor."
                </p>
            </Show>
            <section class="stats">
                <Stat label="Requests" value=format::count(data.requests) testid="stat-requests" />
                <Stat label="Blocked" value=format::count(data.blocked) testid="stat-blocked" />
                <Stat label="Spend" value=format::usd(data.spend_micros) testid="stat-spend" />
                <Stat label="Tokens" value=format::count(data.tokens) testid="stat-tokens" />
            </section>
            <Chart name="requests" title="Requests over time" data=data.chart />
            <section class="events">
                <div class="events-head">
                    <h2>"Recent events"</h2>
                    <input
                        id="event-filter"
                        type="search"
                        placeholder="Filter by model, team, gateway, verdict…"
                        aria-label="Filter events"
                        prop:value=filter
                        on:input=move |ev| set_filter.set(event_target_value(&ev))
                    />
                    <span class="muted" data-testid="event-count">
                        {move || format!("{} of {total} events", visible())}
                    </span>
                </div>
                <table id="recent-events">
                    <thead>
                        <tr>
                            <th>"Time (UTC)"</th>
                            <th>"Gateway"</th>
                            <th>"Team"</th>
                            <th>"Model"</th>
                            <th>"Verdict"</th>
                            <th class="num">"Tokens in / out"</th>
                            <th class="num">"Cost"</th>
                            <th class="num">"Latency"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {data
                            .events
                            .into_iter()
                            .map(|e| {
                                let haystack = e.haystack();
                                let shown = move || haystack.contains(&filter.read().trim().to_lowercase());
                                view! {
                                    <tr data-event-id=e.id.clone() style:display=move || if shown() { "" } else { "none" }>
                                        <td>{e.time.clone()}</td>
                                        <td>{e.gateway.clone()}</td>
                                        <td>{e.team.clone()}</td>
                                        <td>
                                            <span class="model">{e.model.clone()}</span>
                                            {e.demo.then(|| view! { <span class="badge demo">"demo"</span> })}
                                            {e.streamed.then(|| view! { <span class="badge">"stream"</span> })}
                                        </td>
                                        <td>
                                            <span class=format!("verdict verdict-{}", e.verdict) title=e.reason.clone()>
                                                {e.verdict.clone()}
                                            </span>
                                        </td>
                                        <td class="num">{e.tokens.clone()}</td>
                                        <td class="num">{e.cost.clone()}</td>
                                        <td class="num">{format!("{} ms", e.latency_ms)}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
                <Show when=move || total == 0>
                    <p class="empty">
                        "No requests yet in this range. Send one through a gateway and it appears here."
                    </p>
                </Show>
            </section>
        </main>
    }
}
