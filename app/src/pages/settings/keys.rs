//! Settings › Keys: access keys (control-plane API) and gateway keys
//! (callers of a team's gateway). A new key's secret is shown once; after
//! that only its prefix, creation, last use and expiry.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::{Confirm, SettingsTabs, TeamOption, TeamSelect};
use crate::access::{Flash, Me, Role};
use crate::components::layout::{Frame, load_page};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub team: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeysData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub keys: Vec<KeyView>,
    pub teams: Vec<TeamOption>,
    pub confirm: Option<KeyView>,
}

#[server(prefix = "/api", endpoint = "keys")]
pub async fn load_keys(confirm: String) -> Result<KeysData, ServerFnError> {
    use crate::format::timestamp;
    let caller = crate::auth::require(Role::sees_keys).await?;
    let flash = crate::auth::take_flash().await?;
    let teams = super::team_options(&caller.scoped).await?;
    let slug = |id: &Option<String>| match id {
        Some(id) => teams
            .iter()
            .find(|(t, _)| t == id)
            .map_or_else(|| id.clone(), |(_, s)| s.clone()),
        None => "org-wide".to_owned(),
    };
    let now = store::now_ms();
    let when =
        |ms: Option<i64>| ms.map_or_else(|| "—".to_owned(), |ms| timestamp(&store::format_ms(ms)));
    let mut keys: Vec<KeyView> = caller
        .scoped
        .list_tokens()
        .await
        .map_err(crate::auth::internal)?
        .into_iter()
        .map(|t| KeyView {
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "active"
            }
            .to_owned(),
            team: slug(&t.team_id),
            created: when(Some(t.created_at)),
            last_used: when(t.last_used_at),
            expires: t
                .expires_at
                .map_or_else(|| "never".to_owned(), |e| when(Some(e))),
            id: t.token_id,
            name: t.name,
            kind: t.token_type,
            prefix: t.prefix,
        })
        .collect();
    // Active first, then newest.
    keys.sort_by(|a, b| {
        (a.status != "active")
            .cmp(&(b.status != "active"))
            .then(b.created.cmp(&a.created))
    });
    let confirm = keys
        .iter()
        .find(|k| k.id == confirm && k.status == "active")
        .cloned();
    Ok(KeysData {
        me: caller.me,
        flash,
        keys,
        teams,
        confirm,
    })
}

#[server(prefix = "/api", endpoint = "create_key")]
pub async fn create_key(
    name: String,
    kind: String,
    team_id: String,
    expires: String,
) -> Result<(), ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let outcome = async {
        if !caller.me.role.manages_keys() {
            return Err("your role cannot create keys (team leads and org admins can)".to_owned());
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err("give the key a name of 1 to 100 characters (what uses it)".to_owned());
        }
        let kind = store::crypto::TokenKind::parse(&kind)
            .ok_or_else(|| format!("key type {kind:?} is neither `access` nor `gateway`"))?;
        let expires_at = match expires.trim() {
            "" => None,
            date => {
                let at = store::end_of_day_ms(date)
                    .ok_or_else(|| format!("expiry {date:?} is not a date (YYYY-MM-DD)"))?;
                if at <= store::now_ms() {
                    return Err(format!("expiry {date} is in the past"));
                }
                Some(at)
            }
        };
        let team_id = Some(team_id.trim().to_owned()).filter(|t| !t.is_empty());
        let created = caller
            .scoped
            .create_token(&store::tokens::NewToken {
                name: name.to_owned(),
                kind,
                team_id,
                expires_at,
                user_id: None,
            })
            .await
            .map_err(crate::auth::explain)?;
        Ok(created)
    }
    .await;
    let flash = match outcome {
        Ok(created) => Flash {
            ok: true,
            message: format!(
                "Created {} key \u{201c}{}\u{201d} ({}…).",
                created.row.token_type, created.row.name, created.row.prefix
            ),
            secret: Some(created.secret),
        },
        Err(message) => Flash {
            ok: false,
            message,
            secret: None,
        },
    };
    crate::auth::finish("/settings/keys", flash).await
}

