//! Mounting the Leptos console: pages rendered on the server, server
//! functions, sessions, and the static site (wasm bundle, CSS, ECharts).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use app::state::ConsoleState;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::services::ServeDir;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::AppState;
use crate::session_store::DbSessionStore;

/// Idle time after which a console session expires.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);

/// Where the built site (`pkg/kt.js`, `pkg/kt_bg.wasm`, `pkg/kt.css`,
/// `echarts.min.js`, `charts.js`) is: `KT_SITE_DIR`, else `target/site`
/// beside the executable (`target/debug/kt` → `target/site`), else
/// `./target/site`.
pub fn site_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("KT_SITE_DIR") {
        return PathBuf::from(dir);
    }
    let beside_exe = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("site")));
    match beside_exe {
        Some(dir) if dir.join("pkg").is_dir() => dir,
        _ => PathBuf::from("target/site"),
    }
}

pub fn leptos_options() -> LeptosOptions {
    let root = site_root();
    if !root
        .join("pkg")
        .join(format!("{}.js", app::OUTPUT_NAME))
        .is_file()
    {
        tracing::warn!(
            site = %root.display(),
            "the console's browser bundle is missing: pages render, but without interactivity. Build it with scripts/build-site.sh"
        );
    }
    LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(root.display().to_string())
        .site_pkg_dir("pkg")
        .build()
}

pub async fn router(state: AppState) -> anyhow::Result<Router> {
    let sessions = DbSessionStore::new(&state.db)
        .await
        .context("preparing the session table")?;
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name("kt_session")
        .with_same_site(SameSite::Strict)
        .with_http_only(true)
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(SESSION_IDLE.as_secs() as i64),
        ));

    let console_state = ConsoleState {
        db: state.db.clone(),
        leptos_options: state.leptos_options.clone(),
    };
    let routes = generate_route_list(app::App);
    let options = state.leptos_options.clone();
    let site = ServeDir::new(options.site_root.as_ref());
    Ok(Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(console_state.clone()),
            move || app::shell(options.clone()),
        )
        .fallback_service(site)
        .layer(session_layer)
        .with_state(state))
}
