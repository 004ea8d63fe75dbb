//! Escalations (SPEC §10): requests an `escalate` policy held, for a
//! reviewer of the team to claim and approve or deny. The queue by status
//! with counts; each shows its policy, reason, matched entity types or
//! terms, model, and who it goes to (the team's designated reviewers, or
//! the org admins). The prompt is shown to those reviewers only, and only
//! when the policy keeps it (`reviewers_see_prompt`) until resolution.
//! Approving lets the caller resend the same request once with
//! `X-Escalation-Id`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::access::Role;
use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationView {
    pub id: String,
    pub team: String,
    pub policy: String,
    pub reason: String,
    pub entities: String,
    pub model: String,
    pub status: String,
    pub claimed_by: String,
    pub resolved_by: String,
    pub note: String,
    pub created: String,
    pub expires: String,
    pub used: String,
    /// Who decides: reviewers' emails, or "org admins".
    pub routed_to: String,
    /// The signed-in user is one of them.
    pub reviewable: bool,
    /// The policy kept the prompt for the reviewers (until resolution).
    pub prompt_kept: bool,
}

pub const TABS: [&str; 4] = ["pending", "claimed", "resolved", "expired"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationsData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub status: String,
    pub counts: Vec<(String, usize)>,
    pub rows: Vec<EscalationView>,
    /// A decision waiting for confirmation: (escalation, outcome, the
    /// prompt when kept for its reviewers).
    pub confirm: Option<(EscalationView, String, Option<String>)>,
}

#[server(prefix = "/api", endpoint = "escalations")]
pub async fn load_escalations(
    status: String,
    confirm: String,
    outcome: String,
) -> Result<EscalationsData, ServerFnError> {
    use crate::format::timestamp;
    let caller = crate::auth::require(Role::sees_dashboard).await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let status = if TABS.contains(&status.as_str()) {
        status
    } else {
        "pending".to_owned()
    };
    let teams = crate::pages::dashboard::load::team_slugs(&caller.scoped).await?;
    let now = store::now_ms();
    let all = caller
        .scoped
        .list_escalations(None, 1000)
        .await
        .map_err(internal)?;
    let tab_of = |e: &store::escalations::Escalation| match e.shown_status(now) {
        "approved" | "denied" => "resolved".to_owned(),
        other => other.to_owned(),
    };
    let counts = TABS
        .iter()
        .map(|t| {
            (
                (*t).to_owned(),
                all.iter().filter(|e| tab_of(e) == *t).count(),
            )
        })
        .collect();
    let when = |ms: Option<i64>| {
        ms.map(|ms| timestamp(&store::format_ms(ms)))
            .unwrap_or_default()
    };
    // Who reviews each team's escalations, looked up once per team.
    let mut routes: std::collections::HashMap<String, (String, bool)> = Default::default();
    for e in all.iter().filter(|e| tab_of(e) == status) {
        if routes.contains_key(&e.team_id) {
            continue;
        }
        let (to, named) = store::escalations::routed_to(caller.scoped.db(), &e.team_id)
            .await
            .map_err(internal)?;
        let shown = if named {
            to.join(", ")
        } else {
            "org admins".to_owned()
        };
        let mine = caller.me.role.reviews_escalations()
            && caller.scoped.reviews(&e.team_id).await.map_err(internal)?;
        routes.insert(e.team_id.clone(), (shown, mine));
    }
    let rows: Vec<EscalationView> = all
        .iter()
        .filter(|e| tab_of(e) == status)
        .map(|e| EscalationView {
            routed_to: routes[&e.team_id].0.clone(),
            reviewable: routes[&e.team_id].1,
            prompt_kept: e.prompt_sealed.is_some(),
            id: e.escalation_id.clone(),
            team: teams
                .get(&e.team_id)
                .cloned()
                .unwrap_or_else(|| e.team_id.clone()),
            policy: e.policy.clone(),
            reason: e.reason.clone(),
            entities: e.entities().join(", "),
            model: e.model.clone(),
            status: e.shown_status(now).to_owned(),
            claimed_by: e.claimed_by.clone().unwrap_or_default(),
            resolved_by: e.resolved_by.clone().unwrap_or_default(),
            note: e.note.clone().unwrap_or_default(),
            created: when(Some(e.created_at)),
            expires: when(Some(e.expires_at)),
            used: when(e.used_at),
        })
        .collect();
    let open = |r: &EscalationView| matches!(r.status.as_str(), "pending" | "claimed");
    let confirm = match rows
        .iter()
        .find(|r| r.id == confirm && r.reviewable && open(r))
    {
        Some(row) if matches!(outcome.as_str(), "approved" | "denied") => {
            let prompt = match all
                .iter()
                .find(|e| e.escalation_id == row.id)
                .and_then(|e| e.prompt_sealed.as_deref().map(|s| (e, s)))
            {
                Some((e, sealed)) => {
                    let key = use_context::<crate::state::ConsoleState>()
                        .ok_or_else(|| ServerFnError::new("console state missing"))?
                        .master_key;
                    Some(store::escalations::open_prompt(&key, e, sealed).map_err(internal)?)
                }
                None => None,
            };
            Some((row.clone(), outcome, prompt))
        }
        _ => None,
    };
    Ok(EscalationsData {
        me: caller.me,
        flash,
        status,
        counts,
        rows,
        confirm,
    })
}

