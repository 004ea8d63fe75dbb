//! `kt onboard`: self-service onboarding through the control-plane API
//! (`/v1/onboarding/requests`, SPEC §9). A request names the team, its
//! lead, a template, a monthly budget and the models; an org admin's
//! approval runs the provisioning pipeline (team → config → wallet → key →
//! gateway) and answers with each step's status, the gateway's URL and its
//! key, shown once.
//!
//! `approve` exits 1 when the pipeline did not end `ready` (after printing
//! the steps), so that a script stops there; approving again resumes it.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Failure;
use super::api::{self, ApiArgs, Client, cell, count, dollars, print_json, print_text, table, utc};

/// Longest team name and use case the API accepts.
const MAX_TEAM_NAME_CHARS: usize = 100;
const MAX_USE_CASE_BYTES: usize = 2000;

#[derive(Debug, Subcommand)]
pub enum OnboardCommand {
    /// File an onboarding request for a new team (any access token).
    Request(RequestArgs),
    /// Onboarding requests, newest first (all for org admins, yours otherwise).
    List(ListArgs),
    /// One request with each provisioning step's status.
    Show(IdArgs),
    /// Approve a request and provision the team (org admins); prints each
    /// step, the gateway URL and the gateway key (once). Approve a failed
    /// request again to resume it.
    Approve(IdArgs),
    /// Reject a pending request with a reason (org admins).
    Reject(RejectArgs),
    /// The Kubernetes manifests for the request's tenant, as YAML (org admins).
    Manifests(ManifestsArgs),
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The team's display name, e.g. "Data Science" (at most 100 characters).
    #[arg(long, value_parser = team_name)]
    pub team_name: String,
    /// The team's slug: lowercase letters, digits and dashes, starting with a
    /// letter; names its gateway and configs.
    #[arg(long, value_parser = api::slug)]
    pub slug: String,
    /// The team lead's email.
    #[arg(long, value_name = "EMAIL", value_parser = email)]
    pub lead: String,
    /// The policy template: std, reg (regulated), exp (experimental), or
    /// another one an admin added (GET /v1/templates).
    #[arg(long, value_name = "TEMPLATE", value_parser = api::id)]
    pub template: String,
    /// USD per calendar month: the config's cost limit and the wallet's credit.
    #[arg(long, value_name = "USD", allow_hyphen_values = true, value_parser = budget)]
    pub budget: f64,
    /// The models the team may use, comma-separated (e.g. gpt-4o-mini,gpt-4o).
    #[arg(long, value_name = "A,B", value_delimiter = ',', required = true, value_parser = model)]
    pub models: Vec<String>,
    /// The environment of its configuration and gateway (default production).
    #[arg(long, value_name = "ENV", value_parser = environment)]
    pub environment: Option<String>,
    /// What the team will use AI for (at most 2000 characters).
    #[arg(long, value_name = "TEXT", value_parser = use_case)]
    pub use_case: Option<String>,
    /// Print the API's answer (the request) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the API's requests as one JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The request's id (the ID column of `kt onboard list`).
    #[arg(value_name = "ID", value_parser = api::id)]
    pub id: String,
    /// Print the API's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The request's id.
    #[arg(value_name = "ID", value_parser = api::id)]
    pub id: String,
    /// Why, for the requester.
    #[arg(long, value_parser = api::nonempty)]
    pub reason: String,
    /// Print the API's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ManifestsArgs {
    /// The request's id.
    #[arg(value_name = "ID", value_parser = api::id)]
    pub id: String,
    #[command(flatten)]
    pub api: ApiArgs,
}

// ---------------------------------------------------------------------------
// Flags: the API's own checks (store::onboarding::validate), done first

fn team_name(value: &str) -> Result<String, String> {
    let value = api::nonempty(value)?;
    if value.len() > MAX_TEAM_NAME_CHARS {
        return Err(format!("at most {MAX_TEAM_NAME_CHARS} characters"));
    }
    Ok(value)
}

fn email(value: &str) -> Result<String, String> {
    let value = value.trim();
    store::users::validate_email(value)?;
    Ok(value.to_owned())
}

fn budget(value: &str) -> Result<f64, String> {
    let text = value.trim().trim_start_matches('$');
    match text.parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd > 0.0 && usd < 1e9 && (usd * 1e6).round() >= 1.0 => {
            Ok(usd)
        }
        _ => Err(format!(
            "`{value}` is not a budget: give a positive amount of USD per month (e.g. 500)"
        )),
    }
}

