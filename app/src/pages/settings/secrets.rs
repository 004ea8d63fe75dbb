//! Settings › Provider secrets (org admins): vendor API keys stored
//! AES-256-GCM-SIV encrypted under the master key, write-only: the console
//! shows names and who changed them, never a value.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::{Confirm, SettingsTabs, TeamOption, TeamSelect};
#[cfg(feature = "ssr")]
use crate::access::Role;
use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretView {
    pub name: String,
    pub team_id: String,
    pub team: String,
    pub updated: String,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderView {
    pub kind: String,
    pub base_url: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretsData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub secrets: Vec<SecretView>,
    pub providers: Vec<ProviderView>,
    pub teams: Vec<TeamOption>,
    pub confirm: Option<SecretView>,
}

#[server(prefix = "/api", endpoint = "secrets")]
pub async fn load_secrets(confirm: String) -> Result<SecretsData, ServerFnError> {
    let caller = crate::auth::require(Role::administers).await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let teams = super::team_options(&caller.scoped).await?;
    let secrets: Vec<SecretView> = caller
        .scoped
        .list_secrets()
        .await
        .map_err(internal)?
        .into_iter()
        .map(|s| SecretView {
            team: if s.team_id.is_empty() {
                "org-wide".to_owned()
            } else {
                teams
                    .iter()
                    .find(|(id, _)| *id == s.team_id)
                    .map_or_else(|| s.team_id.clone(), |(_, slug)| slug.clone())
            },
            updated: crate::format::timestamp(&store::format_ms(s.updated_at)),
            updated_by: s.updated_by,
            name: s.name,
            team_id: s.team_id,
        })
        .collect();
    let providers = caller
        .scoped
        .list_providers()
        .await
        .map_err(internal)?
        .into_iter()
        .map(|p| ProviderView {
            kind: p.kind,
            base_url: p.base_url.unwrap_or_else(|| "(vendor default)".to_owned()),
            secret: p.secret_name.unwrap_or_else(|| "—".to_owned()),
        })
        .collect();
    let confirm = secrets
        .iter()
        .find(|s| format!("{}/{}", s.team_id, s.name) == confirm)
        .cloned();
    Ok(SecretsData {
        me: caller.me,
        flash,
        secrets,
        providers,
        teams,
        confirm,
    })
}

#[server(prefix = "/api", endpoint = "put_secret")]
pub async fn put_secret(name: String, value: String, team_id: String) -> Result<(), ServerFnError> {
    let key = use_context::<crate::state::ConsoleState>()
        .ok_or_else(|| ServerFnError::new("console state missing"))?
        .master_key;
    crate::auth::act(
        "/settings/secrets",
        crate::access::Role::administers,
        "only org admins manage provider secrets",
        |caller| async move {
            let name = name.trim();
            store::secrets::validate(name, &value)?;
            let team = Some(team_id.as_str()).filter(|t| !t.is_empty());
            let (row, created) = caller
                .scoped
                .put_secret(&key, name, team, &value)
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "{} secret {} (encrypted; it cannot be read back).",
                if created { "Stored" } else { "Replaced" },
                row.name
            ))
        },
    )
    .await
}

#[server(prefix = "/api", endpoint = "delete_secret")]
pub async fn delete_secret(name: String, team_id: String) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/settings/secrets",
        crate::access::Role::administers,
        "only org admins manage provider secrets",
        |caller| async move {
            let team = Some(team_id.as_str()).filter(|t| !t.is_empty());
            caller
                .scoped
                .delete_secret(&name, team)
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!("Deleted secret {name}."))
        },
    )
    .await
}

#[component]
pub fn SecretsPage() -> impl IntoView {
    let query = use_query_map();
    let confirm = move || query.read().get("confirm").unwrap_or_default();
    let data = Resource::new(confirm, load_secrets);
    view! {
        <Title text="Provider secrets · Settings" />
        {load_page(data, |d: SecretsData, hydrated| {
            let role = d.me.role;
            view! {
                <Frame
                    me=d.me.clone()
                    crumbs=vec![("/settings", "Settings".to_owned()), ("", "Provider secrets".to_owned())]
                    flash=d.flash.clone()
                    hydrated
                >
                    <div class="page-head"><h1>"Provider secrets"</h1></div>
                    <SettingsTabs role />
                    {d.confirm.clone().map(|s| view! {
                        <Confirm
                            question=format!("Delete secret {} ({})? Configs that refer to it stop reaching their provider.", s.name, s.team)
                            action="/api/delete_secret"
                            fields=vec![("name", s.name), ("team_id", s.team_id)]
                            button="Delete secret"
                            back="/settings/secrets"
                        />
                    })}
                    <section class="panel" aria-labelledby="new-secret-title">
                        <h2 id="new-secret-title">"Store a secret"</h2>
                        <form method="post" action="/api/put_secret" class="inline-form" id="put-secret" autocomplete="off">
                            <label>"Name" <input name="name" required maxlength="64" pattern="[A-Za-z0-9_.\\-]+" placeholder="openai-prod" /></label>
                            <label class="grow">"Value" <input type="password" name="value" required autocomplete="new-password" /></label>
                            <label>"Team" <TeamSelect teams=d.teams.clone() none="(org-wide)" /></label>
                            <button type="submit">"Store"</button>
                        </form>
                        <p class="muted">"Encrypted with AES-256-GCM-SIV under the master key; write-only. Configs refer to it as secret_key_ref.secret. Storing an existing name replaces its value."</p>
                    </section>
                    <section class="panel">
                        <h2>"Secrets"</h2>
                        {if d.secrets.is_empty() {
                            view! { <p class="empty">"No secrets stored."</p> }.into_any()
                        } else {
                            view! {
                                <table id="secrets">
                                    <thead><tr>
                                        <th scope="col">"Name"</th><th scope="col">"Team"</th>
                                        <th scope="col">"Updated (UTC)"</th><th scope="col">"By"</th>
                                        <th scope="col"><span class="sr-only">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {d.secrets.into_iter().map(|s| view! {
                                            <tr data-secret=s.name.clone()>
                                                <td><code>{s.name.clone()}</code></td>
                                                <td>{s.team.clone()}</td>
                                                <td>{s.updated.clone()}</td>
                                                <td>{s.updated_by.clone()}</td>
                                                <td><a class="button danger small" href=format!("/settings/secrets?confirm={}/{}", s.team_id, s.name)>"Delete"</a></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </section>
                    <section class="panel">
                        <h2>"Provider defaults"</h2>
                        {if d.providers.is_empty() {
                            view! { <p class="empty">"None set. Set them with PUT /v1/providers/{kind}."</p> }.into_any()
                        } else {
                            view! {
                                <table id="providers">
                                    <thead><tr><th scope="col">"Kind"</th><th scope="col">"Base URL"</th><th scope="col">"Secret"</th></tr></thead>
                                    <tbody>
                                        {d.providers.into_iter().map(|p| view! {
                                            <tr><td>{p.kind}</td><td><code>{p.base_url}</code></td><td><code>{p.secret}</code></td></tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    </section>
                </Frame>
            }
        })}
    }
}
