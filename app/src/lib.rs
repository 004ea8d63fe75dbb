//! kt's web console: the Leptos application shared by the server (feature
//! `ssr`, which renders pages and runs server functions) and the browser
//! (feature `hydrate`, which makes the rendered pages interactive).
//!
//! Pages live in [`pages`], reusable pieces in [`components`]. Server-side
//! state ([`state::ConsoleState`]) and session handling ([`auth`]) exist only
//! under `ssr`, so the wasm build never sees the database.

#![recursion_limit = "256"]

pub mod access;
pub mod components;
pub mod format;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod charts;
#[cfg(feature = "ssr")]
pub mod state;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{ParamSegment, SsrMode, StaticSegment};

use crate::pages::api_reference::ApiReferencePage;
use crate::pages::audit::AuditPage;
use crate::pages::configs::ConfigsPage;
use crate::pages::cost::CostPage;
use crate::pages::dashboard::DashboardPage;
use crate::pages::escalations::EscalationsPage;
use crate::pages::fleet::FleetPage;
use crate::pages::gateway::GatewayPage;
use crate::pages::git::GitPage;
use crate::pages::login::LoginPage;
use crate::pages::onboarding::{OnboardingPage, OnboardingRequestPage};
use crate::pages::settings::SettingsIndex;
use crate::pages::settings::keys::KeysPage;
use crate::pages::settings::secrets::SecretsPage;
use crate::pages::settings::teams::TeamsPage;
use crate::pages::settings::templates::TemplatesPage;
use crate::pages::settings::users::UsersPage;
use crate::pages::settings::webhooks::WebhooksPage;

/// The name of the wasm/JS/CSS bundle under `/pkg` (see scripts/build-site.sh).
pub const OUTPUT_NAME: &str = "kt";

/// The HTML document around the application (server side).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <script src="/echarts.min.js" defer></script>
                <script src="/charts.js" defer></script>
                <script src="/console.js" defer></script>
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The console's routes. Pages that load data render with
/// [`SsrMode::Async`], so the HTML is complete without JavaScript.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="kt" href="/pkg/kt.css" />
        <Title formatter=|page: String| format!("{page} · kt") />
        <Router>
            <Routes fallback=|| view! { <pages::NotFound /> }>
                <Route path=StaticSegment("") view=DashboardPage ssr=SsrMode::Async />
                <Route path=StaticSegment("login") view=LoginPage ssr=SsrMode::Async />
                <Route path=StaticSegment("gateways") view=FleetPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("gateways"), ParamSegment("id")) view=GatewayPage ssr=SsrMode::Async />
                <Route path=StaticSegment("onboarding") view=OnboardingPage ssr=SsrMode::Async />
                <Route path=StaticSegment("escalations") view=EscalationsPage ssr=SsrMode::Async />
                <Route path=StaticSegment("audit") view=AuditPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("onboarding"), ParamSegment("id")) view=OnboardingRequestPage ssr=SsrMode::Async />
                <Route path=StaticSegment("cost") view=CostPage ssr=SsrMode::Async />
                <Route path=StaticSegment("configs") view=ConfigsPage ssr=SsrMode::Async />
                <Route path=StaticSegment("git") view=GitPage ssr=SsrMode::Async />
                <Route path=StaticSegment("settings") view=SettingsIndex ssr=SsrMode::Async />
                <Route path=(StaticSegment("settings"), StaticSegment("keys")) view=KeysPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("settings"), StaticSegment("teams")) view=TeamsPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("settings"), StaticSegment("users")) view=UsersPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("settings"), StaticSegment("secrets")) view=SecretsPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("settings"), StaticSegment("webhooks")) view=WebhooksPage ssr=SsrMode::Async />
                <Route path=(StaticSegment("settings"), StaticSegment("templates")) view=TemplatesPage ssr=SsrMode::Async />
                <Route path=StaticSegment("api-reference") view=ApiReferencePage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
