//! `kt demo`: the quick start. Runs the console and a bundled gateway on the
//! embedded SQLite default, with the built-in demo provider (no vendor keys),
//! creates what a newcomer needs (an admin user, a `demo` team and its
//! gateway key), sends a first request through the gateway, and prints where
//! to sign in and with what.
//!
//! Credentials are kept in the data directory (mode 0600) so that running it
//! again prints the same ones.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use store::Scope;
use store::crypto::TokenKind;
use store::teams::NewTeam;
use store::tokens::NewToken;

use super::Failure;
use crate::settings::{DbArgs, write_private_file};

/// The quick-start policy config, also in the repository at configs/teams/demo.yaml.
const DEMO_CONFIG: &str = include_str!("../../../configs/teams/demo.yaml");
pub const ADMIN_EMAIL: &str = "admin@kt.local";
const TEAM_SLUG: &str = "demo";
const PASSWORD_FILE: &str = "demo-admin-password";
const KEY_FILE: &str = "demo-gateway-key";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Console address.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: String,
    /// Port of the bundled gateway (on 127.0.0.1).
    #[arg(long, default_value_t = 8080)]
    pub gateway_port: u16,
    /// Use this policy config instead of the built-in demo one.
    #[arg(long)]
    pub policy_config: Option<PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
}

pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    let db = args.db.connect().await?;
    crate::settings::ensure_private_dir(&args.db.data_dir)?;
    let master_key = args.db.checked_master_key(&db).await?;
    let password = ensure_admin(&db, &args.db.data_dir).await?;
    let org = db.scoped(Scope::Org);
    let team = match store::teams::by_slug(&db, TEAM_SLUG)
        .await
        .context("looking up the demo team")?
    {
        Some(team) => team,
        None => org
            .create_team(&NewTeam {
                name: "Demo".to_owned(),
                slug: TEAM_SLUG.to_owned(),
            })
            .await
            .context("creating the demo team")?,
    };
    let key = ensure_gateway_key(&db, &args.db.data_dir, &team.team_id).await?;

    let config_path = match &args.policy_config {
        Some(path) => path.clone(),
        None => {
            let path = args.db.data_dir.join("demo.yaml");
            std::fs::write(&path, DEMO_CONFIG)
                .with_context(|| format!("writing {}", path.display()))?;
            path
        }
    };
    let loaded = super::gateway::load_config(&config_path)?;
    let listen = format!("127.0.0.1:{}", args.gateway_port);
    let gateway = super::gateway::start(
        db.clone(),
        &args.db.data_dir.join("spool"),
        loaded,
        super::gateway::WorkerOptions {
            name: "demo".to_owned(),
            team_slugs: &[],
            listen: &listen,
            redis_url: None,
            master_key: Some(master_key.clone()),
            environment: None,
        },
    )
    .await?;
    let gateway_url = format!("http://{}", gateway.addr);
    let upstream = demo_upstream()
        .await
        .context("starting the demo provider for onboarded teams")?;
    demo_provider_default(&org, &master_key, &upstream)
        .await
        .context("connecting onboarded teams to the demo provider")?;
    let console = super::serve::bind(db, master_key, &args.db, "local", &args.addr).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let console_url = console.url.clone();
    let console_task = tokio::spawn(console.serve(stopped(stop_rx.clone())));
    let gateway_task = tokio::spawn(gateway.serve(stopped(stop_rx)));

    let first = first_request(&gateway_url, &key).await;
    print_banner(&console_url, &password, &gateway_url, &key, first);

    super::shutdown_signal().await;
    let _ = stop_tx.send(true);
    for task in [console_task, gateway_task] {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(Failure::Runtime(err)),
            Err(err) => return Err(Failure::Runtime(err.into())),
        }
    }
    Ok(())
}

/// Serves the built-in demo provider over HTTP on a free loopback port
/// (OpenAI `POST /v1/chat/completions` and Anthropic `POST /v1/messages`,
/// streaming included), for the gateways of teams onboarded in the demo.
/// It is an upstream, not a gateway: it applies no team's policies. Returns
/// its base URL (`http://127.0.0.1:PORT/v1`).
async fn demo_upstream() -> anyhow::Result<String> {
    use axum::body::{Body, Bytes};
    use axum::response::{IntoResponse, Response};
    use gateway::providers::{Answer, demo};
    fn respond(answer: Answer) -> Response {
        match answer {
            Answer::Complete { status, body } => {
                (status, [("content-type", "application/json")], body).into_response()
            }
            Answer::Stream { status, body } => (
                status,
                [("content-type", "text/event-stream")],
                Body::from_stream(body),
            )
                .into_response(),
        }
    }
    fn parse(body: &Bytes) -> (serde_json::Value, bool) {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let stream = value.get("stream").and_then(serde_json::Value::as_bool) == Some(true);
        (value, stream)
    }
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            axum::routing::post(|body: Bytes| async move {
                let (v, stream) = parse(&body);
                respond(demo::chat(&v, stream))
            }),
        )
        .route(
            "/v1/messages",
            axum::routing::post(|body: Bytes| async move {
                let (v, stream) = parse(&body);
                respond(demo::messages(&v, stream))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "the demo provider stopped");
        }
    });
    Ok(format!("http://{addr}/v1"))
}

