//! Settings › Users (org admins): invite console users with a role (and a
//! team for team roles), change roles, remove users. An invited user gets a
//! one-time password, shown once to the admin who invited them.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::{Confirm, SettingsTabs, TeamOption, TeamSelect};
use crate::access::{Flash, Me, Role};
use crate::components::layout::{Frame, load_page};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub team_id: Option<String>,
    pub team: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub users: Vec<UserView>,
    pub teams: Vec<TeamOption>,
    pub confirm: Option<UserView>,
}

#[server(prefix = "/api", endpoint = "users")]
pub async fn load_users(confirm: String) -> Result<UsersData, ServerFnError> {
    let caller = crate::auth::require(Role::administers).await?;
    let flash = crate::auth::take_flash().await?;
    let teams = super::team_options(&caller.scoped).await?;
    let all_teams = caller
        .scoped
        .list_teams()
        .await
        .map_err(crate::auth::internal)?;
    let users: Vec<UserView> = caller
        .scoped
        .list_users()
        .await
        .map_err(crate::auth::internal)?
        .into_iter()
        .map(|u| UserView {
            team: u
                .team_id
                .as_ref()
                .and_then(|id| all_teams.iter().find(|t| &t.team_id == id))
                .map_or_else(|| "—".to_owned(), |t| t.slug.clone()),
            role: Role::parse(&u.role),
            created: crate::format::timestamp(&store::format_ms(u.created_at)),
            id: u.user_id,
            email: u.email,
            team_id: u.team_id,
        })
        .collect();
    let confirm = users.iter().find(|u| u.id == confirm).cloned();
    Ok(UsersData {
        me: caller.me,
        flash,
        users,
        teams,
        confirm,
    })
}

#[server(prefix = "/api", endpoint = "invite_user")]
pub async fn invite_user(
    email: String,
    role: String,
    team_id: String,
) -> Result<(), ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let outcome = async {
        if !caller.me.role.administers() {
            return Err("only org admins invite users".to_owned());
        }
        let password = store::crypto::random_password();
        let hash = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || store::crypto::hash_password(&password))
                .await
                .map_err(|e| crate::auth::explain(store::StoreError::Crypto(e.to_string())))?
                .map_err(crate::auth::explain)?
        };
        let email = email.trim().to_lowercase();
        let user = caller
            .scoped
            .invite_user(&email, &role, Some(team_id.as_str()), &hash)
            .await
            .map_err(|e| match e {
                store::StoreError::Conflict(_) => format!("{email} already has an account"),
                other => crate::auth::explain(other),
            })?;
        Ok((user, password))
    }
    .await;
    let flash = match outcome {
        Ok((user, password)) => Flash {
            ok: true,
            message: format!(
                "Invited {} as {}. Give them this one-time password to sign in with:",
                user.email,
                Role::parse(&user.role).label()
            ),
            secret: Some(password),
        },
        Err(message) => Flash {
            ok: false,
            message,
            secret: None,
        },
    };
    crate::auth::finish("/settings/users", flash).await
}

#[server(prefix = "/api", endpoint = "set_role")]
pub async fn set_role(user_id: String, role: String, team_id: String) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/settings/users",
        crate::access::Role::administers,
        "only org admins change roles",
        |caller| async move {
            if user_id == caller.user.user_id && role != "admin" {
                return Err(
                    "you cannot take away your own admin role; ask another admin".to_owned(),
                );
            }
            let user = caller
                .scoped
                .set_user_role(&user_id, &role, Some(team_id.as_str()))
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "{} is now {}.",
                user.email,
                Role::parse(&user.role).label()
            ))
        },
    )
    .await
}

#[server(prefix = "/api", endpoint = "remove_user")]
pub async fn remove_user(user_id: String) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/settings/users",
        crate::access::Role::administers,
        "only org admins remove users",
        |caller| async move {
            if user_id == caller.user.user_id {
                return Err("you cannot remove yourself".to_owned());
            }
            let user = caller
                .scoped
                .remove_user(&user_id)
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "Removed {}; their sessions have ended.",
                user.email
            ))
        },
    )
    .await
}

#[component]
fn RoleSelect(selected: Role) -> impl IntoView {
    view! {
        <select name="role">
            {Role::ALL
                .iter()
                .map(|r| view! { <option value=r.as_str() selected=*r == selected>{r.label()}</option> })
                .collect_view()}
        </select>
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let query = use_query_map();
    let confirm = move || query.read().get("confirm").unwrap_or_default();
    let data = Resource::new(confirm, load_users);
    view! {
        <Title text="Users · Settings" />
        {load_page(data, |d: UsersData, hydrated| {
            let role = d.me.role;
            let me = d.me.email.clone();
            let teams = d.teams.clone();
            view! {
                <Frame
                    me=d.me.clone()
                    crumbs=vec![("/settings", "Settings".to_owned()), ("", "Users".to_owned())]
                    flash=d.flash.clone()
                    hydrated
                >
                    <div class="page-head"><h1>"Users"</h1></div>
                    <SettingsTabs role />
                    {d.confirm.clone().map(|u| view! {
                        <Confirm
                            question=format!("Remove {}? They are signed out and can no longer sign in.", u.email)
                            action="/api/remove_user"
                            fields=vec![("user_id", u.id)]
                            button="Remove user"
                            back="/settings/users"
                        />
                    })}
                    <section class="panel" aria-labelledby="invite-title">
                        <h2 id="invite-title">"Invite a user"</h2>
                        <form method="post" action="/api/invite_user" class="inline-form" id="invite-user">
                            <label class="grow">"Email" <input type="email" name="email" required autocomplete="off" /></label>
                            <label>"Role" <RoleSelect selected=Role::Member /></label>
                            <label>"Team" <TeamSelect teams=d.teams.clone() none="(none: org admins, org-wide viewers)" /></label>
                            <button type="submit">"Invite"</button>
                        </form>
                        <p class="muted">"Team leads manage their team's keys; members read their team's pages; viewers read costs only (their team's, or the whole org's without a team)."</p>
                    </section>
                    <section class="panel">
                        <h2>"Users"</h2>
                        <div class="table-scroll">
                            <table id="users">
                                <thead>
                                    <tr>
                                        <th scope="col">"Email"</th>
                                        <th scope="col">"Role and team"</th>
                                        <th scope="col">"Since (UTC)"</th>
                                        <th scope="col"><span class="sr-only">"Actions"</span></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {d.users.into_iter().map(|u| {
                                        let yourself = u.email == me;
                                        view! {
                                            <tr data-user=u.email.clone()>
                                                <td>{u.email.clone()} {yourself.then(|| view! { <span class="badge">"you"</span> })}</td>
                                                <td>
                                                    <form method="post" action="/api/set_role" class="inline">
                                                        <input type="hidden" name="user_id" value=u.id.clone() />
                                                        <RoleSelect selected=u.role />
                                                        <TeamSelect teams=teams.clone() none="(no team)" selected=u.team_id.clone().unwrap_or_default() />
                                                        <button type="submit" class="secondary small">"Save"</button>
                                                    </form>
                                                </td>
                                                <td>{u.created.clone()}</td>
                                                <td>
                                                    {(!yourself).then(|| view! {
                                                        <a class="button danger small" href=format!("/settings/users?confirm={}", u.id)>"Remove"</a>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </section>
                </Frame>
            }
        })}
    }
}