fn model(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty()
        || value.contains(char::is_whitespace)
        || value.contains(['"', '\'', '[', ']', ',', '#'])
    {
        return Err(format!(
            "{value:?} is not a model name: list models separated by commas, e.g. gpt-4o-mini,gpt-4o"
        ));
    }
    Ok(value.to_owned())
}

fn environment(value: &str) -> Result<String, String> {
    let value = value.trim();
    store::configs::validate_environment(value)?;
    Ok(value.to_owned())
}

fn use_case(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.len() > MAX_USE_CASE_BYTES {
        return Err(format!("at most {MAX_USE_CASE_BYTES} characters"));
    }
    Ok(value.to_owned())
}

pub async fn run(cmd: OnboardCommand) -> Result<(), Failure> {
    match cmd {
        OnboardCommand::Request(args) => request(args).await,
        OnboardCommand::List(args) => list(args).await,
        OnboardCommand::Show(args) => show(args).await,
        OnboardCommand::Approve(args) => approve(args).await,
        OnboardCommand::Reject(args) => reject(args).await,
        OnboardCommand::Manifests(args) => manifests(args).await,
    }
}

fn request_path(id: &str, rest: &str) -> String {
    format!("/v1/onboarding/requests/{}{rest}", api::segment(id))
}

// ---------------------------------------------------------------------------
// Rendering

/// A request: its fields, then its steps.
fn describe(r: &Value) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        (
            "team",
            format!("{} ({})", cell(&r["team_name"]), cell(&r["team_slug"])),
        ),
        ("lead", cell(&r["lead_email"])),
        ("template", cell(&r["template"])),
        (
            "budget",
            format!("{} per month", dollars(&r["monthly_budget"])),
        ),
        ("models", models(r)),
        ("environment", cell(&r["environment"])),
    ];
    if r["use_case"].as_str().is_some_and(|u| !u.is_empty()) {
        lines.push(("use case", cell(&r["use_case"])));
    }
    lines.push((
        "requested",
        format!(
            "{} UTC by {}",
            utc(&r["created_at"]),
            cell(&r["requested_by"])
        ),
    ));
    if r["decided_at"].is_string() {
        lines.push((
            "decided",
            format!(
                "{} UTC by {}",
                utc(&r["decided_at"]),
                cell(&r["decided_by"])
            ),
        ));
    }
    if r["reason"].is_string() {
        lines.push(("reason", cell(&r["reason"])));
    }
    if r["team_id"].is_string() {
        lines.push(("team id", cell(&r["team_id"])));
    }
    if r["gateway_name"].is_string() || r["gateway_url"].is_string() {
        lines.push(("gateway", cell(&r["gateway_name"])));
    }
    if let Some(url) = r["gateway_url"].as_str() {
        lines.push((
            "gateway url",
            format!("{url} (OpenAI SDKs: base_url {url}/v1)"),
        ));
    }
    let mut out = format!(
        "onboarding request {}: {}\n",
        cell(&r["id"]),
        cell(&r["status"])
    );
    for (label, value) in lines {
        out.push_str(&format!("  {label:<12} {value}\n"));
    }
    let steps = r["steps"].as_array().cloned().unwrap_or_default();
    if !steps.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|s| {
                vec![
                    cell(&s["step"]),
                    cell(&s["status"]),
                    if s["at"].is_string() {
                        utc(&s["at"])
                    } else {
                        "-".to_owned()
                    },
                    cell(&s["detail"]),
                ]
            })
            .collect();
        out.push_str(&table(
            &["STEP", "STATUS", "AT (UTC)", "DETAIL"],
            &rows,
            &[],
        ));
    }
    out
}

fn models(r: &Value) -> String {
    r["models"]
        .as_array()
        .map(|m| m.iter().map(cell).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "-".to_owned())
}

// ---------------------------------------------------------------------------
// Commands

