//! The console's pages, one module each.

pub mod api_reference;
pub mod audit;
pub mod configs;
pub mod cost;
pub mod dashboard;
pub mod escalations;
pub mod fleet;
pub mod gateway;
pub mod git;
pub mod login;
pub mod onboarding;
pub mod settings;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(axum::http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <main class="narrow">
            <h1>"Page not found"</h1>
            <p>
                <a href="/">"Back to the Dashboard"</a>
            </p>
        </main>
    }
}
