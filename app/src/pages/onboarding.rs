//! Onboarding (SPEC §9): team leads request AI access for a team with a
//! form (every field checked, with its own message); org admins approve or
//! reject from a queue; an approval runs the provisioning pipeline, whose
//! steps the request's page shows as they run. The gateway key is shown
//! once, to the requester.

// `request_onboarding` takes one argument per form field (so the plain HTML
// form posts to it); the client function the server macro generates for the
// browser cannot carry an item-level allow.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::access::Role;
use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};

#[cfg(feature = "ssr")]
const DRAFT_KEY: &str = "onboarding_draft";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateView {
    pub name: String,
    /// The template's leading comment: what it blocks, redacts, allows.
    pub summary: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepView {
    pub step: String,
    pub status: String,
    pub detail: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub team_name: String,
    pub team_slug: String,
    pub lead_email: String,
    pub use_case: String,
    pub template: String,
    pub budget: String,
    pub models: String,
    pub environment: String,
    pub status: String,
    pub reason: String,
    pub requested_by: String,
    pub created: String,
    pub decided_by: String,
    pub gateway_url: String,
    pub steps: Vec<StepView>,
}

/// The form's values and, after a refused submission, each field's problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FormDraft {
    pub team_name: String,
    pub team_slug: String,
    pub lead_email: String,
    pub use_case: String,
    pub template: String,
    pub monthly_budget: String,
    pub models: String,
    pub environment: String,
    /// `(field, message)`
    pub errors: Vec<(String, String)>,
}

impl FormDraft {
    fn error(&self, field: &str) -> Option<String> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub templates: Vec<TemplateView>,
    pub form: FormDraft,
    /// The caller's own requests.
    pub mine: Vec<RequestView>,
    /// Org admins: pending requests.
    pub queue: Vec<RequestView>,
    /// Org admins: every recent request.
    pub recent: Vec<RequestView>,
    pub is_admin: bool,
    /// A rejection waiting for its reason.
    pub rejecting: Option<RequestView>,
}

#[cfg(feature = "ssr")]
fn view_of(r: store::onboarding::Request) -> RequestView {
    use crate::format::timestamp;
    RequestView {
        models: r.models().join(", "),
        steps: r
            .steps()
            .into_iter()
            .map(|s| StepView {
                step: s.step,
                status: s.status,
                detail: s.detail.unwrap_or_default(),
                at: s
                    .at
                    .map(|ms| timestamp(&store::format_ms(ms)))
                    .unwrap_or_default(),
            })
            .collect(),
        budget: format!("${:.2}", r.monthly_budget_micros as f64 / 1e6),
        created: timestamp(&store::format_ms(r.created_at)),
        id: r.onboarding_request_id,
        team_name: r.team_name,
        team_slug: r.team_slug,
        lead_email: r.lead_email,
        use_case: r.use_case,
        template: r.template,
        environment: r.environment,
        status: r.status,
        reason: r.reason.unwrap_or_default(),
        requested_by: r.requested_by,
        decided_by: r.decided_by.unwrap_or_default(),
        gateway_url: r.gateway_url.unwrap_or_default(),
    }
}

