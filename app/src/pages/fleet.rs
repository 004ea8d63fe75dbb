//! Fleet (`/gateways`): every gateway the caller may see, with its team,
//! environment, runner, address, version, status from heartbeats, uptime,
//! running vs desired configuration (drift) and its traffic over 24 hours;
//! filters by status, environment and team. A row links to the gateway's
//! page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};
use crate::pages::dashboard::GatewayView;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRow {
    pub gateway: GatewayView,
    /// `local (kt serve)` for gateways the local runner supervises, `bundled
    /// (kt demo)` for the demo's, `external` otherwise (started by an
    /// operator, a container platform, …).
    pub runner: String,
    pub requests_24h: i64,
    pub blocked_24h: i64,
    pub spend_24h: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FleetQuery {
    pub status: String,
    pub environment: String,
    pub team: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub rows: Vec<FleetRow>,
    pub total: usize,
    pub counts: Vec<(String, usize)>,
    pub environments: Vec<String>,
    pub teams: Vec<String>,
    pub query: FleetQuery,
}

#[server(prefix = "/api", endpoint = "fleet")]
pub async fn load_fleet(q: FleetQuery) -> Result<FleetData, ServerFnError> {
    use crate::pages::dashboard::load;
    let caller = crate::auth::require(crate::access::Role::sees_dashboard).await?;
    let flash = crate::auth::take_flash().await?;
    let st = use_context::<crate::state::ConsoleState>()
        .ok_or_else(|| ServerFnError::new("console state missing"))?;
    let slugs = load::team_slugs(&caller.scoped).await?;
    let fleet = load::fleet(&caller.scoped, &slugs).await?;
    let local: Vec<String> = store::onboarding::ready_local(&st.db)
        .await
        .map_err(crate::auth::internal)?
        .into_iter()
        .filter_map(|r| r.gateway_name)
        .collect();
    let local_runner = st.provision.runner_name() == "local";
    let traffic = caller
        .scoped
        .group_events(
            store::events::GroupBy::Gateway,
            &store::events::EventFilter {
                since_ms: Some(store::now_ms() - 24 * 3_600_000),
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .map_err(crate::auth::internal)?;
    let mut environments: Vec<String> = fleet
        .iter()
        .map(|g| g.environment.clone())
        .filter(|e| !e.is_empty())
        .collect();
    environments.sort();
    environments.dedup();
    let mut teams: Vec<String> = slugs.values().cloned().collect();
    teams.sort();
    let counts = ["healthy", "stale", "down"]
        .iter()
        .map(|s| {
            (
                (*s).to_owned(),
                fleet.iter().filter(|g| g.status == *s).count(),
            )
        })
        .collect();
    let total = fleet.len();
    let rows = fleet
        .into_iter()
        .filter(|g| q.status.is_empty() || g.status == q.status)
        .filter(|g| q.environment.is_empty() || g.environment == q.environment)
        .filter(|g| q.team.is_empty() || g.teams.split(", ").any(|t| t == q.team))
        .map(|g| {
            let t = traffic
                .iter()
                .find(|t| t.key.as_deref() == Some(g.id.as_str()))
                .map(|t| t.totals.clone())
                .unwrap_or_default();
            FleetRow {
                runner: if local_runner && local.contains(&g.name) {
                    "local (kt serve)".to_owned()
                } else if g.demo {
                    "bundled (kt demo)".to_owned()
                } else {
                    "external".to_owned()
                },
                requests_24h: t.requests,
                blocked_24h: t.blocked,
                spend_24h: crate::format::usd(t.cost_micros),
                gateway: g,
            }
        })
        .collect();
    Ok(FleetData {
        me: caller.me,
        flash,
        rows,
        total,
        counts,
        environments,
        teams,
        query: q,
    })
}

#[component]
pub fn FleetPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || {
        let q = query.read();
        FleetQuery {
            status: q.get("status").unwrap_or_default(),
            environment: q.get("environment").unwrap_or_default(),
            team: q.get("team").unwrap_or_default(),
        }
    };
    let data = Resource::new(q, load_fleet);
    view! {
        <Title text="Gateways" />
        {load_page(data, |d: FleetData, hydrated| {
            let choice = |name: &'static str, options: Vec<String>, chosen: String, all: &'static str| view! {
                <select name=name>
                    <option value="">{all}</option>
                    {options.into_iter().map(|o| {
                        let is = o == chosen;
                        view! { <option value=o.clone() selected=is>{o.clone()}</option> }
                    }).collect_view()}
                </select>
            };
            view! {
                <Frame me=d.me.clone() crumbs=vec![("", "Gateways".to_owned())] flash=d.flash.clone() hydrated>
                    <div class="page-head"><h1>"Gateways"</h1></div>
                    <p class="muted" id="fleet-counts">
                        {format!("{} gateway(s): ", d.total)}
                        {d.counts.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")}
                    </p>
                    <form method="get" action="/gateways" class="inline-form" id="fleet-filters">
                        <label>"Status" {choice("status", vec!["healthy".into(), "stale".into(), "down".into()], d.query.status.clone(), "any")}</label>
                        <label>"Environment" {choice("environment", d.environments.clone(), d.query.environment.clone(), "any")}</label>
                        <label>"Team" {choice("team", d.teams.clone(), d.query.team.clone(), "any")}</label>
                        <button type="submit" class="secondary">"Filter"</button>
                    </form>
                    <section class="panel">
                        {if d.rows.is_empty() {
                            view! { <p class="empty">"No gateway matches."</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-scroll">
                                <table id="fleet">
                                    <thead><tr>
                                        <th scope="col">"Gateway"</th><th scope="col">"Team"</th><th scope="col">"Environment"</th>
                                        <th scope="col">"Runner"</th><th scope="col">"Address"</th><th scope="col">"Version"</th>
                                        <th scope="col">"Status"</th><th scope="col">"Uptime"</th>
                                        <th scope="col">"Running / desired config"</th>
                                        <th scope="col" class="num">"Requests 24 h"</th><th scope="col" class="num">"Blocked"</th><th scope="col" class="num">"Spend"</th>
                                    </tr></thead>
                                    <tbody>
                                        {d.rows.into_iter().map(|r| {
                                            let g = r.gateway;
                                            view! {
                                                <tr data-gateway=g.name.clone()>
                                                    <td><a href=format!("/gateways/{}", g.id)>{g.name.clone()}</a>
                                                        {g.demo.then(|| view! { <span class="badge demo">"demo"</span> })}</td>
                                                    <td>{g.teams.clone()}</td>
                                                    <td>{if g.environment.is_empty() { "—".to_owned() } else { g.environment.clone() }}</td>
                                                    <td>{r.runner.clone()}</td>
                                                    <td><code>{g.address.clone()}</code></td>
                                                    <td>{g.version.clone()}</td>
                                                    <td><span class=format!("health health-{}", g.status)>{g.status.clone()}</span></td>
                                                    <td>{g.uptime.clone()}</td>
                                                    <td>
                                                        <code>{g.config_hash.clone()}</code>
                                                        {(!g.desired_hash.is_empty()).then(|| view! { " / " <code>{g.desired_hash.clone()}</code> })}
                                                        {(g.drift == "drift").then(|| view! { <span class="badge drift">"drift"</span> })}
                                                    </td>
                                                    <td class="num">{r.requests_24h}</td>
                                                    <td class="num">{r.blocked_24h}</td>
                                                    <td class="num">{r.spend_24h.clone()}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                            }.into_any()
                        }}
                    </section>
                </Frame>
            }
        })}
    }
}
