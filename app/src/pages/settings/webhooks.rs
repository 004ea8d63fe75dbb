//! Settings › Webhooks (org admins): where kt sends notifications, each
//! delivery's result, and a "Send test" button. The secret that signs
//! deliveries is write-only.

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
pub struct DeliveryView {
    pub event: String,
    pub status: String,
    pub attempts: i64,
    pub result: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: String,
    pub created_by: String,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhooksData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub hooks: Vec<WebhookView>,
    pub events: Vec<String>,
    pub confirm: Option<WebhookView>,
}

#[server(prefix = "/api", endpoint = "webhooks")]
pub async fn load_webhooks(confirm: String) -> Result<WebhooksData, ServerFnError> {
    use crate::format::timestamp;
    let caller = crate::auth::require(Role::administers).await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let mut hooks = Vec::new();
    for h in caller.scoped.list_webhooks().await.map_err(internal)? {
        let (h, deliveries) = caller
            .scoped
            .webhook_deliveries(&h.webhook_id, 10)
            .await
            .map_err(internal)?;
        hooks.push(WebhookView {
            events: h.events().join(", "),
            deliveries: deliveries
                .into_iter()
                .map(|d| DeliveryView {
                    result: match (d.last_status_code, &d.last_error) {
                        (Some(code), _) if (200..300).contains(&code) => format!("HTTP {code}"),
                        (_, Some(err)) => err.clone(),
                        (Some(code), None) => format!("HTTP {code}"),
                        (None, None) => "not sent yet".to_owned(),
                    },
                    event: d.event,
                    status: d.status,
                    attempts: d.attempts,
                    created: timestamp(&store::format_ms(d.created_at)),
                })
                .collect(),
            id: h.webhook_id,
            url: h.url,
            created_by: h.created_by,
        });
    }
    let confirm = hooks.iter().find(|h| h.id == confirm).cloned();
    Ok(WebhooksData {
        me: caller.me,
        flash,
        hooks,
        events: store::webhooks::EVENTS
            .iter()
            .filter(|e| **e != "webhook.test")
            .map(|e| (*e).to_owned())
            .collect(),
        confirm,
    })
}

#[server(prefix = "/api", endpoint = "test_webhook")]
pub async fn test_webhook(id: String) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/settings/webhooks",
        Role::administers,
        "only org admins manage webhooks",
        |caller| async move {
            caller
                .scoped
                .test_webhook(&id)
                .await
                .map_err(crate::auth::explain)?;
            Ok("Test delivery queued: its result shows below within seconds (reload).".to_owned())
        },
    )
    .await
}

#[server(prefix = "/api", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: String) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/settings/webhooks",
        Role::administers,
        "only org admins manage webhooks",
        |caller| async move {
            caller
                .scoped
                .delete_webhook(&id)
                .await
                .map_err(crate::auth::explain)?;
            Ok("Webhook removed.".to_owned())
        },
    )
    .await
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    let query = use_query_map();
    let confirm = move || query.read().get("confirm").unwrap_or_default();
    let data = Resource::new(confirm, load_webhooks);
    view! {
        <Title text="Webhooks · Settings" />
        {load_page(data, |d: WebhooksData, hydrated| {
            let role = d.me.role;
            view! {
                <Frame
                    me=d.me.clone()
                    crumbs=vec![("/settings", "Settings".to_owned()), ("", "Webhooks".to_owned())]
                    flash=d.flash.clone()
                    hydrated
                >
                    <div class="page-head"><h1>"Webhooks"</h1></div>
                    <SettingsTabs role />
                    {d.confirm.clone().map(|h| view! {
                        <Confirm
                            question=format!("Remove the webhook to {}? Its pending deliveries are not sent.", h.url)
                            action="/api/delete_webhook"
                            fields=vec![("id", h.id)]
                            button="Remove"
                            back="/settings/webhooks"
                        />
                    })}
                    <section class="panel">
                        <p class="muted">{format!(
                            "Add webhooks with POST /v1/webhooks {{\"url\", \"events\", \"secret\"}}. Events: {}. Each delivery is signed X-Kt-Signature: sha256=<HMAC-SHA256 of the body> with the webhook's secret and retried with back-off.",
                            d.events.join(", ")
                        )}</p>
                        {if d.hooks.is_empty() {
                            view! { <p class="empty">"No webhook yet."</p> }.into_any()
                        } else {
                            d.hooks.into_iter().map(|h| view! {
                                <div class="webhook" data-webhook=h.id.clone()>
                                    <div class="section-head">
                                        <h2><code>{h.url.clone()}</code></h2>
                                        <form method="post" action="/api/test_webhook" class="inline-form">
                                            <input type="hidden" name="id" value=h.id.clone() />
                                            <button type="submit" class="secondary small">"Send test"</button>
                                            <a class="button danger small" href=format!("/settings/webhooks?confirm={}", h.id)>"Remove"</a>
                                        </form>
                                    </div>
                                    <p class="muted">{format!("Events: {} · added by {}", h.events, h.created_by)}</p>
                                    {if h.deliveries.is_empty() {
                                        view! { <p class="empty">"No delivery yet."</p> }.into_any()
                                    } else {
                                        view! {
                                            <table class="deliveries">
                                                <thead><tr>
                                                    <th scope="col">"Queued (UTC)"</th><th scope="col">"Event"</th>
                                                    <th scope="col">"Status"</th><th scope="col" class="num">"Attempts"</th><th scope="col">"Last result"</th>
                                                </tr></thead>
                                                <tbody>
                                                    {h.deliveries.into_iter().map(|d| view! {
                                                        <tr data-event=d.event.clone()>
                                                            <td>{d.created}</td><td><code>{d.event.clone()}</code></td>
                                                            <td><span class=format!("badge status-{}", d.status)>{d.status.clone()}</span></td>
                                                            <td class="num">{d.attempts}</td><td>{d.result}</td>
                                                        </tr>
                                                    }).collect_view()}
                                                </tbody>
                                            </table>
                                        }.into_any()
                                    }}
                                </div>
                            }).collect_view().into_any()
                        }}
                    </section>
                </Frame>
            }
        })}
    }
}
