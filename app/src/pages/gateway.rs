//! A gateway's drill-down: its traffic, verdicts, latency and spend, the
//! policies that fired most, and its recent events.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::access::Me;
use crate::components::events::{EventView, EventsTable};
use crate::components::layout::{Frame, load_page};
use crate::pages::dashboard::{GatewayView, RangePicker, Summary, SummaryView};

/// How many policies the "top policies" table lists.
#[cfg(feature = "ssr")]
const TOP_POLICIES: i64 = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRow {
    pub policy: String,
    pub verdict: String,
    pub requests: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayData {
    pub me: Me,
    pub gateway: GatewayView,
    pub summary: Summary,
    pub policies: Vec<PolicyRow>,
    pub events: Vec<EventView>,
}

#[server(prefix = "/api", endpoint = "gateway")]
pub async fn load_gateway(id: String, range: String) -> Result<GatewayData, ServerFnError> {
    use crate::pages::dashboard::load;
    let caller = crate::auth::require(crate::access::Role::sees_dashboard).await?;
    let teams = load::team_slugs(&caller.scoped).await?;
    // The fleet as the caller may see it: another team's gateway is "not found".
    let Some(gateway) = load::fleet(&caller.scoped, &teams)
        .await?
        .into_iter()
        .find(|g| g.id == id)
    else {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
        return Err(ServerFnError::new(
            "No such gateway (it may serve another team).",
        ));
    };
    let (_, filter) = load::filter(&range, Some(&id), store::now_ms());
    let (summary, policies, events) = tokio::try_join!(
        load::summary(&caller.scoped, &range, Some(&id)),
        async {
            caller
                .scoped
                .top_policies(&filter, TOP_POLICIES)
                .await
                .map_err(crate::auth::internal)
        },
        load::recent_events(&caller.scoped, &teams, Some(&id)),
    )?;
    Ok(GatewayData {
        me: caller.me,
        gateway,
        summary,
        policies: policies
            .into_iter()
            .map(|p| PolicyRow {
                policy: p.policy,
                verdict: p.verdict,
                requests: p.requests,
            })
            .collect(),
        events,
    })
}

#[component]
pub fn GatewayPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let args = move || {
        (
            params.read().get("id").unwrap_or_default(),
            query.read().get("range").unwrap_or_default(),
        )
    };
    let data = Resource::new(args, |(id, range)| load_gateway(id, range));
    view! {
        {load_page(data, |d: GatewayData, hydrated| {
            let g = d.gateway;
            let base = format!("/gateways/{}", g.id);
            view! {
                <Title text=format!("Gateway {}", g.name) />
                <Frame
                    me=d.me
                    crumbs=vec![("/gateways", "Gateways".to_owned()), ("", format!("Gateway {}", g.name))]
                    hydrated
                >
                    <div class="page-head">
                        <h1>"Gateway " {g.name.clone()}</h1>
                        <RangePicker base current=d.summary.range.clone() />
                    </div>
                    <dl class="facts">
                        <div><dt>"Status"</dt><dd><span class=format!("health health-{}", g.status)>{g.status.clone()}</span></dd></div>
                        <div><dt>"Teams"</dt><dd>{g.teams}</dd></div>
                        <div><dt>"Address"</dt><dd><code>{g.address}</code></dd></div>
                        <div><dt>"Version"</dt><dd>{g.version}</dd></div>
                        <div><dt>"Config"</dt><dd><code>{g.config_hash}</code></dd></div>
                        <div><dt>"Last heartbeat"</dt><dd>{g.last_seen} " UTC"</dd></div>
                    </dl>
                    <SummaryView summary=d.summary />
                    <section class="panel" aria-labelledby="policies-title">
                        <h2 id="policies-title">"Policies that fired"</h2>
                        {if d.policies.is_empty() {
                            view! { <p class="empty">"No policy fired in this range."</p> }.into_any()
                        } else {
                            view! {
                                <table id="top-policies">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Policy"</th>
                                            <th scope="col">"Verdict"</th>
                                            <th scope="col" class="num">"Requests"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {d.policies
                                            .into_iter()
                                            .map(|p| view! {
                                                <tr>
                                                    <td>{p.policy}</td>
                                                    <td><span class=format!("verdict verdict-{}", p.verdict)>{p.verdict.clone()}</span></td>
                                                    <td class="num">{crate::format::count(p.requests)}</td>
                                                </tr>
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            }
                                .into_any()
                        }}
                    </section>
                    <EventsTable events=d.events />
                </Frame>
            }
        })}
    }
}