#[server(prefix = "/api", endpoint = "claim_escalation")]
pub async fn claim_escalation(id: String, claim: bool) -> Result<(), ServerFnError> {
    crate::auth::act(
        if claim {
            "/escalations?status=claimed"
        } else {
            "/escalations"
        },
        Role::reviews_escalations,
        "your role cannot review escalations",
        |caller| async move {
            caller
                .scoped
                .claim_escalation(&id, claim)
                .await
                .map_err(crate::auth::explain)?;
            Ok(if claim {
                "Claimed: you review it.".to_owned()
            } else {
                "Back in the queue.".to_owned()
            })
        },
    )
    .await
}

#[server(prefix = "/api", endpoint = "resolve_escalation")]
pub async fn resolve_escalation(
    id: String,
    outcome: String,
    note: String,
) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/escalations?status=resolved",
        Role::reviews_escalations,
        "your role cannot review escalations",
        |caller| async move {
            let note = Some(note.trim()).filter(|n| !n.is_empty());
            let e = caller
                .scoped
                .resolve_escalation(&id, &outcome, note)
                .await
                .map_err(crate::auth::explain)?;
            Ok(if e.status == "approved" {
                format!("Approved: the caller may resend the same request once with X-Escalation-Id: {id}.")
            } else {
                "Denied: the request stays refused.".to_owned()
            })
        },
    )
    .await
}

