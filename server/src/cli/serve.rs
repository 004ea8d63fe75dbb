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
    data_dir: &std::path::Path,
    addr: &str,
) -> anyhow::Result<Bound> {
    let git = gitsync::Syncer::new(db.clone(), master_key.clone(), data_dir.join("git"));
    // Linked Git repositories are polled for as long as the process runs.
    tokio::spawn(git.clone().poll_forever());
    let state = AppState {
        db,
        master_key,
        leptos_options: console::leptos_options(),
        git,
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
    let bound = bind(db, key, &args.db.data_dir, &args.addr).await?;
    println!("kt serve: listening on {}", bound.url);
    bound.serve(super::shutdown_signal()).await?;
    Ok(())
}
