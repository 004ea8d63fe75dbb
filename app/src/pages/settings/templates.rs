//! Settings › Onboarding templates (org admins): the policy sets new teams
//! start from (SPEC §9). Each is edited like a team's configuration: linted
//! as it is typed, saved only when lint-clean (otherwise shown again with
//! its errors at their lines), audited. Onboarding then fills in the
//! team's budget and models.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::SettingsTabs;
#[cfg(feature = "ssr")]
use crate::access::Role;
use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};
use crate::pages::configs::{LiveLint, Problem, Problems, lint_as_you_type};

/// The session key of refused editor content.
#[cfg(feature = "ssr")]
const DRAFT_KEY: &str = "template_draft";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRow {
    pub name: String,
    /// The template's leading comment.
    pub summary: Vec<String>,
    pub updated_by: String,
    pub updated: String,
}

/// Editor content refused by lint, kept in the session across the redirect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDraft {
    pub name: String,
    pub content: String,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatesData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub templates: Vec<TemplateRow>,
    /// The template being edited: (name, content).
    pub editing: Option<(String, String)>,
    pub draft: Option<TemplateDraft>,
}

#[server(prefix = "/api", endpoint = "templates")]
pub async fn load_templates(name: String) -> Result<TemplatesData, ServerFnError> {
    let caller = crate::auth::require(Role::administers).await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let all = store::onboarding::templates(caller.scoped.db())
        .await
        .map_err(internal)?;
    let draft = crate::auth::unstash::<TemplateDraft>(DRAFT_KEY)
        .await?
        .filter(|d| d.name == name);
    let editing = match &draft {
        Some(d) => Some((d.name.clone(), d.content.clone())),
        None => all
            .iter()
            .find(|t| t.name == name)
            .map(|t| (t.name.clone(), t.content.clone())),
    };
    let templates = all
        .into_iter()
        .map(|t| TemplateRow {
            summary: crate::pages::onboarding::summary(&t.content),
            updated: crate::format::timestamp(&store::format_ms(t.updated_at)),
            updated_by: t.updated_by,
            name: t.name,
        })
        .collect();
    Ok(TemplatesData {
        me: caller.me,
        flash,
        templates,
        editing,
        draft,
    })
}

/// Saves a template when it passes lint; when it does not, nothing changes
/// and the editor shows it again with its errors.
#[server(prefix = "/api", endpoint = "save_template")]
pub async fn save_template(name: String, content: String) -> Result<(), ServerFnError> {
    let back = format!("/settings/templates?name={name}");
    crate::auth::act(
        &back,
        Role::administers,
        "only org admins edit onboarding templates",
        |caller| async move {
            let content = content.replace("\r\n", "\n");
            if content.len() > crate::pages::configs::MAX_CONTENT_BYTES {
                return Err(format!(
                    "the template is larger than {} KiB",
                    crate::pages::configs::MAX_CONTENT_BYTES / 1024
                ));
            }
            if let Err(errors) = policy::parse(&content) {
                let problems: Vec<Problem> = errors.into_iter().map(Problem::from).collect();
                let count = problems.len();
                crate::auth::stash(
                    DRAFT_KEY,
                    &TemplateDraft {
                        name,
                        content,
                        problems,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
                return Err(format!(
                    "Not saved: {count} lint error{} (shown at their lines below). Teams onboarded from now on get the saved template.",
                    if count == 1 { "" } else { "s" }
                ));
            }
            let t = caller
                .scoped
                .put_template(&name, &content)
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "Saved template {}: teams onboarded from now on start from it; existing teams keep their configuration.",
                t.name
            ))
        },
    )
    .await
}

#[component]
pub fn TemplatesPage() -> impl IntoView {
    let query = use_query_map();
    let name = move || query.read().get("name").unwrap_or_default();
    let data = Resource::new(name, load_templates);
    view! {
        <Title text="Onboarding templates · Settings" />
        {load_page(data, |d: TemplatesData, hydrated| {
            let role = d.me.role;
            view! {
                <Frame
                    me=d.me.clone()
                    crumbs=vec![("/settings", "Settings".to_owned()), ("", "Onboarding templates".to_owned())]
                    flash=d.flash.clone()
                    hydrated
                >
                    <div class="page-head"><h1>"Onboarding templates"</h1></div>
                    <SettingsTabs role />
                    <section class="panel">
                        <div class="table-scroll">
                        <table id="templates">
                            <thead><tr>
                                <th scope="col">"Template"</th><th scope="col">"What it does"</th>
                                <th scope="col">"Last changed (UTC)"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
                            </tr></thead>
                            <tbody>
                                {d.templates.iter().map(|t| view! {
                                    <tr data-template=t.name.clone()>
                                        <td><code>{t.name.clone()}</code></td>
                                        <td class="summary"><ul class="compact">{t.summary.iter().map(|l| view! { <li>{l.clone()}</li> }).collect_view()}</ul></td>
                                        <td>{t.updated.clone()} <span class="muted small changed-by">{format!("by {}", t.updated_by)}</span></td>
                                        <td><a class="button small secondary" href=format!("/settings/templates?name={}", t.name)>"Edit"</a></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        </div>
                        <p class="muted">"Onboarding fills in each new team's monthly budget (cost_limit) and models (model_filter); everything else comes from the template as saved here. Teams already onboarded keep their configuration."</p>
                    </section>
                    {d.draft.clone().map(|draft| view! { <Problems content=draft.content problems=draft.problems /> })}
                    {d.editing.clone().map(|(name, content)| {
                        let (results, lint) = lint_as_you_type();
                        view! {
                            <section class="panel" aria-labelledby="editor-title">
                                <h2 id="editor-title">{format!("Edit {name}")}</h2>
                                <form method="post" action="/api/save_template" id="template-editor">
                                    <input type="hidden" name="name" value=name.clone() />
                                    <label for="template-content">{format!("{name} (YAML, SPEC §4)")}</label>
                                    <textarea id="template-content" name="content" rows="24" spellcheck="false" required
                                        on:input=move |ev| { lint.dispatch(event_target_value(&ev)); }
                                    >{content}</textarea>
                                    <LiveLint results />
                                    <div class="inline-form">
                                        <button type="submit">"Lint and save"</button>
                                        <a class="button secondary" href="/settings/templates">"Close"</a>
                                    </div>
                                </form>
                            </section>
                        }
                    })}
                </Frame>
            }
        })}
    }
}
