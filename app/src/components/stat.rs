//! A headline number.

use leptos::prelude::*;

#[component]
pub fn Stat(label: &'static str, value: String, testid: &'static str) -> impl IntoView {
    view! {
        <div class="stat">
            <div class="stat-label">{label}</div>
            <div class="stat-value" data-testid=testid>
                {value}
            </div>
        </div>
    }
}