#[cfg(feature = "ssr")]
pub(crate) fn summary(content: &str) -> Vec<String> {
    content
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[server(prefix = "/api", endpoint = "onboarding")]
pub async fn load_onboarding(reject: String) -> Result<OnboardingData, ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let st = use_context::<crate::state::ConsoleState>()
        .ok_or_else(|| ServerFnError::new("console state missing"))?;
    let templates = store::onboarding::templates(&st.db)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|t| TemplateView {
            summary: summary(&t.content),
            name: t.name,
        })
        .collect();
    let is_admin = caller.me.role.administers();
    let form = crate::auth::unstash::<FormDraft>(DRAFT_KEY)
        .await?
        .unwrap_or_else(|| FormDraft {
            lead_email: caller.me.email.clone(),
            template: "std".to_owned(),
            environment: "production".to_owned(),
            models: "gpt-4o-mini".to_owned(),
            ..Default::default()
        });
    // The org sees every request; a requester their own.
    let all: Vec<RequestView> = caller
        .scoped
        .list_onboarding(200)
        .await
        .map_err(internal)?
        .into_iter()
        .map(view_of)
        .collect();
    let me_actor = caller.scoped.actor().to_owned();
    let mine = all
        .iter()
        .filter(|r| r.requested_by == me_actor)
        .cloned()
        .collect();
    let (queue, recent) = if is_admin {
        (
            all.iter()
                .filter(|r| r.status == "pending")
                .cloned()
                .collect(),
            all.iter()
                .filter(|r| r.status != "pending")
                .take(50)
                .cloned()
                .collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let rejecting = is_admin
        .then(|| {
            all.iter()
                .find(|r| r.id == reject && r.status == "pending")
                .cloned()
        })
        .flatten();
    Ok(OnboardingData {
        me: caller.me,
        flash,
        templates,
        form,
        mine,
        queue,
        recent,
        is_admin,
        rejecting,
    })
}

/// Checks every field, so that each gets its own message.
#[cfg(feature = "ssr")]
fn check(form: &FormDraft, templates: &[String]) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| errors.push((field.to_owned(), message));
    if form.team_name.trim().is_empty() {
        fail("team_name", "Give the team a name.".to_owned());
    } else if form.team_name.trim().len() > 100 {
        fail("team_name", "At most 100 characters.".to_owned());
    }
    if let Err(e) = store::teams::validate_slug(form.team_slug.trim()) {
        fail("team_slug", e);
    }
    if let Err(e) = store::users::validate_email(&form.lead_email) {
        fail("lead_email", e);
    }
    if form.use_case.len() > 2000 {
        fail("use_case", "At most 2000 characters.".to_owned());
    }
    if !templates.contains(&form.template) {
        fail(
            "template",
            format!("Choose one of {}.", templates.join(", ")),
        );
    }
    match form.monthly_budget.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 1e9 => {}
        _ => fail(
            "monthly_budget",
            "A positive amount of USD per month, e.g. 500.".to_owned(),
        ),
    }
    let models = split_models(&form.models);
    if models.is_empty() {
        fail(
            "models",
            "Name at least one model, e.g. gpt-4o-mini.".to_owned(),
        );
    } else if let Some(bad) = models
        .iter()
        .find(|m| m.contains(['"', '\'', '[', ']', '#']))
    {
        fail("models", format!("{bad:?} is not a model name."));
    }
    if let Err(e) = store::configs::validate_environment(form.environment.trim()) {
        fail("environment", e);
    }
    errors
}

#[cfg(feature = "ssr")]
fn split_models(text: &str) -> Vec<String> {
    text.split([',', '\n', ' '])
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect()
}