/// Makes the demo provider the organisation's OpenAI and Anthropic
/// connection when there is none, so teams onboarded in the demo (their
/// templates use the organisation's connections) get demo answers without a
/// vendor key. A real default set by an admin is left alone.
async fn demo_provider_default(
    org: &store::Scoped,
    master_key: &store::crypto::MasterKey,
    upstream: &str,
) -> anyhow::Result<()> {
    let org = org.clone().acting_as("kt demo");
    let existing = org.list_providers().await?;
    // The demo provider checks no key; the targets want one to send.
    org.put_secret(master_key, DEMO_SECRET, None, "demo-provider-needs-no-key")
        .await?;
    for kind in ["openai", "anthropic"] {
        if existing
            .iter()
            .any(|p| p.kind == kind && p.secret_name.as_deref() != Some(DEMO_SECRET))
        {
            continue;
        }
        org.set_provider(kind, Some(upstream), Some(DEMO_SECRET))
            .await?;
    }
    Ok(())
}

/// The (placeholder) key of the demo provider connection.
const DEMO_SECRET: &str = "demo-provider";

/// Ensures the admin user exists with the password kept in the data dir.
async fn ensure_admin(db: &store::Db, data_dir: &std::path::Path) -> anyhow::Result<String> {
    let file = data_dir.join(PASSWORD_FILE);
    let saved = std::fs::read_to_string(&file)
        .ok()
        .map(|s| s.trim().to_owned());
    let existing = store::users::credentials(db, ADMIN_EMAIL).await?;
    if let (Some(password), Some(creds)) = (&saved, &existing) {
        let (pw, hash) = (password.clone(), creds.password_hash.clone());
        if tokio::task::spawn_blocking(move || store::crypto::verify_password(&pw, &hash)).await? {
            return Ok(password.clone());
        }
    }
    let password = store::crypto::random_password();
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || store::crypto::hash_password(&pw)).await??;
    if existing.is_some() {
        store::users::set_password(db, ADMIN_EMAIL, &hash).await?;
    } else {
        let mut tx = db.begin().await?;
        store::users::create(&mut tx, ADMIN_EMAIL, &hash, "admin").await?;
        tx.commit().await?;
    }
    write_private_file(&file, &password)?;
    Ok(password)
}

/// Reuses the saved demo gateway key while it is valid, else creates one.
async fn ensure_gateway_key(
    db: &store::Db,
    data_dir: &std::path::Path,
    team_id: &str,
) -> anyhow::Result<String> {
    let file = data_dir.join(KEY_FILE);
    if let Ok(saved) = std::fs::read_to_string(&file) {
        let saved = saved.trim().to_owned();
        if store::tokens::authenticate(db, &saved).await?.is_some() {
            return Ok(saved);
        }
    }
    let created = db
        .scoped(Scope::Org)
        .create_token(&NewToken {
            name: "demo gateway key".to_owned(),
            kind: TokenKind::Gateway,
            team_id: Some(team_id.to_owned()),
            expires_at: None,
            user_id: None,
        })
        .await?;
    write_private_file(&file, &created.secret)?;
    Ok(created.secret)
}

/// Sends one request through the gateway so the Dashboard has something to show.
async fn first_request(gateway_url: &str, key: &str) -> Result<String, String> {
    let body = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello kt! This is my first request."}],
    });
    let response = reqwest::Client::new()
        .post(format!("{gateway_url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {answer}"));
    }
    Ok(answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

fn print_banner(
    console: &str,
    password: &str,
    gateway: &str,
    key: &str,
    first: Result<String, String>,
) {
    let first = match first {
        Ok(answer) => format!(
            "sent; the gateway answered: \"{}\"",
            answer.chars().take(60).collect::<String>() + "…"
        ),
        Err(err) => format!("FAILED: {err}"),
    };
    println!(
        "
kt is running — DEMO MODE: answers come from the built-in demo provider; no vendor is called.

  Console   {console}
            sign in as {ADMIN_EMAIL} / {password}
  Gateway   {gateway}/v1   (OpenAI-compatible; team `{TEAM_SLUG}`)
            key: {key}
  First request: {first}

  Try another one:
    curl {gateway}/v1/chat/completions \\
      -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
      -d '{{\"model\": \"gpt-4o-mini\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hi\"}}]}}'

Press Ctrl-C to stop.
kt serve: listening on {console}"
    );
}