#[server(prefix = "/api", endpoint = "revoke_key")]
pub async fn revoke_key(token_id: String) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/settings/keys",
        Role::manages_keys,
        "your role cannot revoke keys",
        |caller| async move {
            let row = caller
                .scoped
                .revoke_token(&token_id)
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "Revoked \u{201c}{}\u{201d} ({}…): gateways refuse it within seconds.",
                row.name, row.prefix
            ))
        },
    )
    .await
}

#[component]
pub fn KeysPage() -> impl IntoView {
    let query = use_query_map();
    let confirm = move || query.read().get("confirm").unwrap_or_default();
    let data = Resource::new(confirm, load_keys);
    view! {
        <Title text="Keys · Settings" />
        {load_page(data, |d: KeysData, hydrated| {
            let role = d.me.role;
            let manage = role.manages_keys();
            let lead_team = (role != Role::Admin).then(|| d.teams.clone());
            view! {
                <Frame
                    me=d.me.clone()
                    crumbs=vec![("/settings", "Settings".to_owned()), ("", "Keys".to_owned())]
                    flash=d.flash.clone()
                    hydrated
                >
                    <div class="page-head"><h1>"Keys"</h1></div>
                    <SettingsTabs role />
                    {d.confirm.clone().map(|k| view! {
                        <Confirm
                            question=format!("Revoke \u{201c}{}\u{201d} ({}…)? Anything using it stops working within seconds.", k.name, k.prefix)
                            action="/api/revoke_key"
                            fields=vec![("token_id", k.id)]
                            button="Revoke key"
                            back="/settings/keys"
                        />
                    })}
                    {manage.then(|| view! {
                        <section class="panel" aria-labelledby="new-key-title">
                            <h2 id="new-key-title">"Create a key"</h2>
                            <form method="post" action="/api/create_key" class="inline-form" id="create-key">
                                <label class="grow">"Name" <input name="name" required maxlength="100" placeholder="ci-pipeline" /></label>
                                <label>
                                    "Type"
                                    <select name="kind">
                                        <option value="gateway">"Gateway key (calls a gateway)"</option>
                                        <option value="access">"Access key (control-plane API)"</option>
                                    </select>
                                </label>
                                <label>
                                    "Team"
                                    {match lead_team.clone() {
                                        Some(teams) => view! { <TeamSelect teams /> }.into_any(),
                                        None => view! { <TeamSelect teams=d.teams.clone() none="(org-wide: access keys only)" none_last=true /> }.into_any(),
                                    }}
                                </label>
                                <label>"Expires (optional)" <input type="date" name="expires" /></label>
                                <button type="submit">"Create key"</button>
                            </form>
                        </section>
                    })}
                    <section class="panel">
                        <h2>"Keys"</h2>
                        {if d.keys.is_empty() {
                            view! { <p class="empty">"No keys yet."</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-scroll">
                                    <table id="keys">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Name"</th>
                                                <th scope="col">"Type"</th>
                                                <th scope="col">"Team"</th>
                                                <th scope="col">"Prefix"</th>
                                                <th scope="col">"Created (UTC)"</th>
                                                <th scope="col">"Last used"</th>
                                                <th scope="col">"Expires"</th>
                                                <th scope="col">"Status"</th>
                                                {manage.then(|| view! { <th scope="col"><span class="sr-only">"Actions"</span></th> })}
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {d.keys.into_iter().map(|k| view! {
                                                <tr data-key-id=k.id.clone() data-key-name=k.name.clone()>
                                                    <td>{k.name.clone()}</td>
                                                    <td>{k.kind.clone()}</td>
                                                    <td>{k.team.clone()}</td>
                                                    <td><code>{k.prefix.clone()} "…"</code></td>
                                                    <td>{k.created.clone()}</td>
                                                    <td>{k.last_used.clone()}</td>
                                                    <td>{k.expires.clone()}</td>
                                                    <td><span class=format!("status status-{}", k.status)>{k.status.clone()}</span></td>
                                                    {manage.then(|| view! {
                                                        <td>
                                                            {(k.status == "active").then(|| view! {
                                                                <a class="button danger small" href=format!("/settings/keys?confirm={}", k.id)>"Revoke"</a>
                                                            })}
                                                        </td>
                                                    })}
                                                </tr>
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
