//! The API reference: the control-plane API as described by the OpenAPI
//! document the server generates from its code (`/v1/openapi.json`), grouped
//! by tag, readable without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::access::Me;
use crate::components::layout::{Frame, load_page};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub method: String,
    pub path: String,
    pub summary: String,
    pub parameters: Vec<String>,
    pub body: Option<String>,
    pub responses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiData {
    pub me: Me,
    pub title: String,
    pub version: String,
    pub groups: Vec<(String, Vec<Operation>)>,
}

/// The operations of an OpenAPI document, grouped by their first tag.
#[cfg(feature = "ssr")]
pub fn operations(doc: &serde_json::Value) -> Vec<(String, Vec<Operation>)> {
    use serde_json::Value;
    let mut groups: std::collections::BTreeMap<String, Vec<Operation>> = Default::default();
    let schema_name = |v: &Value| -> Option<String> {
        let schema = v.pointer("/content/application~1json/schema")?;
        let reference = schema
            .get("$ref")
            .or_else(|| schema.pointer("/items/$ref"))
            .and_then(Value::as_str)?;
        reference.rsplit('/').next().map(str::to_owned)
    };
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
            let parameters = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    format!(
                        "{} ({}{}){}",
                        p["name"].as_str().unwrap_or("?"),
                        p["in"].as_str().unwrap_or("?"),
                        if p["required"].as_bool() == Some(true) {
                            ", required"
                        } else {
                            ""
                        },
                        p["description"]
                            .as_str()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let responses = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, r)| {
                    format!("{status} {}", r["description"].as_str().unwrap_or_default())
                })
                .collect();
            groups.entry(tag).or_default().push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                summary: op["summary"]
                    .as_str()
                    .or(op["description"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                parameters,
                body: op.get("requestBody").and_then(schema_name),
                responses,
            });
        }
    }
    groups.into_iter().collect()
}

#[server(prefix = "/api", endpoint = "api_reference")]
pub async fn load_api() -> Result<ApiData, ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let st = use_context::<crate::state::ConsoleState>()
        .ok_or_else(|| ServerFnError::new("console state missing"))?;
    let doc = &*st.openapi;
    Ok(ApiData {
        me: caller.me,
        title: doc["info"]["title"].as_str().unwrap_or("kt").to_owned(),
        version: doc["info"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        groups: operations(doc),
    })
}

#[component]
pub fn ApiReferencePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_api());
    view! {
        <Title text="API reference" />
        {load_page(data, |d: ApiData, hydrated| view! {
            <Frame me=d.me crumbs=vec![("/api-reference", "API reference".to_owned())] hydrated>
                <div class="page-head">
                    <h1>"API reference"</h1>
                    <a class="button secondary" href="/v1/openapi.json">"OpenAPI document (JSON)"</a>
                </div>
                <p class="muted">
                    {d.title} " " {d.version}
                    ". Every call takes "<code>"Authorization: Bearer <access key>"</code>
                    "; create access keys under Settings › Keys. Errors share one shape: "
                    <code>"{\"error\": {\"code\", \"message\"}}"</code>"."
                </p>
                <nav class="toc" aria-label="API sections">
                    {d.groups.iter().map(|(tag, _)| view! { <a href=format!("#tag-{tag}")>{tag.clone()}</a> }).collect_view()}
                </nav>
                {d.groups.into_iter().map(|(tag, ops)| view! {
                    <section class="panel api-group" id=format!("tag-{tag}")>
                        <h2>{tag.clone()}</h2>
                        {ops.into_iter().map(|op| view! {
                            <article class="api-op" data-op=format!("{} {}", op.method, op.path)>
                                <h3><span class=format!("method method-{}", op.method.to_lowercase())>{op.method.clone()}</span> " " <code>{op.path.clone()}</code></h3>
                                <p>{op.summary}</p>
                                {(!op.parameters.is_empty()).then(|| view! {
                                    <p class="muted">"Parameters:"</p>
                                    <ul>{op.parameters.into_iter().map(|p| view! { <li><code>{p}</code></li> }).collect_view()}</ul>
                                })}
                                {op.body.map(|b| view! { <p>"Body: " <code>{b}</code></p> })}
                                <p class="muted">"Responses: " {op.responses.join(" · ")}</p>
                            </article>
                        }).collect_view()}
                    </section>
                }).collect_view()}
            </Frame>
        })}
    }
}
