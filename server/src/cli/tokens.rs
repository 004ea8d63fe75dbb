//! `kt tokens`: gateway keys (`kt_gk_…`, for applications) and API access
//! tokens (`kt_ak_…`), through the control-plane API (`/v1/tokens`, SPEC §6).
//! A new token's secret is printed once, labelled; the API keeps only its
//! hash.

use std::collections::HashMap;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Failure;
use super::api::{self, ApiArgs, Client, cell, count, print_json, print_text, table, utc};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// The tokens this token sees (never their secrets).
    List(ListArgs),
    /// Create a gateway key or an access token; its secret is printed once.
    Create(CreateArgs),
    /// Revoke a token: it stops working at once.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this team's tokens (its slug).
    #[arg(long, value_name = "SLUG", value_parser = api::id)]
    pub team: Option<String>,
    /// Print the API's tokens as one JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What the token is for, e.g. "checkout-service".
    #[arg(long, value_parser = api::nonempty)]
    pub name: String,
    /// `gateway`: a kt_gk_ key applications send to a gateway; `access`: a
    /// kt_ak_ token for this API and `kt`.
    #[arg(long = "type", value_name = "TYPE", value_parser = ["gateway", "access"])]
    pub token_type: String,
    /// The team it belongs to (its slug); without it the token is org-wide
    /// (an org-wide access token is an org admin's).
    #[arg(long, value_name = "SLUG", value_parser = api::id)]
    pub team: Option<String>,
    /// When it stops working: an RFC 3339 time in the future
    /// (e.g. 2027-01-31T00:00:00Z). Default: never.
    #[arg(long, value_name = "RFC3339", value_parser = parse_expires)]
    pub expires: Option<String>,
    /// A personal access token that acts as this console user (an org
    /// admin, or a team lead, who then gets their team's scope): for
    /// escalation reviewers using the API.
    #[arg(long, value_name = "EMAIL", value_parser = api::nonempty, conflicts_with = "team")]
    pub user: Option<String>,
    /// Print the API's whole answer (secret included) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token's id (the ID column of `kt tokens list`).
    #[arg(value_name = "ID", value_parser = api::id)]
    pub id: String,
    /// Print the API's answer (the revoked token) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

fn parse_expires(value: &str) -> Result<String, String> {
    let value = value.trim();
    let at = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("`{value}` is not an RFC 3339 time: use e.g. 2027-01-31T00:00:00Z"))?;
    if at <= time::OffsetDateTime::now_utc() {
        return Err(format!(
            "{value} is in the past: give a future time, or leave --expires out for a token that does not expire"
        ));
    }
    Ok(value.to_owned())
}

pub async fn run(cmd: TokensCommand) -> Result<(), Failure> {
    match cmd {
        TokensCommand::List(args) => list(args).await,
        TokensCommand::Create(args) => create(args).await,
        TokensCommand::Revoke(args) => revoke(args).await,
    }
}

/// `gateway key` or `access token`.
fn kind(token: &Value) -> &'static str {
    match token["token_type"].as_str() {
        Some("gateway") => "gateway key",
        Some("access") => "access token",
        _ => "token",
    }
}

/// The team of a token as a slug (`org-wide` when it has none).
fn team_of(token: &Value, slugs: &HashMap<String, String>) -> String {
    match token["team_id"].as_str() {
        Some(id) => slugs.get(id).cloned().unwrap_or_else(|| id.to_owned()),
        None => "org-wide".to_owned(),
    }
}

/// `active`, `revoked`, or `expired`.
fn status(token: &Value) -> &'static str {
    if token["revoked_at"].is_string() {
        return "revoked";
    }
    let expired = token["expires_at"].as_str().is_some_and(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|at| at <= time::OffsetDateTime::now_utc())
    });
    if expired { "expired" } else { "active" }
}

/// Team slugs by id: every team this token sees, archived ones included.
async fn all_slugs(client: &Client) -> Result<HashMap<String, String>, Failure> {
    Ok(api::slug_map(&client.teams(true).await?))
}

