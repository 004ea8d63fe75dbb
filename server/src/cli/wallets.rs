//! `kt wallets`: team wallets, the hard budget gateways spend from, through
//! the control-plane API (`/v1/wallets/*`, SPEC §6). Amounts are USD.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Failure;
use super::api::{self, ApiArgs, Client, cell, count, dollars, print_json, print_text, table, utc};

/// Longest `--reason`, in characters (as the API).
const MAX_REASON_CHARS: usize = 500;
/// Ledger entries `transactions` lists unless `--limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;
/// Most ledger entries one request lists.
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Subcommand)]
pub enum WalletsCommand {
    /// Add credit to a team's wallet (org admins); a negative amount corrects.
    Allocate(AllocateArgs),
    /// A team's wallet: allocated, spent, reserved and the balance.
    Balance(TeamArgs),
    /// A team's wallet ledger, newest first.
    Transactions(TransactionsArgs),
}

#[derive(Debug, Args)]
pub struct AllocateArgs {
    /// The team (its slug).
    #[arg(long, value_name = "SLUG", value_parser = api::id)]
    pub team: String,
    /// USD to add, e.g. 250 or 12.50; negative to correct an earlier allocation.
    #[arg(long, value_name = "USD", allow_hyphen_values = true, value_parser = parse_amount)]
    pub amount: f64,
    /// Why, recorded in the ledger (at most 500 characters).
    #[arg(long, value_parser = parse_reason)]
    pub reason: Option<String>,
    /// Print the API's answer (the wallet after the allocation) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TeamArgs {
    /// The team (its slug).
    #[arg(long, value_name = "SLUG", value_parser = api::id)]
    pub team: String,
    /// Print the API's answer as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct TransactionsArgs {
    /// The team (its slug).
    #[arg(long, value_name = "SLUG", value_parser = api::id)]
    pub team: String,
    /// How many entries at most (the newest), 1 to 1000.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_LIMIT,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_LIMIT))
    )]
    pub limit: u32,
    /// Print the API's ledger entries as one JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `--amount`: USD, not zero, within the API's bounds (the API's own check).
fn parse_amount(value: &str) -> Result<f64, String> {
    let text = value.trim().trim_start_matches('$');
    let amount: f64 = text
        .parse()
        .map_err(|_| format!("`{value}` is not an amount of USD (e.g. 250 or 12.50)"))?;
    store::budgets::amount_micros(amount).map_err(|e| e.replace("`amount`", "the amount"))?;
    Ok(amount)
}

fn parse_reason(value: &str) -> Result<String, String> {
    let value = api::nonempty(value)?;
    let n = value.chars().count();
    if n > MAX_REASON_CHARS {
        return Err(format!(
            "{n} characters is too long: at most {MAX_REASON_CHARS}"
        ));
    }
    Ok(value)
}

pub async fn run(cmd: WalletsCommand) -> Result<(), Failure> {
    match cmd {
        WalletsCommand::Allocate(args) => allocate(args).await,
        WalletsCommand::Balance(args) => balance(args).await,
        WalletsCommand::Transactions(args) => transactions(args).await,
    }
}

/// The wallet's figures, one per line.
fn summary(wallet: &Value) -> String {
    let mut out = String::new();
    for (label, key) in [
        ("allocated", "allocated"),
        ("spent", "spent"),
        ("reserved", "reserved"),
        ("balance", "balance"),
    ] {
        out.push_str(&format!("  {label:<10} {:>14}\n", dollars(&wallet[key])));
    }
    out
}

async fn allocate(args: AllocateArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let team = client.team("--team", &args.team).await?;
    let mut body = json!({"team_id": team["id"], "amount": args.amount});
    if let Some(reason) = &args.reason {
        body["reason"] = json!(reason);
    }
    let wallet = client.post("/v1/wallets/allocate", &body).await?;
    if args.json {
        return print_json(&wallet);
    }
    let slug = cell(&team["slug"]);
    let what = if args.amount < 0.0 {
        format!(
            "corrected the wallet of team `{slug}` by {}",
            dollars(&json!(args.amount))
        )
    } else {
        format!(
            "allocated {} to team `{slug}`",
            dollars(&json!(args.amount))
        )
    };
    print_text(&format!("{what}\n{}", summary(&wallet)))
}

async fn balance(args: TeamArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let team = client.team("--team", &args.team).await?;
    let wallet = client
        .get("/v1/wallets/balance", &[("team_id", cell(&team["id"]))])
        .await?;
    if args.json {
        return print_json(&wallet);
    }
    let slug = cell(&team["slug"]);
    if wallet["has_wallet"] == Value::Bool(false) {
        return print_text(&format!(
            "team `{slug}` has no wallet: it is not limited by one; give it credit with `kt wallets allocate --team {slug} --amount USD`"
        ));
    }
    print_text(&format!("wallet of team `{slug}`\n{}", summary(&wallet)))
}

async fn transactions(args: TransactionsArgs) -> Result<(), Failure> {
    let client = Client::new(&args.api)?;
    let team = client.team("--team", &args.team).await?;
    let entries = client
        .list(
            "/v1/wallets/transactions",
            &[
                ("team_id", cell(&team["id"])),
                ("limit", args.limit.to_string()),
            ],
        )
        .await?;
    if args.json {
        return print_json(&Value::Array(entries));
    }
    let slug = cell(&team["slug"]);
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                utc(&e["created_at"]),
                cell(&e["kind"]),
                dollars(&e["amount"]),
                dollars(&e["balance_after"]),
                cell(&e["actor"]),
                cell(&e["reason"]),
            ]
        })
        .collect();
    let mut out = if rows.is_empty() {
        String::new()
    } else {
        table(
            &[
                "TIME (UTC)",
                "KIND",
                "AMOUNT",
                "BALANCE AFTER",
                "ACTOR",
                "REASON",
            ],
            &rows,
            &["AMOUNT", "BALANCE AFTER"],
        )
    };
    out.push_str(&format!(
        "{} of team `{slug}`",
        count(entries.len(), "ledger entry", "ledger entries")
    ));
    if entries.len() >= args.limit as usize {
        out.push_str(&format!(
            " (the newest {}: there may be more; raise --limit, up to {MAX_LIMIT})",
            args.limit
        ));
    }
    print_text(&out)
}
