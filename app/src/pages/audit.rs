//! Audit log (`/audit`): every change made through the API or the console —
//! who, what, when, which object, before and after (secret values masked
//! where they were recorded) — with filters and a CSV export of what is
//! shown. Org admins read everything, team leads their team's.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};

/// Entries shown (and exported) at most.
pub const AUDIT_LIMIT: i64 = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    pub actor: String,
    /// Exact action, or a prefix ending in `.` (`token.`).
    pub action: String,
    pub team: String,
    /// `1h`, `24h`, `7d`, `30d` or empty (everything).
    pub since: String,
}

impl AuditQuery {
    pub fn to_query_string(&self) -> String {
        [
            ("actor", &self.actor),
            ("action", &self.action),
            ("team", &self.team),
            ("since", &self.since),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub team: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub rows: Vec<AuditView>,
    pub teams: Vec<String>,
    pub query: AuditQuery,
    pub truncated: bool,
}

#[cfg(feature = "ssr")]
pub mod load {
    //! Reading shared by the page and the CSV export.
    use super::{AUDIT_LIMIT, AuditQuery, AuditView};

    pub async fn rows(scoped: &store::Scoped, q: &AuditQuery) -> Result<Vec<AuditView>, String> {
        let slugs: std::collections::HashMap<String, String> = scoped
            .list_teams()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|t| (t.team_id, t.slug))
            .collect();
        let since_ms = match q.since.as_str() {
            "1h" => Some(3_600_000),
            "24h" => Some(86_400_000),
            "7d" => Some(7 * 86_400_000),
            "30d" => Some(30 * 86_400_000),
            _ => None,
        }
        .map(|back: i64| store::now_ms() - back);
        let team_id = slugs
            .iter()
            .find(|(_, slug)| **slug == q.team)
            .map(|(id, _)| id.clone());
        let filter = store::audit::AuditFilter {
            since_ms,
            until_ms: None,
            actor: Some(q.actor.trim().to_owned()).filter(|a| !a.is_empty()),
            action: Some(q.action.trim().to_owned()).filter(|a| !a.is_empty()),
            team_id,
            limit: AUDIT_LIMIT,
        };
        Ok(scoped
            .list_audit(&filter)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|r| AuditView {
                at: crate::format::timestamp(&store::format_ms(r.created_at)),
                team: r
                    .team_id
                    .as_ref()
                    .map(|t| slugs.get(t).cloned().unwrap_or_else(|| t.clone()))
                    .unwrap_or_default(),
                target: format!("{} {}", r.target_type, r.target_id),
                actor: r.actor,
                action: r.action,
                before: r.before_json.unwrap_or_default(),
                after: r.after_json.unwrap_or_default(),
            })
            .collect())
    }

    /// RFC 4180 CSV of the rows.
    pub fn csv(rows: &[AuditView]) -> String {
        let mut out = String::from("time_utc,actor,action,target,team,before,after\r\n");
        for r in rows {
            let line = [
                &r.at, &r.actor, &r.action, &r.target, &r.team, &r.before, &r.after,
            ]
            .iter()
            .map(|s| crate::format::csv_field(s))
            .collect::<Vec<_>>()
            .join(",");
            out.push_str(&line);
            out.push_str("\r\n");
        }
        out
    }
}

#[server(prefix = "/api", endpoint = "audit")]
pub async fn load_audit(q: AuditQuery) -> Result<AuditData, ServerFnError> {
    let caller = crate::auth::require(crate::access::Role::reads_audit).await?;
    let flash = crate::auth::take_flash().await?;
    let rows = load::rows(&caller.scoped, &q)
        .await
        .map_err(crate::auth::internal)?;
    let mut teams: Vec<String> = caller
        .scoped
        .list_teams()
        .await
        .map_err(crate::auth::internal)?
        .into_iter()
        .map(|t| t.slug)
        .collect();
    teams.sort();
    Ok(AuditData {
        me: caller.me,
        flash,
        truncated: rows.len() as i64 >= AUDIT_LIMIT,
        rows,
        teams,
        query: q,
    })
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || {
        let q = query.read();
        AuditQuery {
            actor: q.get("actor").unwrap_or_default(),
            action: q.get("action").unwrap_or_default(),
            team: q.get("team").unwrap_or_default(),
            since: q.get("since").unwrap_or_default(),
        }
    };
    let data = Resource::new(q, load_audit);
    view! {
        <Title text="Audit log" />
        {load_page(data, |d: AuditData, hydrated| {
            let q = d.query.clone();
            let export = format!("/audit/export.csv?{}", q.to_query_string());
            view! {
                <Frame me=d.me.clone() crumbs=vec![("", "Audit log".to_owned())] flash=d.flash.clone() hydrated>
                    <div class="page-head">
                        <h1>"Audit log"</h1>
                        <a class="button secondary" href=export download="kt-audit.csv" id="audit-export">"Export CSV"</a>
                    </div>
                    <form method="get" action="/audit" class="inline-form" id="audit-filters">
                        <label>"Actor" <input name="actor" value=q.actor.clone() placeholder="admin@example.com (console)" /></label>
                        <label>"Action" <input name="action" value=q.action.clone() placeholder="token. or team.create" /></label>
                        <label>"Team" <select name="team">
                            <option value="">"any"</option>
                            {d.teams.iter().map(|t| view! { <option value=t.clone() selected=*t == q.team>{t.clone()}</option> }).collect_view()}
                        </select></label>
                        <label>"Since" <select name="since">
                            {[("", "all time"), ("1h", "last hour"), ("24h", "24 hours"), ("7d", "7 days"), ("30d", "30 days")].into_iter().map(|(v, l)| {
                                view! { <option value=v selected=q.since == v>{l}</option> }
                            }).collect_view()}
                        </select></label>
                        <button type="submit" class="secondary">"Filter"</button>
                    </form>
                    <section class="panel">
                        {if d.rows.is_empty() {
                            view! { <p class="empty">"No change matches."</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-scroll">
                                <table id="audit">
                                    <thead><tr>
                                        <th scope="col">"Time (UTC)"</th><th scope="col">"Actor"</th><th scope="col">"Action"</th>
                                        <th scope="col">"Target"</th><th scope="col">"Team"</th><th scope="col">"Before"</th><th scope="col">"After"</th>
                                    </tr></thead>
                                    <tbody>
                                        {d.rows.into_iter().map(|r| view! {
                                            <tr data-action=r.action.clone()>
                                                <td>{r.at}</td><td>{r.actor}</td><td><code>{r.action.clone()}</code></td>
                                                <td>{r.target}</td><td>{r.team}</td>
                                                <td><code class="json">{r.before}</code></td><td><code class="json">{r.after}</code></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                            }.into_any()
                        }}
                        {d.truncated.then(|| view! { <p class="muted">{format!("Showing the newest {AUDIT_LIMIT}; narrow the filters to see older changes.")}</p> })}
                    </section>
                </Frame>
            }
        })}
    }
}
