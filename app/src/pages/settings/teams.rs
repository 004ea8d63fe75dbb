//! Settings › Teams and members: org admins create, rename and archive
//! teams and put users in them; team leads and members see their own team.
//! Org admins and a team's leads name its escalation reviewers (SPEC §10).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::{Confirm, SettingsTabs};
#[cfg(feature = "ssr")]
use crate::access::Role;
use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    pub email: String,
    pub role: String,
    /// Reviews the team's escalations.
    pub reviewer: bool,
    /// May be named a reviewer (not a viewer).
    pub may_review: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created: String,
    pub archived: bool,
    pub members: Vec<MemberView>,
    /// The signed-in user may name this team's reviewers.
    pub names_reviewers: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamsData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub teams: Vec<TeamView>,
    pub confirm: Option<TeamView>,
}

#[server(prefix = "/api", endpoint = "teams")]
pub async fn load_teams(confirm: String) -> Result<TeamsData, ServerFnError> {
    let caller = crate::auth::require(Role::sees_teams).await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let rows = caller.scoped.list_teams().await.map_err(internal)?;
    let users = caller.scoped.list_users().await.map_err(internal)?;
    let mut teams: Vec<TeamView> = Vec::with_capacity(rows.len());
    for t in rows {
        let reviewers: Vec<String> = caller
            .scoped
            .team_reviewers(&t.team_id)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|r| r.user_id)
            .collect();
        let names_reviewers = caller.me.role.administers()
            || (caller.me.role == Role::TeamLead
                && caller.user.team_id.as_deref() == Some(t.team_id.as_str()));
        teams.push(TeamView {
            names_reviewers,
            members: users
                .iter()
                .filter(|u| u.team_id.as_deref() == Some(t.team_id.as_str()))
                .map(|u| MemberView {
                    email: u.email.clone(),
                    role: Role::parse(&u.role).label().to_owned(),
                    reviewer: reviewers.contains(&u.user_id),
                    may_review: Role::parse(&u.role).reviews_escalations(),
                })
                .collect(),
            created: crate::format::timestamp(&store::format_ms(t.created_at)),
            archived: t.archived_at.is_some(),
            id: t.team_id,
            name: t.name,
            slug: t.slug,
        });
    }
    let confirm = teams
        .iter()
        .find(|t| t.id == confirm && !t.archived)
        .cloned();
    Ok(TeamsData {
        me: caller.me,
        flash,
        teams,
        confirm,
    })
}

/// Runs an org-admin action from a Teams form and reports its outcome.
#[cfg(feature = "ssr")]
async fn admin_action<F, Fut>(action: F) -> Result<(), ServerFnError>
where
    F: FnOnce(store::Scoped) -> Fut,
    Fut: std::future::Future<Output = Result<String, store::StoreError>>,
{
    crate::auth::act(
        "/settings/teams",
        Role::administers,
        "only org admins manage teams",
        |caller| async move { action(caller.scoped).await.map_err(crate::auth::explain) },
    )
    .await
}

#[server(prefix = "/api", endpoint = "create_team")]
pub async fn create_team(name: String, slug: String) -> Result<(), ServerFnError> {
    admin_action(|scoped| async move {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(store::StoreError::Invalid(
                "give the team a name of 1 to 100 characters".to_owned(),
            ));
        }
        let slug = slug.trim().to_lowercase();
        store::teams::validate_slug(&slug).map_err(store::StoreError::Invalid)?;
        let team = scoped
            .create_team(&store::teams::NewTeam {
                name: name.to_owned(),
                slug,
            })
            .await
            .map_err(|e| match e {
                store::StoreError::Conflict(_) => {
                    store::StoreError::Invalid("a team with that slug already exists".to_owned())
                }
                other => other,
            })?;
        Ok(format!("Created team {} ({}).", team.name, team.slug))
    })
    .await
}

#[server(prefix = "/api", endpoint = "rename_team")]
pub async fn rename_team(team_id: String, name: String) -> Result<(), ServerFnError> {
    admin_action(|scoped| async move {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(store::StoreError::Invalid(
                "a team name has 1 to 100 characters".to_owned(),
            ));
        }
        let team = scoped.rename_team(&team_id, name).await?;
        Ok(format!("Renamed team {} to {}.", team.slug, team.name))
    })
    .await
}

