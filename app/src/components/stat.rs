//! A headline number.

use leptos::prelude::*;

#[component]
pub fn Stat(
    label: &'static str,
    value: String,
    testid: &'static str,
    #[prop(optional, into)] note: Option<String>,
) -> impl IntoView {
    view! {
        <div class="stat">
            <div class="stat-label">{label}</div>
            <div class="stat-value" data-testid=testid>
                {value}
            </div>
            {note.map(|n| view! { <div class="stat-note muted">{n}</div> })}
        </div>
    }
}
