//! `kt teams`: the tenants, through the control-plane API (`/v1/teams`,
//! SPEC §6). Teams are named by slug (an id works too); a slug the token
//! does not see is invalid input naming it (exit 2).
//!
//! Output: a table or a short summary; `--json` prints the API's answer
//! (for lists, its `data` array).

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Failure;
use super::api::{self, ApiArgs, Client, cell, count, print_json, print_text, table, utc};

/// Longest team name the API accepts on rename.
const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// The teams this token sees (active ones unless --include-archived).
    List(ListArgs),
    /// Create a team (org admins).
    Create(CreateArgs),
    /// Rename a team (org admins); its slug never changes.
    Rename(RenameArgs),
    /// Archive a team (org admins): its gateway keys and tokens stop working.
    Archive(TeamArgs),
    /// A team's members (console users).
    Members(TeamArgs),
    /// Who reviews a team's escalations; `--set` names them (org admins and
    /// the team's leads).
    Reviewers(ReviewersArgs),
}

#[derive(Debug, Args)]
pub struct ReviewersArgs {
    /// The team: its slug (or id).
    #[arg(value_name = "SLUG_OR_ID", value_parser = api::id)]
    pub team: String,
    /// Name the reviewers (comma-separated emails of the team's members),
    /// replacing the list.
    #[arg(
        long,
        value_name = "EMAILS",
        value_delimiter = ',',
        conflicts_with = "none"
    )]
    pub set: Option<Vec<String>>,
    /// Name no reviewers: the org admins review the team's escalations.
    #[arg(long)]
    pub none: bool,
    /// Print the API's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Include archived teams.
    #[arg(long)]
    pub include_archived: bool,
    /// Print the API's teams as one JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The team's display name, e.g. "Engineering".
    #[arg(long, value_parser = api::nonempty)]
    pub name: String,
    /// 1 to 63 lowercase letters, digits and dashes, starting with a letter;
    /// names the team's gateways and configs and never changes.
    #[arg(long, value_parser = api::slug)]
    pub slug: String,
    /// Print the API's answer (the team) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The team: its slug (or id).
    #[arg(value_name = "SLUG_OR_ID", value_parser = api::id)]
    pub team: String,
    /// The new display name (1 to 100 characters).
    #[arg(long, value_parser = new_name)]
    pub name: String,
    /// Print the API's answer (the team) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TeamArgs {
    /// The team: its slug (or id).
    #[arg(value_name = "SLUG_OR_ID", value_parser = api::id)]
    pub team: String,
    /// Print the API's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

fn new_name(value: &str) -> Result<String, String> {
    let value = api::nonempty(value)?;
    let n = value.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "{n} characters is too long: at most {MAX_NAME_CHARS}"
        ));
    }
    Ok(value)
}

pub async fn run(cmd: TeamsCommand) -> Result<(), Failure> {
    match cmd {
        TeamsCommand::List(args) => list(args).await,
        TeamsCommand::Create(args) => create(args).await,
        TeamsCommand::Rename(args) => rename(args).await,
        TeamsCommand::Archive(args) => archive(args).await,
        TeamsCommand::Members(args) => members(args).await,
        TeamsCommand::Reviewers(args) => reviewers(args).await,
    }
}

/// `slug` of a team answer.
fn slug_of(team: &Value) -> String {
    cell(&team["slug"])
}

fn team_path(team: &Value, rest: &str) -> String {
    format!(
        "/v1/teams/{}{rest}",
        api::segment(team["id"].as_str().unwrap_or_default())
    )
}

