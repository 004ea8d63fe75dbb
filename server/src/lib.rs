//! The `kt` binary's library: the console + control-plane API server
//! ([`app`]), the CLI subcommands ([`cli`]) and the settings they share.
//!
//! `main` only parses arguments and dispatches; tests build the same router
//! with [`app`].

#![recursion_limit = "256"]

pub mod cli;
pub mod console;
pub mod http;
pub mod notify;
pub mod session_store;
pub mod settings;

use axum::Router;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use store::Db;

/// State shared by API handlers and console pages.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    /// Seals provider secrets (write-only through the API).
    pub master_key: store::crypto::MasterKey,
    pub leptos_options: LeptosOptions,
    /// Links and syncs Git repositories (mirrors under `KT_DATA_DIR/git`).
    pub git: std::sync::Arc<gitsync::Syncer>,
    /// Onboarding's provisioning pipeline and gateway runner.
    pub provision: std::sync::Arc<provision::Provisioner>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The whole `kt serve` application: `/v1` API, probes, console pages,
/// server functions and static assets.
pub async fn app(state: AppState) -> anyhow::Result<Router> {
    let console = console::router(state.clone()).await?;
    Ok(Router::new()
        .nest("/v1", http::router())
        .merge(http::probes())
        .with_state(state)
        .merge(console))
}
