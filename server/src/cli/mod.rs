//! Subcommands, one module each. Exit codes (SPEC §3): 0 success, 1 runtime
//! failure, 2 invalid input.

pub mod admin;
pub mod api;
pub mod demo;
pub mod doctor;
pub mod events;
pub mod gateway;
pub mod lint;
pub mod onboard;
pub mod serve;
pub mod teams;
pub mod tokens;
pub mod wallets;

use clap::{Parser, Subcommand};

/// kt: a self-hosted, multi-tenant AI gateway platform.
#[derive(Debug, Parser)]
#[command(name = "kt", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web console and the control-plane API.
    Serve(serve::ServeArgs),
    /// Gateway workers.
    #[command(subcommand)]
    Gateway(gateway::GatewayCommand),
    /// Policy configuration tools.
    #[command(subcommand)]
    Policy(lint::PolicyCommand),
    /// Administration: users and org-admin tokens.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Diagnose the installation: database, master key, configs, fleet, API.
    Doctor(doctor::DoctorArgs),
    /// Quick start: console + a bundled gateway with the built-in demo provider.
    Demo(demo::DemoArgs),
    /// Request events through the control-plane API.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Teams (tenants) through the control-plane API.
    #[command(subcommand)]
    Teams(teams::TeamsCommand),
    /// Gateway keys and API access tokens through the control-plane API.
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Team wallets (credit and spend) through the control-plane API.
    #[command(subcommand)]
    Wallets(wallets::WalletsCommand),
    /// Self-service onboarding: request, approve (provision), reject, manifests.
    #[command(subcommand)]
    Onboard(onboard::OnboardCommand),
}

/// How a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Invalid input (exit code 2); the message is complete as is.
    Invalid(String),
    /// Runtime failure (exit code 1).
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Runtime(err)
    }
}

impl Cli {
    pub async fn run(self) -> Result<(), Failure> {
        match self.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Gateway(gateway::GatewayCommand::Run(args)) => gateway::run(args).await,
            Command::Policy(lint::PolicyCommand::Lint(args)) => lint::run(&args),
            Command::Policy(lint::PolicyCommand::Schema) => {
                println!("{}", policy::SCHEMA.trim_end());
                Ok(())
            }
            Command::Admin(cmd) => admin::run(cmd).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Events(cmd) => events::run(cmd).await,
            Command::Teams(cmd) => teams::run(cmd).await,
            Command::Tokens(cmd) => tokens::run(cmd).await,
            Command::Wallets(cmd) => wallets::run(cmd).await,
            Command::Onboard(cmd) => onboard::run(cmd).await,
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn,leptos=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