#[component]
pub fn EscalationsPage() -> impl IntoView {
    let query = use_query_map();
    let args = move || {
        let q = query.read();
        (
            q.get("status").unwrap_or_default(),
            q.get("confirm").unwrap_or_default(),
            q.get("outcome").unwrap_or_default(),
        )
    };
    let data = Resource::new(args, |(s, c, o)| load_escalations(s, c, o));
    view! {
        <Title text="Escalations" />
        {load_page(data, |d: EscalationsData, hydrated| {
            let status = d.status.clone();
            view! {
                <Frame me=d.me.clone() crumbs=vec![("", "Escalations".to_owned())] flash=d.flash.clone() hydrated>
                    <div class="page-head"><h1>"Escalations"</h1></div>
                    <nav class="tabs" aria-label="Escalations by status">
                        {d.counts.iter().map(|(tab, n)| {
                            let current = *tab == status;
                            view! {
                                <a href=format!("/escalations?status={tab}") class:current=current
                                   aria-current=current.then_some("page") data-tab=tab.clone()>
                                    {format!("{tab} ({n})")}
                                </a>
                            }
                        }).collect_view()}
                    </nav>
                    {d.confirm.clone().map(|(e, outcome, prompt)| {
                        let verb = if outcome == "approved" { "Approve" } else { "Deny" };
                        view! {
                            <section class="panel confirm" role="alertdialog" aria-labelledby="confirm-q">
                                <p id="confirm-q"><strong>{format!("{verb} the request held by {} ({}, {}) for team {}?", e.policy, e.reason, e.model, e.team)}</strong></p>
                                {prompt.map(|p| view! {
                                    <figure class="held-prompt">
                                        <figcaption class="muted small">"The request, as sent (kept for this team's reviewers until the escalation is resolved or expires)"</figcaption>
                                        <pre id="held-prompt">{p}</pre>
                                    </figure>
                                })}
                                <form method="post" action="/api/resolve_escalation" class="inline-form">
                                    <input type="hidden" name="id" value=e.id.clone() />
                                    <input type="hidden" name="outcome" value=outcome.clone() />
                                    <label class="grow">"Note (optional)" <input name="note" maxlength="500" /></label>
                                    <button type="submit" class=if outcome == "approved" { "" } else { "danger" }>{verb}</button>
                                    <a class="button secondary" href=format!("/escalations?status={status}")>"Cancel"</a>
                                </form>
                            </section>
                        }
                    })}
                    <section class="panel">
                        {if d.rows.is_empty() {
                            view! { <p class="empty">{format!("No {} escalation.", d.status)}</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-scroll">
                                <table id="escalations">
                                    <thead><tr>
                                        <th scope="col">"Held (UTC)"</th><th scope="col">"Team"</th><th scope="col">"Policy"</th>
                                        <th scope="col">"Reason"</th><th scope="col">"Entities"</th><th scope="col">"Model"</th>
                                        <th scope="col">"Status"</th><th scope="col">"Goes to"</th><th scope="col">"Reviewer"</th><th scope="col">"Note"</th>
                                        <th scope="col"><span class="sr-only">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {d.rows.into_iter().map(|e| {
                                            let open = e.status == "pending" || e.status == "claimed";
                                            let base = format!("/escalations?status={}&confirm={}", e.status, e.id);
                                            let reviewer = if e.resolved_by.is_empty() { e.claimed_by.clone() } else { e.resolved_by.clone() };
                                            view! {
                                                <tr data-escalation=e.id.clone()>
                                                    <td>{e.created.clone()}</td>
                                                    <td>{e.team.clone()}</td>
                                                    <td>{e.policy.clone()}</td>
                                                    <td>{e.reason.clone()}</td>
                                                    <td>{e.entities.clone()}
                                                        {e.prompt_kept.then(|| view! { <span class="badge" title="The policy keeps the prompt for the reviewers until resolution">"prompt kept"</span> })}</td>
                                                    <td>{e.model.clone()}</td>
                                                    <td><span class=format!("badge status-{}", e.status)>{e.status.clone()}</span>
                                                        {(!e.used.is_empty()).then(|| view! { <span class="muted small">{format!(" used {}", e.used)}</span> })}</td>
                                                    <td class="routed-to">{e.routed_to.clone()}</td>
                                                    <td>{reviewer}</td>
                                                    <td>{e.note.clone()}</td>
                                                    <td>
                                                        {(e.reviewable && open).then(|| view! {
                                                            <form method="post" action="/api/claim_escalation" class="inline-form">
                                                                <input type="hidden" name="id" value=e.id.clone() />
                                                                <input type="hidden" name="claim" value=(e.status == "pending").to_string() />
                                                                <button type="submit" class="small secondary">{if e.status == "pending" { "Claim" } else { "Unclaim" }}</button>
                                                                <a class="button small" href=format!("{base}&outcome=approved")>"Approve"</a>
                                                                <a class="button small danger" href=format!("{base}&outcome=denied")>"Deny"</a>
                                                            </form>
                                                        })}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                            }.into_any()
                        }}
                    </section>
                    <p class="muted">"Each team's escalations go to its designated reviewers (Settings › Teams), or to the org admins when it names none. Reviewers see request metadata and what the policy matched; the prompt only when the policy keeps it for them (reviewers_see_prompt), and it is erased once the escalation is resolved or expires. An approved request passes once, when its caller resends the same content with the header X-Escalation-Id, before it expires."</p>
                </Frame>
            }
        })}
    }
}
