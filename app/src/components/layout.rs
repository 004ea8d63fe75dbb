//! The signed-in page frame: header with navigation and sign-out.

use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::pages::login::Logout;

#[component]
pub fn Header(email: String) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                "kt"
            </a>
            <nav>
                <a href="/">"Dashboard"</a>
            </nav>
            <div class="who">
                <span class="email">{email}</span>
                <ActionForm action=logout>
                    <button type="submit" class="link">
                        "Sign out"
                    </button>
                </ActionForm>
            </div>
        </header>
    }
}

/// Tracks whether the page has hydrated: effects only run in the browser, so
/// the attribute reads `false` in server HTML and `true` once the wasm runs.
pub fn hydrated_signal() -> ReadSignal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    hydrated
}