#[server(prefix = "/api", endpoint = "archive_team")]
pub async fn archive_team(team_id: String) -> Result<(), ServerFnError> {
    admin_action(|scoped| async move {
        let team = scoped.archive_team(&team_id).await?;
        Ok(format!(
            "Archived team {}: its keys no longer work; its history stays.",
            team.slug
        ))
    })
    .await
}

#[server(prefix = "/api", endpoint = "set_member")]
pub async fn set_member(team_id: String, email: String, role: String) -> Result<(), ServerFnError> {
    admin_action(|scoped| async move {
        let email = email.trim().to_lowercase();
        let role = (!role.is_empty()).then_some(role.as_str());
        if let Some(r) = role
            && !["team_lead", "member", "viewer"].contains(&r)
        {
            return Err(store::StoreError::Invalid(format!(
                "a team role is team_lead, member or viewer, not {r:?}"
            )));
        }
        let user = scoped
            .set_member(&team_id, &email, role)
            .await
            .map_err(|e| match e {
                store::StoreError::NotFound => store::StoreError::Invalid(format!(
                    "no console user {email}: invite them under Settings › Users first"
                )),
                other => other,
            })?;
        Ok(match role {
            Some(_) => format!(
                "{} is now {} of the team.",
                user.email,
                Role::parse(&user.role).label()
            ),
            None => format!("{} left the team.", user.email),
        })
    })
    .await
}

/// Names a member a reviewer of the team's escalations, or stops it.
#[server(prefix = "/api", endpoint = "set_reviewer")]
pub async fn set_reviewer(team_id: String, email: String, on: bool) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/settings/teams",
        Role::sees_teams,
        "only org admins and team leads name reviewers",
        |caller| async move {
            let scoped = caller.scoped;
            let mut emails: Vec<String> = scoped
                .team_reviewers(&team_id)
                .await
                .map_err(crate::auth::explain)?
                .into_iter()
                .map(|r| r.email)
                .filter(|e| *e != email)
                .collect();
            if on {
                emails.push(email.clone());
            }
            let now = scoped
                .set_team_reviewers(&team_id, &emails)
                .await
                .map_err(crate::auth::explain)?;
            Ok(match (on, now.is_empty()) {
                (true, _) => format!("{email} now reviews the team's escalations."),
                (false, false) => format!("{email} no longer reviews the team's escalations."),
                (false, true) => format!(
                    "{email} no longer reviews; the team names no reviewers, so its escalations go to the org admins."
                ),
            })
        },
    )
    .await
}