async fn request(args: RequestArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    // An unknown template is a bad flag: say so (exit 2) with the choices.
    let templates = client.list("/v1/templates", &[]).await?;
    let mut names: Vec<String> = templates.iter().map(|t| cell(&t["name"])).collect();
    names.sort_unstable();
    if !names.contains(&args.template) {
        return Err(Failure::Invalid(format!(
            "error: --template {}: no template called `{}` (templates: {}); an admin adds one with PUT /v1/templates/NAME",
            args.template,
            args.template,
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        )));
    }
    let mut body = json!({
        "team_name": args.team_name,
        "team_slug": args.slug,
        "lead_email": args.lead,
        "template": args.template,
        "monthly_budget": args.budget,
        "models": args.models,
    });
    if let Some(environment) = &args.environment {
        body["environment"] = json!(environment);
    }
    if let Some(use_case) = &args.use_case {
        body["use_case"] = json!(use_case);
    }
    let r = client.post("/v1/onboarding/requests", &body).await?;
    if args.json {
        return print_json(&r);
    }
    let id = cell(&r["id"]);
    print_text(&format!(
        "filed onboarding request {id} for team `{}` ({}): {}\nan org admin approves it with `kt onboard approve {id}` (or rejects it with `kt onboard reject {id} --reason …`)",
        cell(&r["team_slug"]),
        cell(&r["template"]),
        cell(&r["status"]),
    ))
}

async fn list(args: ListArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let requests = client.list("/v1/onboarding/requests", &[]).await?;
    if args.json {
        return print_json(&Value::Array(requests));
    }
    let rows: Vec<Vec<String>> = requests
        .iter()
        .map(|r| {
            vec![
                cell(&r["id"]),
                cell(&r["team_slug"]),
                cell(&r["template"]),
                dollars(&r["monthly_budget"]),
                cell(&r["environment"]),
                cell(&r["status"]),
                utc(&r["created_at"]),
                cell(&r["lead_email"]),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        String::new()
    } else {
        table(
            &[
                "ID",
                "TEAM",
                "TEMPLATE",
                "BUDGET/MONTH",
                "ENVIRONMENT",
                "STATUS",
                "REQUESTED (UTC)",
                "LEAD",
            ],
            &rows,
            &["BUDGET/MONTH"],
        )
    };
    let pending = requests.iter().filter(|r| r["status"] == "pending").count();
    out.push_str(&format!(
        "{} ({pending} pending)",
        count(requests.len(), "onboarding request", "onboarding requests")
    ));
    print_text(&out)
}

async fn show(args: IdArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let r = client.get(&request_path(&args.id, ""), &[]).await?;
    if args.json {
        return print_json(&r);
    }
    print_text(&describe(&r))
}

async fn approve(args: IdArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let r = client
        .post(&request_path(&args.id, "/approve"), &Value::Null)
        .await?;
    if args.json {
        print_json(&r)?;
    } else {
        let mut out = describe(&r);
        match r["gateway_key"].as_str() {
            Some(key) => out.push_str(&format!(
                "\ngateway key: {key}\n\nThis key is shown only this once: give it to the team now (kt keeps only its hash).\n"
            )),
            None if r["status"] == "ready" => out.push_str(
                "\ngateway key: not shown: an earlier approval created it and showed it then; create another with `kt tokens create --type gateway --team SLUG`\n",
            ),
            None => {}
        }
        print_text(&out)?;
    }
    if r["status"] == "ready" {
        return Ok(());
    }
    let failed = r["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["status"] == "failed"));
    let why = match failed {
        Some(step) => format!(
            "step `{}` failed: {}",
            cell(&step["step"]),
            step["detail"]
                .as_str()
                .or(r["reason"].as_str())
                .unwrap_or("no reason given")
        ),
        None => r["reason"]
            .as_str()
            .unwrap_or("the pipeline did not finish")
            .to_owned(),
    };
    Err(Failure::Runtime(anyhow::anyhow!(
        "onboarding request {} is `{}`, not ready: {why}; fix the cause and run `kt onboard approve {}` again (it resumes where it stopped)",
        args.id,
        cell(&r["status"]),
        args.id
    )))
}

async fn reject(args: RejectArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let r = client
        .post(
            &request_path(&args.id, "/reject"),
            &json!({"reason": args.reason}),
        )
        .await?;
    if args.json {
        return print_json(&r);
    }
    print_text(&format!(
        "rejected onboarding request {} for team `{}`: {}",
        cell(&r["id"]),
        cell(&r["team_slug"]),
        cell(&r["reason"])
    ))
}

async fn manifests(args: ManifestsArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let yaml = client
        .get_text(&request_path(&args.id, "/manifests"))
        .await?;
    print_text(&yaml)
}