#[server(prefix = "/api", endpoint = "request_onboarding")]
pub async fn request_onboarding(
    team_name: String,
    team_slug: String,
    lead_email: String,
    use_case: String,
    template: String,
    monthly_budget: String,
    models: String,
    environment: String,
) -> Result<(), ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let st = use_context::<crate::state::ConsoleState>()
        .ok_or_else(|| ServerFnError::new("console state missing"))?;
    let mut form = FormDraft {
        team_name,
        team_slug,
        lead_email,
        use_case,
        template,
        monthly_budget,
        models,
        environment,
        errors: Vec::new(),
    };
    if caller.me.role == Role::Viewer {
        return crate::auth::finish_with(
            "/onboarding",
            Err("viewers cannot request teams; ask a team lead".to_owned()),
        )
        .await;
    }
    let names: Vec<String> = store::onboarding::templates(&st.db)
        .await
        .map_err(crate::auth::internal)?
        .into_iter()
        .map(|t| t.name)
        .collect();
    form.errors = check(&form, &names);
    let outcome = if form.errors.is_empty() {
        let new = store::onboarding::NewRequest {
            team_name: form.team_name.trim().to_owned(),
            team_slug: form.team_slug.trim().to_owned(),
            lead_email: form.lead_email.trim().to_owned(),
            use_case: form.use_case.trim().to_owned(),
            template: form.template.clone(),
            monthly_budget_micros: (form.monthly_budget.trim().parse::<f64>().unwrap_or(0.0) * 1e6)
                .round() as i64,
            models: split_models(&form.models),
            environment: form.environment.trim().to_owned(),
        };
        match caller.scoped.request_onboarding(&new).await {
            Ok(r) => {
                return crate::auth::finish_with(
                    &format!("/onboarding/{}", r.onboarding_request_id),
                    Ok(format!(
                        "Requested team {}: an org admin will review it. This page shows its progress.",
                        r.team_slug
                    )),
                )
                .await;
            }
            Err(store::StoreError::Invalid(m)) => {
                // The store names the field: `team_slug`: …
                let field = m
                    .strip_prefix('`')
                    .and_then(|r| r.split_once('`'))
                    .map(|(f, _)| f.to_owned())
                    .unwrap_or_default();
                form.errors.push((field, m.clone()));
                Err(m)
            }
            Err(e) => Err(crate::auth::explain(e)),
        }
    } else {
        Err(format!(
            "Not sent: {} field(s) need attention (marked below).",
            form.errors.len()
        ))
    };
    crate::auth::stash(DRAFT_KEY, &form).await?;
    crate::auth::finish_with("/onboarding", outcome).await
}

#[server(prefix = "/api", endpoint = "approve_onboarding")]
pub async fn approve_onboarding(id: String) -> Result<(), ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let st = use_context::<crate::state::ConsoleState>()
        .ok_or_else(|| ServerFnError::new("console state missing"))?;
    if !caller.me.role.administers() {
        return crate::auth::finish_with(
            "/onboarding",
            Err("only org admins approve requests".to_owned()),
        )
        .await;
    }
    match st
        .provision
        .approve_in_background(&caller.scoped, &id)
        .await
    {
        Ok(r) => {
            crate::auth::finish_with(
                &format!("/onboarding/{id}"),
                Ok(format!("Approved {}: provisioning runs now.", r.team_slug)),
            )
            .await
        }
        Err(e) => crate::auth::finish_with("/onboarding", Err(crate::auth::explain(e))).await,
    }
}

#[server(prefix = "/api", endpoint = "reject_onboarding")]
pub async fn reject_onboarding(id: String, reason: String) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/onboarding",
        Role::administers,
        "only org admins reject requests",
        |caller| async move {
            let r = caller
                .scoped
                .reject_onboarding(&id, &reason)
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!("Rejected {}.", r.team_slug))
        },
    )
    .await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub request: RequestView,
    pub is_admin: bool,
    /// The gateway key, shown to the requester once.
    pub key: Option<String>,
}

#[server(prefix = "/api", endpoint = "onboarding_request")]
pub async fn load_request(id: String) -> Result<RequestData, ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let flash = crate::auth::take_flash().await?;
    let st = use_context::<crate::state::ConsoleState>()
        .ok_or_else(|| ServerFnError::new("console state missing"))?;
    let r = caller
        .scoped
        .get_onboarding(&id)
        .await
        .map_err(|e| ServerFnError::new(crate::auth::explain(e)))?;
    // Handed out once the pipeline has finished, so that the page showing
    // it does not refresh itself away (it refreshes while provisioning).
    let key = if r.status == "ready" || r.status == "failed" {
        st.provision
            .take_key(&caller.scoped, &id)
            .await
            .map_err(crate::auth::internal)?
    } else {
        None
    };
    Ok(RequestData {
        is_admin: caller.me.role.administers(),
        me: caller.me,
        flash,
        request: view_of(r),
        key,
    })
}

/// A field's problem after a refused submission.
fn problem(form: &FormDraft, name: &'static str) -> Option<impl IntoView + use<>> {
    form.error(name).map(|e| {
        view! { <p class="form-error" id=format!("f-{name}-error") role="alert">{e}</p> }
    })
}

