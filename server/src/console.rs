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
        .with_secure(secure_cookies())
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::seconds(SESSION_IDLE.as_secs() as i64),
        ));

    let console_state = ConsoleState {
        db: state.db.clone(),
        leptos_options: state.leptos_options.clone(),
        throttle: Default::default(),
        master_key: state.master_key.clone(),
        git: state.git.clone(),
        provision: state.provision.clone(),
        openapi: std::sync::Arc::new(
            serde_json::to_value(crate::http::openapi::document())
                .context("serialising the OpenAPI document")?,
        ),
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
        .route("/cost/export.csv", axum::routing::get(cost_csv))
        .route("/audit/export.csv", axum::routing::get(audit_csv))
        .fallback_service(site)
        .layer(axum::middleware::from_fn(same_origin_posts))
        .layer(session_layer)
        .with_state(state))
}

/// Whether the session cookie is marked `Secure` (sent over HTTPS only):
/// `KT_SECURE_COOKIES=true` when the console is served over HTTPS (behind
/// a TLS-terminating proxy); off by default so `http://127.0.0.1` works.
fn secure_cookies() -> bool {
    std::env::var("KT_SECURE_COOKIES")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// CSRF defence in depth (the session cookie is already `SameSite=Strict`):
/// a state-changing request to the console from another site is refused.
/// Browsers say where a request comes from in `Sec-Fetch-Site` (modern) or
/// `Origin`; a request with neither did not come from a browser page.
async fn same_origin_posts(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{Method, StatusCode, header};
    use axum::response::IntoResponse;
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !req.uri().path().starts_with("/v1/") {
        let headers = req.headers();
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let cross = match site {
            Some(site) => !matches!(site, "same-origin" | "none"),
            None => match (
                headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
                headers.get(header::HOST).and_then(|v| v.to_str().ok()),
            ) {
                (Some(origin), Some(host)) => {
                    origin.split_once("://").map(|(_, h)| h) != Some(host)
                }
                (Some(_), None) => true,
                (None, _) => false,
            },
        };
        if cross {
            tracing::warn!(path = %req.uri().path(), "refused a cross-site form post");
            return (
                StatusCode::FORBIDDEN,
                "cross-site request refused: submit the form from the kt console itself",
            )
                .into_response();
        }
    }
    next.run(req).await
}

#[derive(serde::Deserialize)]
struct CsvQuery {
    #[serde(default)]
    range: String,
}

/// The signed-in console user of a plain (non server-function) request, or
/// the answer to give instead: a redirect to sign in, or 503.
async fn session_caller(
    state: &AppState,
    session: &tower_sessions::Session,
) -> Result<app::auth::Caller, axum::response::Response> {
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Redirect};
    let unavailable = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable; retry shortly",
        )
            .into_response()
    };
    let user_id = match session.get::<String>(app::auth::USER_KEY).await {
        Ok(Some(id)) => id,
        Ok(None) => return Err(Redirect::to("/login").into_response()),
        Err(err) => {
            tracing::error!(error = %err, "reading the session failed");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    let user = match store::users::get(&state.db, &user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(Redirect::to("/login").into_response()),
        Err(err) => {
            tracing::error!(error = %err, "loading the user failed");
            return Err(unavailable());
        }
    };
    app::auth::caller(&state.db, user).await.map_err(|err| {
        tracing::error!(error = %err, "loading the user's scope failed");
        unavailable()
    })
}

/// A CSV download (no caching: the figures are the caller's).
fn csv_download(name: &str, body: String) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// `GET /cost/export.csv?range=…`: the Cost Center's figures as CSV, for
/// the signed-in user's scope (a plain download, so it works without
/// JavaScript).
async fn cost_csv(
    axum::extract::State(state): axum::extract::State<AppState>,
    session: tower_sessions::Session,
    axum::extract::Query(q): axum::extract::Query<CsvQuery>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let caller = match session_caller(&state, &session).await {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    match app::pages::cost::load::figures(&caller.scoped, caller.me, &q.range, None, false).await {
        Ok(figures) => csv_download(
            &format!("kt-cost-{}.csv", figures.range),
            app::pages::cost::load::csv(&figures),
        ),
        Err(err) => {
            tracing::error!(error = %err, "building the cost export failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the export failed; see the server log",
            )
                .into_response()
        }
    }
}

/// `GET /audit/export.csv?actor=&action=&team=&since=`: the audit entries
/// the Audit log page shows, as CSV (org admins; team leads their team's).
async fn audit_csv(
    axum::extract::State(state): axum::extract::State<AppState>,
    session: tower_sessions::Session,
    axum::extract::Query(q): axum::extract::Query<app::pages::audit::AuditQuery>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let caller = match session_caller(&state, &session).await {
        Ok(c) => c,
        Err(answer) => return answer,
    };
    if !caller.me.role.reads_audit() {
        return (StatusCode::FORBIDDEN, app::access::FORBIDDEN).into_response();
    }
    match app::pages::audit::load::rows(&caller.scoped, &q).await {
        Ok(rows) => csv_download("kt-audit.csv", app::pages::audit::load::csv(&rows)),
        Err(err) => {
            tracing::error!(error = %err, "building the audit export failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the export failed; see the server log",
            )
                .into_response()
        }
    }
}