async fn list(args: ListArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let teams = client.teams(args.include_archived).await?;
    if args.json {
        return print_json(&Value::Array(teams));
    }
    let rows: Vec<Vec<String>> = teams
        .iter()
        .map(|t| {
            vec![
                slug_of(t),
                cell(&t["name"]),
                cell(&t["id"]),
                utc(&t["created_at"]),
                if t["archived_at"].is_string() {
                    format!("archived {}", utc(&t["archived_at"]))
                } else {
                    "active".to_owned()
                },
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        String::new()
    } else {
        table(
            &["SLUG", "NAME", "ID", "CREATED (UTC)", "STATUS"],
            &rows,
            &[],
        )
    };
    let archived = teams
        .iter()
        .filter(|t| t["archived_at"].is_string())
        .count();
    out.push_str(&count(teams.len(), "team", "teams"));
    if args.include_archived {
        out.push_str(&format!(" ({archived} archived)"));
    } else if teams.is_empty() {
        out.push_str(": create one with `kt teams create --name NAME --slug SLUG`");
    }
    print_text(&out)
}

async fn create(args: CreateArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let team = client
        .post("/v1/teams", &json!({"name": args.name, "slug": args.slug}))
        .await?;
    if args.json {
        return print_json(&team);
    }
    print_text(&format!(
        "created team `{}` ({}), id {}",
        slug_of(&team),
        cell(&team["name"]),
        cell(&team["id"])
    ))
}

async fn rename(args: RenameArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let before = client.team("team", &args.team).await?;
    let team = client
        .patch(&team_path(&before, ""), &json!({"name": args.name}))
        .await?;
    if args.json {
        return print_json(&team);
    }
    print_text(&format!(
        "renamed team `{}`: {} → {} (the slug does not change)",
        slug_of(&team),
        cell(&before["name"]),
        cell(&team["name"])
    ))
}

async fn archive(args: TeamArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let before = client.team("team", &args.team).await?;
    let team = client
        .post(&team_path(&before, "/archive"), &Value::Null)
        .await?;
    if args.json {
        return print_json(&team);
    }
    print_text(&format!(
        "archived team `{}` ({}, id {}) at {} UTC: its gateway keys and API tokens no longer work; `kt teams list --include-archived` still shows it",
        slug_of(&team),
        cell(&team["name"]),
        cell(&team["id"]),
        utc(&team["archived_at"])
    ))
}

async fn members(args: TeamArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let team = client.team("team", &args.team).await?;
    let members = client.list(&team_path(&team, "/members"), &[]).await?;
    if args.json {
        return print_json(&Value::Array(members));
    }
    let slug = slug_of(&team);
    if members.is_empty() {
        return print_text(&format!(
            "team `{slug}` has no members: an org admin adds console users with PUT /v1/teams/{}/members/EMAIL",
            cell(&team["id"])
        ));
    }
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| vec![cell(&m["email"]), cell(&m["role"]), cell(&m["user_id"])])
        .collect();
    let mut out = table(&["EMAIL", "ROLE", "USER ID"], &rows, &[]);
    out.push_str(&format!(
        "{} of team `{slug}`",
        count(members.len(), "member", "members")
    ));
    print_text(&out)
}

async fn reviewers(args: ReviewersArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let team = client.team("team", &args.team).await?;
    let path = team_path(&team, "/reviewers");
    let answer = match (&args.set, args.none) {
        (Some(emails), _) => {
            let emails: Vec<&str> = emails
                .iter()
                .map(|e| e.trim())
                .filter(|e| !e.is_empty())
                .collect();
            client.put(&path, &json!({ "reviewers": emails })).await?
        }
        (None, true) => client.put(&path, &json!({ "reviewers": [] })).await?,
        (None, false) => client.get(&path, &[]).await?,
    };
    if args.json {
        return print_json(&answer);
    }
    let slug = slug_of(&team);
    let named = answer["data"].as_array().cloned().unwrap_or_default();
    if named.is_empty() {
        return print_text(&format!(
            "team `{slug}` names no reviewers: its escalations go to the org admins (name some with `kt teams reviewers {slug} --set EMAILS`)"
        ));
    }
    let rows: Vec<Vec<String>> = named
        .iter()
        .map(|r| vec![cell(&r["email"]), cell(&r["role"]), utc(&r["added_at"])])
        .collect();
    let mut out = table(&["EMAIL", "ROLE", "SINCE (UTC)"], &rows, &[]);
    out.push_str(&format!(
        "{} of team `{slug}`: its escalations go to them",
        count(named.len(), "reviewer", "reviewers")
    ));
    print_text(&out)
}
