//! Settings: keys, teams and members, users and roles, provider secrets.
//! Every change is a plain HTML form posted to a server function, which
//! checks the role, acts through the scoped store (audited), stores the
//! outcome in the session and redirects back (works without JavaScript).
//! Destructive actions go through a confirmation step (`?confirm=…`).

pub mod keys;
pub mod secrets;
pub mod teams;
pub mod templates;
pub mod users;
pub mod webhooks;

use leptos::prelude::*;

use crate::access::{Role, SETTINGS};
use crate::components::layout::NavLinks;

/// The Settings section tabs.
#[component]
pub fn SettingsTabs(role: Role) -> impl IntoView {
    view! { <NavLinks items=SETTINGS role class="tabs" label="Settings sections" /> }
}

/// A `(team_id, slug)` pair for team pickers.
pub type TeamOption = (String, String);

/// A team picker; `none` adds an empty choice with that label (first, or
/// last with `none_last`, so that the first team is the default).
#[component]
pub fn TeamSelect(
    teams: Vec<TeamOption>,
    #[prop(optional)] none: Option<&'static str>,
    #[prop(optional)] none_last: bool,
    #[prop(optional)] selected: Option<String>,
) -> impl IntoView {
    let empty = move || view! { <option value="">{none}</option> };
    view! {
        <select name="team_id">
            {(none.is_some() && !none_last).then(empty)}
            {teams
                .into_iter()
                .map(|(id, slug)| {
                    let is = selected.as_deref() == Some(id.as_str());
                    view! { <option value=id selected=is>{slug}</option> }
                })
                .collect_view()}
            {(none.is_some() && none_last).then(empty)}
        </select>
    }
}

/// Team pickers' choices: the teams the caller may see, not archived.
#[cfg(feature = "ssr")]
pub async fn team_options(scoped: &store::Scoped) -> Result<Vec<TeamOption>, ServerFnError> {
    Ok(scoped
        .list_teams()
        .await
        .map_err(crate::auth::internal)?
        .into_iter()
        .filter(|t| t.archived_at.is_none())
        .map(|t| (t.team_id, t.slug))
        .collect())
}

/// A confirmation box for a destructive action: a form that posts `fields`
/// to `action`, and a way back.
#[component]
pub fn Confirm(
    question: String,
    action: &'static str,
    fields: Vec<(&'static str, String)>,
    button: &'static str,
    back: &'static str,
) -> impl IntoView {
    view! {
        <section class="panel confirm" role="alertdialog" aria-labelledby="confirm-q">
            <p id="confirm-q"><strong>{question}</strong></p>
            <form method="post" action=action class="inline-form">
                {fields
                    .into_iter()
                    .map(|(name, value)| view! { <input type="hidden" name=name value=value /> })
                    .collect_view()}
                <button type="submit" class="danger">{button}</button>
                <a class="button secondary" href=back>"Cancel"</a>
            </form>
        </section>
    }
}

/// `/settings`: the first section the role may open.
#[component]
pub fn SettingsIndex() -> impl IntoView {
    view! { <leptos_router::components::Redirect path="/settings/keys" /> }
}
