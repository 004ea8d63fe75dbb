//! `kt serve`: the web console and control-plane API on one port.

use anyhow::Context as _;
use clap::Args;

use super::Failure;
use crate::settings::DbArgs;
use crate::{AppState, console};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "KT_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: String,
    /// How tenant gateways of onboarded teams run: `local` (this process
    /// supervises a gateway worker per team) or `kubernetes` (manifests are
    /// rendered for you to apply).
    #[arg(long, env = "KT_RUNNER", default_value = "local", value_parser = ["local", "kubernetes"])]
    pub runner: String,
    #[command(flatten)]
    pub db: DbArgs,
}

/// A console bound to its address, ready to serve.
pub struct Bound {
    pub url: String,
    listener: tokio::net::TcpListener,
    router: axum::Router,
}

/// Connects, migrates, builds the app and binds the address.
pub async fn bind(
    db: store::Db,
    master_key: store::crypto::MasterKey,
    db_args: &DbArgs,
    runner: &str,
    addr: &str,
) -> anyhow::Result<Bound> {
    let data_dir = &db_args.data_dir;
    let git = gitsync::Syncer::new(db.clone(), master_key.clone(), data_dir.join("git"));
    let runner = match runner {
        "kubernetes" => provision::Runner::Kubernetes,
        _ => provision::Runner::Local(std::sync::Arc::new(provision::LocalRunner::new(
            std::env::current_exe().context("locating the kt binary for the local runner")?,
            std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.clone()),
            db_args.database_url(),
        ))),
    };
    let provision = provision::Provisioner::new(db.clone(), master_key.clone(), runner);
    provision
        .start()
        .await
        .context("seeding the onboarding templates")?;
    // Linked Git repositories are polled, and webhook deliveries sent, for as
    // long as the process runs.
    tokio::spawn(git.clone().poll_forever());
    tokio::spawn(crate::notify::deliver_forever(
        db.clone(),
        master_key.clone(),
    ));
    tokio::spawn(crate::notify::watch_forever(db.clone()));
    let state = AppState {
        db,
        master_key,
        leptos_options: console::leptos_options(),
        git,
        provision,
    };
    let router = crate::app(state).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr}: is the port already in use? (--addr)")
    })?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok(Bound {
        url,
        listener,
        router,
    })
}

impl Bound {
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        use axum::serve::ListenerExt as _;
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")
    }
}

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let db = args.db.connect().await?;
    let key = args.db.checked_master_key(&db).await?;
    let bound = bind(db, key, &args.db, &args.runner, &args.addr).await?;
    println!("kt serve: listening on {}", bound.url);
    bound.serve(super::shutdown_signal()).await?;
    Ok(())
}