async fn list(args: ListArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let slugs = all_slugs(&client).await?;
    let team_id = args
        .team
        .as_deref()
        .map(|team| api::resolve_team("--team", team, &slugs))
        .transpose()?;
    let mut tokens = client.list("/v1/tokens", &[]).await?;
    if let Some(team_id) = &team_id {
        tokens.retain(|t| t["team_id"].as_str() == Some(team_id.as_str()));
    }
    if args.json {
        return print_json(&Value::Array(tokens));
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                cell(&t["id"]),
                cell(&t["name"]),
                cell(&t["token_type"]),
                team_of(t, &slugs),
                format!("{}…", cell(&t["prefix"])),
                utc(&t["created_at"]),
                utc(&t["expires_at"]),
                utc(&t["last_used_at"]),
                status(t).to_owned(),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        String::new()
    } else {
        table(
            &[
                "ID",
                "NAME",
                "TYPE",
                "TEAM",
                "PREFIX",
                "CREATED (UTC)",
                "EXPIRES (UTC)",
                "LAST USED (UTC)",
                "STATUS",
            ],
            &rows,
            &[],
        )
    };
    let active = tokens.iter().filter(|t| status(t) == "active").count();
    out.push_str(&format!(
        "{} ({active} active)",
        count(tokens.len(), "token", "tokens")
    ));
    if let Some(team) = &args.team {
        out.push_str(&format!(" of team `{team}`"));
    }
    print_text(&out)
}

async fn create(args: CreateArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let team = match &args.team {
        Some(team) => Some(client.team("--team", team).await?),
        None => None,
    };
    let mut body = json!({"name": args.name, "token_type": args.token_type});
    if let Some(team) = &team {
        body["team_id"] = team["id"].clone();
    }
    if let Some(expires) = &args.expires {
        body["expires_at"] = json!(expires);
    }
    if let Some(user) = &args.user {
        if args.token_type != "access" {
            return Err(Failure::Invalid(
                "error: --user is for access tokens (--type access): a gateway key belongs to a team".to_owned(),
            ));
        }
        body["user"] = json!(user);
    }
    let token = client.post("/v1/tokens", &body).await?;
    if args.json {
        return print_json(&token);
    }
    let owner = match (&team, &args.user) {
        (_, Some(user)) => format!("acting as {user}"),
        (Some(team), None) => format!("for team `{}`", cell(&team["slug"])),
        (None, None) => "org-wide".to_owned(),
    };
    let expires = match token["expires_at"].as_str() {
        Some(_) => format!("; expires {} UTC", utc(&token["expires_at"])),
        None => String::new(),
    };
    let Some(secret) = token["token"].as_str() else {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "the API created the {} `{}` (id {}) but its answer carries no secret; revoke it (`kt tokens revoke {}`) and create another",
            kind(&token),
            cell(&token["name"]),
            cell(&token["id"]),
            cell(&token["id"])
        )));
    };
    print_text(&format!(
        "created {} `{}` {owner} (id {}){expires}\n\ntoken: {secret}\n\nThis secret is shown only this once: store it now (kt keeps only its hash).",
        kind(&token),
        cell(&token["name"]),
        cell(&token["id"]),
    ))
}

async fn revoke(args: RevokeArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let token = client
        .delete(
            &format!("/v1/tokens/{}", api::segment(&args.id)),
            &Value::Null,
        )
        .await?;
    if args.json {
        return print_json(&token);
    }
    let slugs = all_slugs(&client).await?;
    let team = match token["team_id"].as_str() {
        Some(_) => format!("team `{}`", team_of(&token, &slugs)),
        None => "org-wide".to_owned(),
    };
    print_text(&format!(
        "revoked {} `{}` (id {}, {team}): it no longer works",
        kind(&token),
        cell(&token["name"]),
        cell(&token["id"])
    ))
}