#[component]
pub fn TeamsPage() -> impl IntoView {
    let query = use_query_map();
    let confirm = move || query.read().get("confirm").unwrap_or_default();
    let data = Resource::new(confirm, load_teams);
    view! {
        <Title text="Teams · Settings" />
        {load_page(data, |d: TeamsData, hydrated| {
            let role = d.me.role;
            let admin = role.administers();
            view! {
                <Frame
                    me=d.me.clone()
                    crumbs=vec![("/settings", "Settings".to_owned()), ("", "Teams and members".to_owned())]
                    flash=d.flash.clone()
                    hydrated
                >
                    <div class="page-head"><h1>"Teams and members"</h1></div>
                    <SettingsTabs role />
                    {d.confirm.clone().map(|t| view! {
                        <Confirm
                            question=format!("Archive team {}? Its gateway and access keys stop working; its events and spend stay in reports.", t.slug)
                            action="/api/archive_team"
                            fields=vec![("team_id", t.id)]
                            button="Archive team"
                            back="/settings/teams"
                        />
                    })}
                    {admin.then(|| view! {
                        <section class="panel" aria-labelledby="new-team-title">
                            <h2 id="new-team-title">"Create a team"</h2>
                            <form method="post" action="/api/create_team" class="inline-form" id="create-team">
                                <label class="grow">"Name" <input name="name" required maxlength="100" placeholder="Payments" /></label>
                                <label>"Slug" <input name="slug" required pattern="[a-z0-9][a-z0-9\\-]*" maxlength="40" placeholder="payments" /></label>
                                <button type="submit">"Create team"</button>
                            </form>
                        </section>
                    })}
                    {if d.teams.is_empty() {
                        view! { <p class="empty panel">"No teams yet."</p> }.into_any()
                    } else {
                        d.teams.into_iter().map(|t| {
                            let team_id = t.id.clone();
                            view! {
                                <section class="panel team" data-team=t.slug.clone()>
                                    <div class="section-head">
                                        <h2>{t.name.clone()} " " <code>{t.slug.clone()}</code></h2>
                                        {t.archived.then(|| view! { <span class="status status-revoked">"archived"</span> })}
                                        {(admin && !t.archived).then(|| view! {
                                            <a class="button danger small" href=format!("/settings/teams?confirm={}", t.id)>"Archive"</a>
                                        })}
                                    </div>
                                    <p class="muted">"Created " {t.created.clone()} " UTC"</p>
                                    {
                                        let named: Vec<String> = t.members.iter().filter(|m| m.reviewer).map(|m| m.email.clone()).collect();
                                        view! {
                                            <p class="reviewers-summary">
                                                "Escalations go to: "
                                                {if named.is_empty() {
                                                    "the org admins (this team names no reviewers)".to_owned()
                                                } else {
                                                    named.join(", ")
                                                }}
                                            </p>
                                        }
                                    }
                                    {if t.members.is_empty() {
                                        view! { <p class="empty">"No members."</p> }.into_any()
                                    } else {
                                        let names_reviewers = t.names_reviewers && !t.archived;
                                        view! {
                                            <table class="members">
                                                <thead><tr><th scope="col">"Member"</th><th scope="col">"Role"</th><th scope="col">"Reviews escalations"</th>
                                                {admin.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}</tr></thead>
                                                <tbody>
                                                    {t.members.into_iter().map(|m| {
                                                        let team_id = team_id.clone();
                                                        let reviewer_form = (names_reviewers && m.may_review).then(|| view! {
                                                            <form method="post" action="/api/set_reviewer" class="inline">
                                                                <input type="hidden" name="team_id" value=team_id.clone() />
                                                                <input type="hidden" name="email" value=m.email.clone() />
                                                                <input type="hidden" name="on" value=(!m.reviewer).to_string() />
                                                                <button type="submit" class="secondary small">{if m.reviewer { "Stop reviewing" } else { "Make reviewer" }}</button>
                                                            </form>
                                                        });
                                                        let member = m.email.clone();
                                                        view! {
                                                            <tr data-member=member>
                                                                <td>{m.email.clone()}</td>
                                                                <td>{m.role}</td>
                                                                <td class="reviewer">{if m.reviewer { "yes " } else { "" }} {reviewer_form}</td>
                                                                {admin.then(|| view! {
                                                                    <td>
                                                                        <form method="post" action="/api/set_member" class="inline">
                                                                            <input type="hidden" name="team_id" value=team_id />
                                                                            <input type="hidden" name="email" value=m.email />
                                                                            <input type="hidden" name="role" value="" />
                                                                            <button type="submit" class="secondary small">"Remove from team"</button>
                                                                        </form>
                                                                    </td>
                                                                })}
                                                            </tr>
                                                        }
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                    {(admin && !t.archived).then(|| view! {
                                        <details>
                                            <summary>"Rename, add a member"</summary>
                                            <form method="post" action="/api/rename_team" class="inline-form">
                                                <input type="hidden" name="team_id" value=t.id.clone() />
                                                <label class="grow">"New name" <input name="name" required maxlength="100" value=t.name.clone() /></label>
                                                <button type="submit" class="secondary">"Rename"</button>
                                            </form>
                                            <form method="post" action="/api/set_member" class="inline-form">
                                                <input type="hidden" name="team_id" value=t.id.clone() />
                                                <label class="grow">"User's email" <input type="email" name="email" required /></label>
                                                <label>
                                                    "Role"
                                                    <select name="role">
                                                        <option value="member">"Member"</option>
                                                        <option value="team_lead">"Team lead"</option>
                                                        <option value="viewer">"Viewer"</option>
                                                    </select>
                                                </label>
                                                <button type="submit" class="secondary">"Add to team"</button>
                                            </form>
                                        </details>
                                    })}
                                </section>
                            }
                        }).collect_view().into_any()
                    }}
                </Frame>
            }
        })}
    }
}
