//! The recent-events table with its client-side filter (Dashboard and the
//! gateway drill-down).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One row of the events table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub id: String,
    pub time: String,
    pub gateway: String,
    pub gateway_id: String,
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

    /// Server side: an event row with team slugs resolved.
    #[cfg(feature = "ssr")]
    pub fn from_row(
        e: store::events::EventRow,
        teams: &std::collections::HashMap<String, String>,
    ) -> Self {
        use crate::format;
        EventView {
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
            gateway_id: e.gateway_id,
            model: e.model,
            verdict: e.verdict,
            latency_ms: e.latency_ms,
            streamed: e.streamed,
            demo: e.demo,
        }
    }
}

#[component]
pub fn EventsTable(events: Vec<EventView>) -> impl IntoView {
    let (filter, set_filter) = signal(String::new());
    let total = events.len();
    let haystacks: Vec<String> = events.iter().map(EventView::haystack).collect();
    let visible = move || {
        let needle = filter.read().trim().to_lowercase();
        haystacks.iter().filter(|h| h.contains(&needle)).count()
    };
    view! {
        <section class="panel events">
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
            <div class="table-scroll">
                <table id="recent-events">
                    <thead>
                        <tr>
                            <th scope="col">"Time (UTC)"</th>
                            <th scope="col">"Gateway"</th>
                            <th scope="col">"Team"</th>
                            <th scope="col">"Model"</th>
                            <th scope="col">"Verdict"</th>
                            <th scope="col" class="num">"Tokens in / out"</th>
                            <th scope="col" class="num">"Cost"</th>
                            <th scope="col" class="num">"Latency"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {events
                            .into_iter()
                            .map(|e| {
                                let haystack = e.haystack();
                                let shown = move || haystack.contains(&filter.read().trim().to_lowercase());
                                view! {
                                    <tr data-event-id=e.id.clone() style:display=move || if shown() { "" } else { "none" }>
                                        <td>{e.time.clone()}</td>
                                        <td><a href=format!("/gateways/{}", e.gateway_id)>{e.gateway.clone()}</a></td>
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
            </div>
            <Show when=move || total == 0>
                <p class="empty">
                    "No requests yet in this range. Send one through a gateway and it appears here."
                </p>
            </Show>
        </section>
    }
}