#[component]
fn RequestsTable(rows: Vec<RequestView>, id: &'static str, admin_actions: bool) -> impl IntoView {
    view! {
        <div class="table-scroll">
            <table id=id>
                <thead><tr>
                    <th scope="col">"Team"</th><th scope="col">"Template"</th><th scope="col" class="num">"Budget / month"</th>
                    <th scope="col">"Models"</th><th scope="col">"Environment"</th><th scope="col">"Lead"</th>
                    <th scope="col">"Requested (UTC)"</th><th scope="col">"Status"</th>
                    <th scope="col"><span class="sr-only">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let page = format!("/onboarding/{}", r.id);
                        let reject = format!("/onboarding?reject={}", r.id);
                        let pending = r.status == "pending";
                        view! {
                            <tr data-request=r.id.clone() data-slug=r.team_slug.clone()>
                                <td><a href=page.clone()>{r.team_name.clone()}</a> " " <code>{r.team_slug.clone()}</code></td>
                                <td>{r.template.clone()}</td>
                                <td class="num">{r.budget.clone()}</td>
                                <td>{r.models.clone()}</td>
                                <td>{r.environment.clone()}</td>
                                <td>{r.lead_email.clone()}</td>
                                <td>{r.created.clone()}</td>
                                <td><span class=format!("badge status-{}", r.status)>{r.status.clone()}</span></td>
                                <td>
                                    {(admin_actions && pending).then(|| view! {
                                        <form method="post" action="/api/approve_onboarding" class="inline-form">
                                            <input type="hidden" name="id" value=r.id.clone() />
                                            <button type="submit" class="small">"Approve"</button>
                                            <a class="button small danger" href=reject.clone()>"Reject"</a>
                                        </form>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
pub fn OnboardingPage() -> impl IntoView {
    let query = use_query_map();
    let reject = move || query.read().get("reject").unwrap_or_default();
    let data = Resource::new(reject, load_onboarding);
    view! {
        <Title text="Onboarding" />
        {load_page(data, |d: OnboardingData, hydrated| {
            let f = d.form.clone();
            view! {
                <Frame me=d.me.clone() crumbs=vec![("", "Onboarding".to_owned())] flash=d.flash.clone() hydrated>
                    <div class="page-head"><h1>"Onboarding"</h1></div>
                    {d.rejecting.clone().map(|r| view! {
                        <section class="panel confirm" role="alertdialog" aria-labelledby="reject-q">
                            <p id="reject-q"><strong>{format!("Reject the request for team {} ({})?", r.team_name, r.team_slug)}</strong></p>
                            <form method="post" action="/api/reject_onboarding" class="inline-form">
                                <input type="hidden" name="id" value=r.id.clone() />
                                <label class="grow">"Reason (the requester sees it)" <input name="reason" required maxlength="500" /></label>
                                <button type="submit" class="danger">"Reject"</button>
                                <a class="button secondary" href="/onboarding">"Cancel"</a>
                            </form>
                        </section>
                    })}
                    {d.is_admin.then(|| view! {
                        <section class="panel" aria-labelledby="queue-title">
                            <h2 id="queue-title">{format!("Approval queue ({})", d.queue.len())}</h2>
                            {if d.queue.is_empty() {
                                view! { <p class="empty">"No request waits for approval."</p> }.into_any()
                            } else {
                                view! { <RequestsTable rows=d.queue.clone() id="queue" admin_actions=true /> }.into_any()
                            }}
                            <p class="muted">"Approving runs the pipeline: team → configuration from the template (linted) → wallet allocation → gateway key → gateway. A failed step can be retried by approving again; finished steps are not repeated."</p>
                        </section>
                    })}
                    <section class="panel" aria-labelledby="form-title">
                        <h2 id="form-title">"Request AI access for a team"</h2>
                        <form method="post" action="/api/request_onboarding" id="onboarding-form" class="form-grid" novalidate=false>
                            <div class="field" class:invalid=f.error("team_name").is_some() data-field="team_name">
                                <label for="f-team_name">"Team name"</label>
                                <input id="f-team_name" name="team_name" value=f.team_name.clone() required maxlength="100" placeholder="Payments" />
                                {problem(&f, "team_name")}
                            </div>
                            <div class="field" class:invalid=f.error("team_slug").is_some() data-field="team_slug">
                                <label for="f-team_slug">"Slug"</label>
                                <input id="f-team_slug" name="team_slug" value=f.team_slug.clone() required maxlength="40" pattern="[a-z]([a-z0-9\\-]*[a-z0-9])?" placeholder="payments" />
                                <p class="muted small">"Lowercase letters, digits and -; names the team's gateway and configs."</p>
                                {problem(&f, "team_slug")}
                            </div>
                            <div class="field" class:invalid=f.error("lead_email").is_some() data-field="lead_email">
                                <label for="f-lead_email">"Team lead (email)"</label>
                                <input id="f-lead_email" name="lead_email" type="email" value=f.lead_email.clone() required />
                                {problem(&f, "lead_email")}
                            </div>
                            <div class="field" class:invalid=f.error("template").is_some() data-field="template">
                                <label for="f-template">"Template"</label>
                                <select id="f-template" name="template">
                                    {d.templates.iter().map(|t| view! {
                                        <option value=t.name.clone() selected=t.name == f.template>{t.name.clone()}</option>
                                    }).collect_view()}
                                </select>
                                {problem(&f, "template")}
                            </div>
                            <div class="field" class:invalid=f.error("monthly_budget").is_some() data-field="monthly_budget">
                                <label for="f-monthly_budget">"Monthly budget (USD)"</label>
                                <input id="f-monthly_budget" name="monthly_budget" type="number" min="1" step="0.01" value=f.monthly_budget.clone() required />
                                <p class="muted small">"The config's monthly cost_limit and the wallet allocation."</p>
                                {problem(&f, "monthly_budget")}
                            </div>
                            <div class="field" class:invalid=f.error("models").is_some() data-field="models">
                                <label for="f-models">"Models"</label>
                                <input id="f-models" name="models" value=f.models.clone() required />
                                <p class="muted small">"Comma-separated; * matches any run of characters (claude-*)."</p>
                                {problem(&f, "models")}
                            </div>
                            <div class="field" class:invalid=f.error("environment").is_some() data-field="environment">
                                <label for="f-environment">"Environment"</label>
                                <input id="f-environment" name="environment" value=f.environment.clone() required maxlength="40" />
                                {problem(&f, "environment")}
                            </div>
                            <div class="field" class:invalid=f.error("use_case").is_some() data-field="use_case">
                                <label for="f-use_case">"Use case"</label>
                                <textarea id="f-use_case" name="use_case" rows="3" maxlength="2000">{f.use_case.clone()}</textarea>
                                <p class="muted small">"What the team will build, for the reviewer."</p>
                                {problem(&f, "use_case")}
                            </div>
                            <div><button type="submit">"Send request"</button></div>
                        </form>
                        <details class="templates">
                            <summary>"What the templates do"</summary>
                            {d.templates.iter().map(|t| view! {
                                <div data-template=t.name.clone()>
                                    <h3><code>{t.name.clone()}</code></h3>
                                    <ul>{t.summary.iter().map(|l| view! { <li>{l.clone()}</li> }).collect_view()}</ul>
                                </div>
                            }).collect_view()}
                            {d.is_admin.then(|| view! {
                                <p><a href="/settings/templates">"Edit the templates"</a></p>
                            })}
                        </details>
                    </section>
                    <section class="panel" aria-labelledby="mine-title">
                        <h2 id="mine-title">"Your requests"</h2>
                        {if d.mine.is_empty() {
                            view! { <p class="empty">"You have not requested a team yet."</p> }.into_any()
                        } else {
                            view! { <RequestsTable rows=d.mine.clone() id="mine" admin_actions=false /> }.into_any()
                        }}
                    </section>
                    {(d.is_admin && !d.recent.is_empty()).then(|| view! {
                        <section class="panel" aria-labelledby="recent-title">
                            <h2 id="recent-title">"Decided requests"</h2>
                            <RequestsTable rows=d.recent.clone() id="recent" admin_actions=false />
                        </section>
                    })}
                </Frame>
            }
        })}
    }
}

#[component]
pub fn OnboardingRequestPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, load_request);
    view! {
        <Title text="Onboarding request" />
        {load_page(data, |d: RequestData, hydrated| {
            let r = d.request.clone();
            let running = r.status == "provisioning";
            view! {
                // Without JavaScript too, the page follows the pipeline.
                {running.then(|| view! { <Meta http_equiv="refresh" content="1" /> })}
                <Frame me=d.me.clone() crumbs=vec![("/onboarding", "Onboarding".to_owned()), ("", r.team_slug.clone())] flash=d.flash.clone() hydrated>
                    <div class="page-head">
                        <h1>{format!("Team {} ", r.team_name)}<span class=format!("badge status-{}", r.status) id="request-status">{r.status.clone()}</span></h1>
                    </div>
                    {d.key.clone().map(|key| view! {
                        <div class="flash ok" role="status">
                            <p>"The team's gateway key (shown once, to you):"</p>
                            <div class="secret-once">
                                <code data-testid="secret" id="secret-once">{key}</code>
                                <button type="button" class="secondary" data-copy="#secret-once">"Copy"</button>
                            </div>
                            <p class="muted">"Store it now: it is shown only this once."</p>
                        </div>
                    })}
                    {(!r.reason.is_empty()).then(|| view! { <p class="form-error" role="alert" id="request-reason">{r.reason.clone()}</p> })}
                    <section class="panel">
                        <dl class="facts">
                            <div><dt>"Slug"</dt><dd><code>{r.team_slug.clone()}</code></dd></div>
                            <div><dt>"Template"</dt><dd>{r.template.clone()}</dd></div>
                            <div><dt>"Budget / month"</dt><dd>{r.budget.clone()}</dd></div>
                            <div><dt>"Models"</dt><dd>{r.models.clone()}</dd></div>
                            <div><dt>"Environment"</dt><dd>{r.environment.clone()}</dd></div>
                            <div><dt>"Lead"</dt><dd>{r.lead_email.clone()}</dd></div>
                            <div><dt>"Requested"</dt><dd>{format!("{} UTC by {}", r.created, r.requested_by)}</dd></div>
                            <div><dt>"Decided by"</dt><dd>{if r.decided_by.is_empty() { "—".to_owned() } else { r.decided_by.clone() }}</dd></div>
                        </dl>
                        {(!r.use_case.is_empty()).then(|| view! { <p>{r.use_case.clone()}</p> })}
                    </section>
                    <section class="panel" aria-labelledby="steps-title">
                        <h2 id="steps-title">"Provisioning"</h2>
                        <ol class="steps" id="steps">
                            {r.steps.iter().map(|s| view! {
                                <li data-step=s.step.clone() class=format!("step-{}", s.status)>
                                    <strong>{s.step.clone()}</strong> " "
                                    <span class=format!("badge status-{}", s.status)>{s.status.clone()}</span>
                                    {(!s.detail.is_empty()).then(|| view! { <span class="muted">{format!(" {}", s.detail)}</span> })}
                                </li>
                            }).collect_view()}
                        </ol>
                        {(d.is_admin && (r.status == "pending" || r.status == "failed")).then(|| view! {
                            <form method="post" action="/api/approve_onboarding" class="inline-form">
                                <input type="hidden" name="id" value=r.id.clone() />
                                <button type="submit">{if r.status == "failed" { "Retry" } else { "Approve" }}</button>
                            </form>
                        })}
                    </section>
                    {(!r.gateway_url.is_empty()).then(|| view! {
                        <section class="panel" aria-labelledby="use-title">
                            <h2 id="use-title">"Use it"</h2>
                            <p>"Point an OpenAI SDK at the team's gateway with the key above:"</p>
                            <pre><code id="gateway-usage">{format!("from openai import OpenAI\nclient = OpenAI(base_url=\"{}/v1\", api_key=\"kt_gk_…\")", r.gateway_url)}</code></pre>
                        </section>
                    })}
                </Frame>
            }
        })}
    }
}
