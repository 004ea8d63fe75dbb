//! `kt admin`: bootstrap a console user and org-admin API tokens.

use std::io::BufRead;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::Failure;
use crate::settings::DbArgs;

/// Shortest password accepted for a console user.
const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a console user; the password is read from stdin (first line).
    CreateUser(CreateUserArgs),
    /// Print a new org-admin API token (kt_ak_…); it is shown only once.
    CreateToken(CreateTokenArgs),
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[arg(long)]
    pub email: String,
    /// admin, team_lead, member or viewer.
    #[arg(long, default_value = "admin")]
    pub role: String,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub db: DbArgs,
}

pub async fn run(cmd: AdminCommand) -> Result<(), Failure> {
    match cmd {
        AdminCommand::CreateUser(args) => create_user(args).await,
        AdminCommand::CreateToken(args) => {
            let db = args.db.connect().await?;
            let token = store::tokens::create_org_admin(&db, &args.name)
                .await
                .context("creating the token")?;
            eprintln!(
                "org-admin token `{}` created; it is shown only once:",
                args.name
            );
            println!("{}", token.secret);
            Ok(())
        }
    }
}

async fn create_user(args: CreateUserArgs) -> Result<(), Failure> {
    let email = args.email.trim().to_lowercase();
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(Failure::Invalid(format!(
            "error: --email `{}` is not an email address",
            args.email
        )));
    }
    if !store::users::ROLES.contains(&args.role.as_str()) {
        return Err(Failure::Invalid(format!(
            "error: --role `{}` is not a role; use one of: {}",
            args.role,
            store::users::ROLES.join(", ")
        )));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("Password for {email} (input is visible; pipe it in to avoid that):");
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Failure::Invalid(format!(
            "error: the password must have at least {MIN_PASSWORD_LEN} characters (read from stdin, first line)"
        )));
    }
    let db = args.db.connect().await?;
    let hash = tokio::task::spawn_blocking(move || store::crypto::hash_password(&password))
        .await
        .context("hashing the password")?
        .context("hashing the password")?;
    let created = async {
        let mut tx = db.begin().await?;
        let user = store::users::create(&mut tx, &email, &hash, &args.role).await?;
        tx.commit().await?;
        Ok::<_, store::StoreError>(user)
    };
    match created.await {
        Ok(user) => {
            println!("created {} user {}", user.role, user.email);
            Ok(())
        }
        Err(store::StoreError::Conflict(_)) => Err(Failure::Invalid(format!(
            "error: a user with email {email} already exists"
        ))),
        Err(err) => Err(Failure::Runtime(err.into())),
    }
}
