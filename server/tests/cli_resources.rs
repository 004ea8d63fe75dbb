//! `kt teams`, `kt tokens`, `kt wallets` and `kt onboard` through the real
//! `kt` binary, against a real `kt serve` (whose local runner starts the
//! onboarded teams' gateways), on every available database backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

/// `kt ARGS` against `api` with `token` (no token when `None`).
async fn kt(api: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = kt_command(args);
    cmd.env("KT_API_URL", api);
    if let Some(token) = token {
        cmd.env("KT_API_TOKEN", token);
    }
    run_command(cmd, None).await
}

/// `kt ARGS` as `token`, expecting success.
async fn kt_ok(s: &Stack, token: &str, args: &[&str]) -> Output {
    let out = kt(&s.serve.url, Some(token), args).await;
    assert!(out.status.success(), "[{}] kt {args:?}:\n{out}", s.backend);
    assert!(
        !out.stdout.trim().is_empty(),
        "[{}] kt {args:?} printed nothing:\n{out}",
        s.backend
    );
    out
}

/// `kt ARGS --json` as `token`, expecting success and one JSON document.
async fn kt_json(s: &Stack, token: &str, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.push("--json");
    let out = kt_ok(s, token, &full).await;
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "[{}] kt {full:?}: stdout is not one JSON document ({e}):\n{out}",
            s.backend
        )
    })
}

/// `kt ARGS` as `token`, expecting exit code `code` and nothing on stdout.
async fn kt_fails(s: &Stack, token: Option<&str>, args: &[&str], code: i32) -> Output {
    let out = kt(&s.serve.url, token, args).await;
    assert_eq!(
        out.status.code(),
        Some(code),
        "[{}] kt {args:?} must exit {code}:\n{out}",
        s.backend
    );
    assert!(
        out.stdout.trim().is_empty(),
        "[{}] kt {args:?} failed but printed on stdout:\n{out}",
        s.backend
    );
    out
}

/// The text with every run of spaces made one (table columns are padded).
fn squash(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value after `label` on the line that starts with it.
fn labelled<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
}

fn admin_token(s: &Stack) -> String {
    s.admin.token.clone().unwrap()
}

// ---------------------------------------------------------------------------
// Flags and the token, checked before any request

#[tokio::test(flavor = "multi_thread")]
async fn flags_and_the_token_are_checked_before_any_request() {
    // Nothing listens here: exit 2 (not 1) proves the check came first.
    let api = format!("http://127.0.0.1:{}", closed_port());
    let token = Some("kt_ak_0123456789abcdef0123456789abcdef");
    let long_name = "x".repeat(101);
    let request = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec![
            "onboard",
            "request",
            "--team-name",
            "Data",
            "--slug",
            "data",
            "--lead",
            "lead@example.com",
            "--template",
            "std",
            "--budget",
            "100",
            "--models",
            "gpt-4o-mini",
        ];
        for pair in extra.chunks(2) {
            let at = args.iter().position(|a| *a == pair[0]).unwrap();
            args[at + 1] = pair[1];
        }
        args
    };
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["teams", "create", "--name", "Eng", "--slug", "Eng"],
            "--slug",
            "lowercase",
        ),
        (
            vec!["teams", "create", "--name", " ", "--slug", "eng"],
            "--name",
            "must not be empty",
        ),
        (
            vec!["teams", "rename", "eng", "--name", &long_name],
            "--name",
            "at most 100",
        ),
        (vec!["teams", "archive", "a/b"], "SLUG_OR_ID", "not an id"),
        (
            vec!["tokens", "create", "--name", "app", "--type", "admin"],
            "--type",
            "gateway",
        ),
        (
            vec![
                "tokens",
                "create",
                "--name",
                "app",
                "--type",
                "gateway",
                "--expires",
                "tomorrow",
            ],
            "--expires",
            "RFC 3339",
        ),
        (
            vec![
                "tokens",
                "create",
                "--name",
                "app",
                "--type",
                "gateway",
                "--expires",
                "2020-01-31T00:00:00Z",
            ],
            "--expires",
            "in the past",
        ),
        (vec!["tokens", "revoke", "a b"], "ID", "not an id"),
        (
            vec!["wallets", "allocate", "--team", "eng", "--amount", "lots"],
            "--amount",
            "USD",
        ),
        (
            vec!["wallets", "allocate", "--team", "eng", "--amount", "0"],
            "--amount",
            "must not be zero",
        ),
        (
            vec!["wallets", "allocate", "--team", "eng"],
            "--amount",
            "required",
        ),
        (vec!["wallets", "balance"], "--team", "required"),
        (
            vec!["wallets", "transactions", "--team", "eng", "--limit", "0"],
            "--limit",
            "1..=1000",
        ),
        (request(&["--lead", "not-an-email"]), "--lead", "email"),
        (request(&["--budget", "-3"]), "--budget", "positive"),
        (request(&["--slug", "Data"]), "--slug", "lowercase"),
        (request(&["--models", "gpt 4o"]), "--models", "model name"),
        (
            [request(&[]), vec!["--environment", "Prod"]].concat(),
            "--environment",
            "lowercase",
        ),
        (
            vec!["onboard", "reject", "abc", "--reason", " "],
            "--reason",
            "must not be empty",
        ),
    ];
    for (args, flag, hint) in &cases {
        let out = kt(&api, token, args).await;
        assert_eq!(out.status.code(), Some(2), "kt {args:?}:\n{out}");
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(hint),
            "kt {args:?}: the error must name {flag} and say what is expected ({hint}):\n{out}"
        );
        assert!(out.stdout.is_empty(), "kt {args:?}:\n{out}");
    }

    // No token: exit 2, saying how to get one.
    for args in [
        &["teams", "list"][..],
        &["tokens", "list"],
        &["wallets", "balance", "--team", "eng"],
        &request(&[]),
        &["onboard", "list"],
    ] {
        let out = kt(&api, None, args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "kt {args:?} without a token:\n{out}"
        );
        assert!(
            out.stderr.contains("no API token")
                && out.stderr.contains("KT_API_TOKEN")
                && out.stderr.contains("kt admin create-token"),
            "kt {args:?} without a token must say how to get one:\n{out}"
        );
    }

    // Valid flags, no API: a runtime failure naming the address.
    for args in [
        &["teams", "list"][..],
        &request(&[]),
        &["tokens", "revoke", "abc"],
    ] {
        let out = kt(&api, token, args).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "kt {args:?} with no API:\n{out}"
        );
        assert!(
            out.stderr
                .contains(&format!("cannot reach the kt API at {api}"))
                && out.stderr.contains("KT_API_URL"),
            "kt {args:?}: an unreachable API must be named with a hint:\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------
// An onboarding pipeline as a shell script

const PIPELINE: &str = r#"set -eu
kt teams create --name "Data Science" --slug data-science
KEY=$(kt tokens create --name ds-app --type gateway --team data-science | sed -n 's/^token: //p')
test -n "$KEY"
echo "key=$KEY"
kt wallets allocate --team data-science --amount 250 --reason "Q1 budget"
kt wallets balance --team data-science
kt wallets transactions --team data-science
kt teams rename data-science --name "Data Science Platform"
kt teams archive data-science
echo "pipeline done"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_onboarding_pipeline_is_a_short_shell_script() {
    for db in store::testing::backends().await {
        pipeline(&db).await;
        db.cleanup().await;
    }
}

async fn pipeline(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let token = admin_token(&s);
    let script = s.install.data_path().join("onboard.sh");
    std::fs::write(&script, PIPELINE).unwrap();
    let bin_dir = Path::new(KT).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg(&script)
        .env("PATH", path)
        .env("KT_API_URL", &s.serve.url)
        .env("KT_API_TOKEN", &token)
        .env_remove("KT_DATABASE_URL")
        .env_remove("KT_DATA_DIR")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = run_command(cmd, None).await;
    assert!(
        out.status.success(),
        "[{b}] the pipeline script failed:\n{out}"
    );
    let text = squash(&out.stdout);
    assert!(text.ends_with("pipeline done"), "[{b}]\n{out}");

    // What the API holds now.
    let teams = s.admin.get("/v1/teams?include_archived=true").await.data();
    let team = teams
        .iter()
        .find(|t| t["slug"] == "data-science")
        .unwrap_or_else(|| panic!("[{b}] no team data-science: {}", pretty(&teams)));
    let team_id = team["id"].as_str().unwrap();
    assert_eq!(team["name"], "Data Science Platform", "[{b}] {team}");
    assert!(team["archived_at"].is_string(), "[{b}] archived: {team}");

    // Each step said what it did.
    assert!(
        text.contains(&format!(
            "created team `data-science` (Data Science), id {team_id}"
        )),
        "[{b}] create:\n{text}"
    );
    let key = labelled(&text, "key=").unwrap();
    assert!(
        key.starts_with("kt_gk_") && key.len() > 20,
        "[{b}] key `{key}`"
    );
    let tokens = s.admin.get("/v1/tokens").await.data();
    let row = tokens.iter().find(|t| t["name"] == "ds-app").unwrap();
    assert_eq!(row["team_id"], team_id, "[{b}] {row}");
    assert!(
        key.starts_with(row["prefix"].as_str().unwrap()),
        "[{b}] the printed key must be the one created: {row}"
    );
    assert!(
        text.contains("allocated $250.00 to team `data-science`"),
        "[{b}] allocate:\n{text}"
    );
    assert!(
        text.contains("wallet of team `data-science`\nallocated $250.00\nspent $0.00\nreserved $0.00\nbalance $250.00"),
        "[{b}] balance:\n{text}"
    );
    assert!(
        text.contains("TIME (UTC) KIND AMOUNT BALANCE AFTER ACTOR REASON"),
        "[{b}] transactions table:\n{text}"
    );
    let entry = text
        .lines()
        .find(|l| l.contains(" allocate $250.00 $250.00 "))
        .unwrap_or_else(|| panic!("[{b}] no ledger row:\n{text}"));
    assert!(
        entry.contains("integration-tests") && entry.ends_with("Q1 budget"),
        "[{b}] the ledger row names who and why: {entry}"
    );
    assert!(
        text.contains("1 ledger entry of team `data-science`"),
        "[{b}]\n{text}"
    );
    assert!(
        text.contains(
            "renamed team `data-science`: Data Science → Data Science Platform (the slug does not change)"
        ),
        "[{b}] rename:\n{text}"
    );
    assert!(
        text.contains(&format!(
            "archived team `data-science` (Data Science Platform, id {team_id})"
        )) && text.contains("no longer work"),
        "[{b}] archive:\n{text}"
    );

    // Archived: hidden from the list unless asked for.
    let out = kt_ok(&s, &token, &["teams", "list"]).await;
    assert!(!out.stdout.contains("data-science"), "[{b}]\n{out}");
    assert!(out.stdout.contains("0 teams"), "[{b}]\n{out}");
    let out = kt_ok(&s, &token, &["teams", "list", "--include-archived"]).await;
    let listed = squash(&out.stdout);
    assert!(
        listed.contains("SLUG NAME ID CREATED (UTC) STATUS")
            && listed.contains(&format!("data-science Data Science Platform {team_id} "))
            && listed.contains(" archived ")
            && listed.contains("1 team (1 archived)"),
        "[{b}]\n{out}"
    );
}

// ---------------------------------------------------------------------------
// --json, tables, scopes and unknown slugs

#[tokio::test(flavor = "multi_thread")]
async fn json_outputs_are_the_apis_answers() {
    for db in store::testing::backends().await {
        json_outputs(&db).await;
        db.cleanup().await;
    }
}

async fn json_outputs(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let token = admin_token(&s);

    let team = kt_json(
        &s,
        &token,
        &["teams", "create", "--name", "Ops", "--slug", "ops"],
    )
    .await;
    let team_id = team["id"].as_str().unwrap().to_owned();
    let api_team = s.admin.get(&format!("/v1/teams/{team_id}")).await;
    assert_eq!(api_team.status, 200, "[{b}] {api_team}");
    assert_eq!(team, api_team.body, "[{b}] --json is the API's team");

    let teams = kt_json(&s, &token, &["teams", "list"]).await;
    assert_eq!(teams, json!([api_team.body]), "[{b}]");

    let key = kt_json(
        &s,
        &token,
        &[
            "tokens",
            "create",
            "--name",
            "ops-app",
            "--type",
            "gateway",
            "--team",
            "ops",
            "--expires",
            "2099-01-31T00:00:00Z",
        ],
    )
    .await;
    assert!(
        key["token"].as_str().unwrap().starts_with("kt_gk_"),
        "[{b}] {key}"
    );
    assert_eq!(key["team_id"], team_id.as_str(), "[{b}] {key}");
    assert_eq!(key["token_type"], "gateway", "[{b}] {key}");
    assert!(
        key["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("2099-01-31"),
        "[{b}] {key}"
    );
    let org = kt_json(
        &s,
        &token,
        &["tokens", "create", "--name", "ci", "--type", "access"],
    )
    .await;
    assert!(
        org["token"].as_str().unwrap().starts_with("kt_ak_"),
        "[{b}] {org}"
    );
    assert!(org["team_id"].is_null(), "[{b}] org-wide: {org}");

    // Lists never carry a secret; --team filters.
    let listed = kt_json(&s, &token, &["tokens", "list", "--team", "ops"]).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "[{b}] {}", pretty(listed));
    assert_eq!(listed[0]["id"], key["id"], "[{b}]");
    assert!(
        listed[0].get("token").is_none(),
        "[{b}] no secret: {}",
        listed[0]
    );
    let all = kt_json(&s, &token, &["tokens", "list"]).await;
    assert!(all.as_array().unwrap().len() >= 3, "[{b}] {all}");
    let out = kt_ok(&s, &token, &["tokens", "list", "--team", "ops"]).await;
    let table = squash(&out.stdout);
    let prefix = key["prefix"].as_str().unwrap();
    assert!(
        table.contains(
            "ID NAME TYPE TEAM PREFIX CREATED (UTC) EXPIRES (UTC) LAST USED (UTC) STATUS"
        ) && table.contains(&format!(
            "{} ops-app gateway ops {prefix}…",
            key["id"].as_str().unwrap()
        )) && table.contains("2099-01-31 00:00:00")
            && table.ends_with("1 token (1 active) of team `ops`"),
        "[{b}]\n{out}"
    );
    assert!(
        !out.stdout.contains(key["token"].as_str().unwrap()),
        "[{b}] the table never shows a secret:\n{out}"
    );

    // The human form of `create` labels the secret, once.
    let out = kt_ok(
        &s,
        &token,
        &[
            "tokens",
            "create",
            "--name",
            "ops-batch",
            "--type",
            "gateway",
            "--team",
            "ops",
        ],
    )
    .await;
    let secret = labelled(&out.stdout, "token:").unwrap();
    assert!(secret.starts_with("kt_gk_"), "[{b}]\n{out}");
    assert_eq!(out.stdout.matches(secret).count(), 1, "[{b}]\n{out}");
    assert!(
        out.stdout
            .contains("created gateway key `ops-batch` for team `ops`")
            && out.stdout.contains("shown only this once"),
        "[{b}]\n{out}"
    );

    // Wallets.
    let wallet = kt_json(
        &s,
        &token,
        &["wallets", "allocate", "--team", "ops", "--amount", "12.5"],
    )
    .await;
    assert_eq!(wallet["team_id"], team_id.as_str(), "[{b}] {wallet}");
    assert_eq!(wallet["allocated"], 12.5, "[{b}] {wallet}");
    assert_eq!(wallet["balance"], 12.5, "[{b}] {wallet}");
    let corrected = kt_json(
        &s,
        &token,
        &[
            "wallets", "allocate", "--team", "ops", "--amount", "-2.5", "--reason", "typo",
        ],
    )
    .await;
    assert_eq!(corrected["allocated"], 10.0, "[{b}] {corrected}");
    let balance = kt_json(&s, &token, &["wallets", "balance", "--team", "ops"]).await;
    let api_balance = s
        .admin
        .get(&format!("/v1/wallets/balance?team_id={team_id}"))
        .await;
    assert_eq!(balance, api_balance.body, "[{b}]");
    let ledger = kt_json(&s, &token, &["wallets", "transactions", "--team", "ops"]).await;
    let ledger = ledger.as_array().unwrap();
    assert_eq!(ledger.len(), 2, "[{b}] {}", pretty(ledger));
    assert_eq!(ledger[0]["amount"], -2.5, "[{b}] newest first");
    assert_eq!(ledger[0]["reason"], "typo", "[{b}]");
    let limited = kt_json(
        &s,
        &token,
        &["wallets", "transactions", "--team", "ops", "--limit", "1"],
    )
    .await;
    assert_eq!(limited.as_array().unwrap().len(), 1, "[{b}] {limited}");
    let out = kt_ok(
        &s,
        &token,
        &["wallets", "transactions", "--team", "ops", "--limit", "1"],
    )
    .await;
    assert!(
        squash(&out.stdout).contains(
            "1 ledger entry of team `ops` (the newest 1: there may be more; raise --limit"
        ),
        "[{b}]\n{out}"
    );
    let out = kt_ok(
        &s,
        &token,
        &["wallets", "allocate", "--team", "ops", "--amount", "-1"],
    )
    .await;
    assert!(
        squash(&out.stdout)
            .starts_with("corrected the wallet of team `ops` by -$1.00\nallocated $9.00"),
        "[{b}]\n{out}"
    );

    // Members, rename, archive, revoke.
    let members = kt_json(&s, &token, &["teams", "members", "ops"]).await;
    assert_eq!(members, json!([]), "[{b}]");
    let out = kt_ok(&s, &token, &["teams", "members", "ops"]).await;
    assert!(
        out.stdout.contains("team `ops` has no members"),
        "[{b}]\n{out}"
    );
    let renamed = kt_json(
        &s,
        &token,
        &["teams", "rename", "ops", "--name", "Operations"],
    )
    .await;
    assert_eq!(renamed["name"], "Operations", "[{b}] {renamed}");
    assert_eq!(renamed["slug"], "ops", "[{b}] {renamed}");
    let revoked = kt_json(
        &s,
        &token,
        &["tokens", "revoke", key["id"].as_str().unwrap()],
    )
    .await;
    assert!(revoked["revoked_at"].is_string(), "[{b}] {revoked}");
    assert!(revoked.get("token").is_none(), "[{b}] {revoked}");
    let out = kt_ok(&s, &token, &["tokens", "list", "--team", "ops"]).await;
    assert!(
        squash(&out.stdout).contains("2 tokens (1 active) of team `ops`")
            && out.stdout.contains("revoked"),
        "[{b}]\n{out}"
    );
    // An id names a team as well as its slug.
    let archived = kt_json(&s, &token, &["teams", "archive", &team_id]).await;
    assert!(archived["archived_at"].is_string(), "[{b}] {archived}");
    let teams = kt_json(&s, &token, &["teams", "list"]).await;
    assert_eq!(teams, json!([]), "[{b}] archived teams are hidden");
    let teams = kt_json(&s, &token, &["teams", "list", "--include-archived"]).await;
    assert_eq!(teams.as_array().unwrap().len(), 1, "[{b}] {teams}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_tokens_unknown_slugs_and_api_errors_are_explained() {
    for db in store::testing::backends().await {
        scopes_and_errors(&db).await;
        db.cleanup().await;
    }
}

async fn scopes_and_errors(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let token = admin_token(&s);
    kt_ok(
        &s,
        &token,
        &["teams", "create", "--name", "Eng", "--slug", "eng"],
    )
    .await;
    kt_ok(
        &s,
        &token,
        &["teams", "create", "--name", "Ops", "--slug", "ops"],
    )
    .await;
    let scoped = kt_json(
        &s,
        &token,
        &[
            "tokens", "create", "--name", "eng-ci", "--type", "access", "--team", "eng",
        ],
    )
    .await;
    let scoped = scoped["token"].as_str().unwrap().to_owned();

    // A team-scoped token cannot allocate: exit 1 with the API's reason.
    let out = kt_fails(
        &s,
        Some(&scoped),
        &["wallets", "allocate", "--team", "eng", "--amount", "100"],
        1,
    )
    .await;
    assert!(
        out.stderr.contains("403 Forbidden")
            && out.stderr.contains("POST /v1/wallets/allocate")
            && out.stderr.contains("only org admins can allocate credit"),
        "[{b}] a scoped token's allocation must be refused, saying why:\n{out}"
    );
    // It still reads its own team's wallet…
    let out = kt_ok(&s, &scoped, &["wallets", "balance", "--team", "eng"]).await;
    assert!(
        out.stdout.contains("team `eng` has no wallet")
            && out.stdout.contains("kt wallets allocate --team eng"),
        "[{b}]\n{out}"
    );
    // …and sees no other team: another team's slug is unknown to it.
    let out = kt_fails(
        &s,
        Some(&scoped),
        &["wallets", "balance", "--team", "ops"],
        2,
    )
    .await;
    assert!(
        out.stderr.contains("--team ops: no team with slug `ops`")
            && out.stderr.contains("teams: eng")
            && out.stderr.contains("kt teams list"),
        "[{b}]\n{out}"
    );
    let out = kt_fails(&s, Some(&scoped), &["teams", "archive", "eng"], 1).await;
    assert!(
        out.stderr.contains("403 Forbidden")
            && out.stderr.contains("only org admins can archive teams"),
        "[{b}]\n{out}"
    );

    // Unknown slugs are named, wherever they are given.
    for args in [
        &["wallets", "balance", "--team", "nope"][..],
        &["wallets", "transactions", "--team", "nope"],
        &["wallets", "allocate", "--team", "nope", "--amount", "5"],
        &["tokens", "list", "--team", "nope"],
        &[
            "tokens", "create", "--name", "x", "--type", "gateway", "--team", "nope",
        ],
    ] {
        let out = kt_fails(&s, Some(&token), args, 2).await;
        assert!(
            out.stderr.contains("--team nope: no team with slug `nope`")
                && out.stderr.contains("teams: eng, ops"),
            "[{b}] kt {args:?}:\n{out}"
        );
    }
    for args in [
        &["teams", "rename", "nope", "--name", "X"][..],
        &["teams", "archive", "nope"],
        &["teams", "members", "nope"],
    ] {
        let out = kt_fails(&s, Some(&token), args, 2).await;
        assert!(
            out.stderr.contains("team nope: no team with slug `nope`"),
            "[{b}] kt {args:?}:\n{out}"
        );
    }

    // Nothing created by a refused command.
    let tokens = s.admin.get("/v1/tokens").await.data();
    assert!(
        !tokens.iter().any(|t| t["name"] == "x"),
        "[{b}] {}",
        pretty(&tokens)
    );

    // Missing and refused tokens.
    let out = kt_fails(&s, None, &["teams", "list"], 2).await;
    assert!(out.stderr.contains("KT_API_TOKEN"), "[{b}]\n{out}");
    let out = kt_fails(
        &s,
        Some("kt_ak_0123456789abcdef0123456789abcdef"),
        &["teams", "list"],
        1,
    )
    .await;
    assert!(
        out.stderr.contains("refused the token (401)") && out.stderr.contains("KT_API_TOKEN"),
        "[{b}]\n{out}"
    );

    // The API's errors: status, request and its message.
    let out = kt_fails(
        &s,
        Some(&token),
        &["teams", "create", "--name", "Eng again", "--slug", "eng"],
        1,
    )
    .await;
    assert!(
        out.stderr.contains(&format!(
            "the kt API at {} answered 409 Conflict to POST /v1/teams: a team with slug `eng` already exists",
            s.serve.url
        )),
        "[{b}]\n{out}"
    );
    let out = kt_fails(&s, Some(&token), &["tokens", "revoke", "no-such-token"], 1).await;
    assert!(
        out.stderr
            .contains("404 Not Found to DELETE /v1/tokens/no-such-token: token not found"),
        "[{b}]\n{out}"
    );
    let balance = ["wallets", "balance", "--team", "eng"];
    let before = kt_json(&s, &token, &balance).await;
    let out = kt_fails(
        &s,
        Some(&token),
        &["wallets", "allocate", "--team", "eng", "--amount", "-5"],
        1,
    )
    .await;
    assert!(
        out.stderr.contains("422 Unprocessable Entity")
            && out
                .stderr
                .contains("would make the wallet's total allocation negative"),
        "[{b}]\n{out}"
    );
    // The refused commands changed nothing.
    assert_eq!(
        kt_json(&s, &token, &balance).await,
        before,
        "[{b}] the wallet"
    );
    let teams = s.admin.get("/v1/teams").await.data();
    assert_eq!(
        teams.iter().filter(|t| t["slug"] == "eng").count(),
        1,
        "[{b}] {}",
        pretty(&teams)
    );
}

// ---------------------------------------------------------------------------
// kt onboard

#[tokio::test(flavor = "multi_thread")]
async fn onboarding_requests_are_approved_rejected_and_rendered() {
    for db in store::testing::backends().await {
        onboarding(&db).await;
        db.cleanup().await;
    }
}

/// `kt onboard request` for `slug` with the `std` template; the request id.
async fn file_request(s: &Stack, token: &str, slug: &str, name: &str) -> String {
    let out = kt_ok(
        s,
        token,
        &[
            "onboard",
            "request",
            "--team-name",
            name,
            "--slug",
            slug,
            "--lead",
            "lead@example.com",
            "--template",
            "std",
            "--budget",
            "300",
            "--models",
            "gpt-4o-mini,gpt-4o",
            "--use-case",
            "summaries of support tickets",
        ],
    )
    .await;
    let first = out.stdout.lines().next().unwrap();
    let rest = first
        .strip_prefix("filed onboarding request ")
        .unwrap_or_else(|| panic!("[{}] kt onboard request:\n{out}", s.backend));
    let id = rest.split_whitespace().next().unwrap().to_owned();
    assert!(
        first.ends_with(&format!("for team `{slug}` (std): pending"))
            && out.stdout.contains(&format!("kt onboard approve {id}")),
        "[{}] kt onboard request:\n{out}",
        s.backend
    );
    id
}

async fn onboarding(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let token = admin_token(&s);

    // The organisation's OpenAI connection is the stand-in: the templates'
    // targets use it.
    let r = s
        .admin
        .post(
            "/v1/secrets",
            &json!({"name": "openai-key", "value": UPSTREAM_KEY}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "[{b}] {r}");
    let r = s
        .admin
        .put(
            "/v1/providers/openai",
            &json!({"base_url": s.standin.base_url, "secret": "openai-key"}),
        )
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");

    // An unknown template is a bad flag, named with the choices.
    let out = kt_fails(
        &s,
        Some(&token),
        &[
            "onboard",
            "request",
            "--team-name",
            "X",
            "--slug",
            "xx",
            "--lead",
            "a@b.co",
            "--template",
            "gold",
            "--budget",
            "5",
            "--models",
            "gpt-4o",
        ],
        2,
    )
    .await;
    assert!(
        out.stderr
            .contains("--template gold: no template called `gold`")
            && out.stderr.contains("exp, reg, std"),
        "[{b}]\n{out}"
    );

    let id = file_request(&s, &token, "research", "Research").await;
    let out = kt_ok(&s, &token, &["onboard", "show", &id]).await;
    let shown = squash(&out.stdout);
    assert!(
        shown.starts_with(&format!("onboarding request {id}: pending"))
            && shown.contains("team Research (research)")
            && shown.contains("budget $300.00 per month")
            && shown.contains("models gpt-4o-mini, gpt-4o")
            && shown.contains("use case summaries of support tickets")
            && shown.contains("gateway pending - -"),
        "[{b}]\n{out}"
    );

    // Approval provisions the team and prints every step, the URL and the key.
    let out = kt_ok(&s, &token, &["onboard", "approve", &id]).await;
    let text = squash(&out.stdout);
    assert!(
        text.starts_with(&format!("onboarding request {id}: ready")),
        "[{b}] the approval must end ready:\n{out}"
    );
    let (_, steps) = text
        .split_once("STEP STATUS AT (UTC) DETAIL\n")
        .unwrap_or_else(|| panic!("[{b}] no steps table:\n{out}"));
    for (step, detail) in [
        ("team", "created team research"),
        ("config", "from template std (lint clean)"),
        ("wallet", "$300 allocated"),
        ("key", "created research-production gateway"),
        (
            "gateway",
            "research-production running at http://127.0.0.1:",
        ),
    ] {
        let line = steps
            .lines()
            .find(|l| l.starts_with(&format!("{step} ")))
            .unwrap_or_else(|| panic!("[{b}] no `{step}` step:\n{out}"));
        assert!(
            line.starts_with(&format!("{step} done ")) && line.contains(detail),
            "[{b}] step {step}: `{line}`\n{out}"
        );
    }
    let url = labelled(&text, "gateway url")
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or_else(|| panic!("[{b}] no gateway url:\n{out}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "[{b}] {url}");
    assert!(
        text.contains(&format!("(OpenAI SDKs: base_url {url}/v1)")),
        "[{b}]\n{out}"
    );
    let key = labelled(&out.stdout, "gateway key:")
        .unwrap_or_else(|| panic!("[{b}] no gateway key:\n{out}"))
        .to_owned();
    assert!(key.starts_with("kt_gk_"), "[{b}]\n{out}");
    assert!(out.stdout.contains("shown only this once"), "[{b}]\n{out}");

    // The team's application can use the gateway with that key at once.
    let answer = chat(&url, Some(&key), &chat_body("gpt-4o-mini", "Say hello")).await;
    assert_eq!(answer.status, 200, "[{b}] {answer}");
    assert_eq!(
        answer.body["choices"][0]["message"]["content"], STANDIN_CONTENT,
        "[{b}] {answer}"
    );

    // The provisioned team shows up in the other commands.
    let out = kt_ok(&s, &token, &["wallets", "balance", "--team", "research"]).await;
    assert!(
        squash(&out.stdout).contains("allocated $300.00"),
        "[{b}]\n{out}"
    );

    // The key is shown once: show never has it, approving again is refused.
    let out = kt_ok(&s, &token, &["onboard", "show", &id]).await;
    assert!(!out.stdout.contains(&key), "[{b}]\n{out}");
    assert!(
        squash(&out.stdout).contains(&format!("gateway url {url}")),
        "[{b}]\n{out}"
    );
    let out = kt_fails(&s, Some(&token), &["onboard", "approve", &id], 1).await;
    assert!(
        out.stderr.contains("409 Conflict") && out.stderr.contains("/approve"),
        "[{b}]\n{out}"
    );
    let json_show = kt_json(&s, &token, &["onboard", "show", &id]).await;
    assert_eq!(json_show["status"], "ready", "[{b}] {json_show}");
    assert_eq!(json_show["gateway_url"], url.as_str(), "[{b}] {json_show}");
    assert!(json_show.get("gateway_key").is_none(), "[{b}] {json_show}");

    // Manifests: multi-document YAML for the tenant's namespace.
    let out = kt_ok(&s, &token, &["onboard", "manifests", &id]).await;
    assert!(
        out.stdout
            .starts_with("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tenant-research\n"),
        "[{b}] manifests must start with the Namespace:\n{out}"
    );
    for kind in ["ConfigMap", "Deployment", "Service", "NetworkPolicy"] {
        assert!(
            out.stdout.contains(&format!("\nkind: {kind}\n")),
            "[{b}] no {kind}:\n{out}"
        );
    }

    // Rejection.
    let other = file_request(&s, &token, "marketing", "Marketing").await;
    let out = kt_fails(&s, Some(&token), &["onboard", "reject", &other], 2).await;
    assert!(out.stderr.contains("--reason"), "[{b}]\n{out}");
    let out = kt_ok(
        &s,
        &token,
        &[
            "onboard",
            "reject",
            &other,
            "--reason",
            "no budget this quarter",
        ],
    )
    .await;
    assert_eq!(
        out.stdout.trim(),
        format!("rejected onboarding request {other} for team `marketing`: no budget this quarter"),
        "[{b}]\n{out}"
    );
    let out = kt_ok(&s, &token, &["onboard", "show", &other]).await;
    let shown = squash(&out.stdout);
    assert!(
        shown.starts_with(&format!("onboarding request {other}: rejected"))
            && shown.contains("reason no budget this quarter"),
        "[{b}]\n{out}"
    );
    let out = kt_fails(&s, Some(&token), &["onboard", "approve", &other], 1).await;
    assert!(out.stderr.contains("409 Conflict"), "[{b}]\n{out}");

    // The list: both, newest first.
    let out = kt_ok(&s, &token, &["onboard", "list"]).await;
    let listed = squash(&out.stdout);
    let rows: Vec<&str> = listed.lines().collect();
    assert!(
        rows[0].starts_with("ID TEAM TEMPLATE BUDGET/MONTH ENVIRONMENT STATUS"),
        "[{b}]\n{out}"
    );
    assert!(
        rows[1].starts_with(&format!(
            "{other} marketing std $300.00 production rejected "
        )) && rows[2].starts_with(&format!("{id} research std $300.00 production ready ")),
        "[{b}]\n{out}"
    );
    assert!(
        listed.ends_with("2 onboarding requests (0 pending)"),
        "[{b}]\n{out}"
    );
    let requests = kt_json(&s, &token, &["onboard", "list"]).await;
    assert_eq!(requests.as_array().unwrap().len(), 2, "[{b}] {requests}");

    // A pipeline that fails: the steps are printed, then exit 1 with the
    // failed step and how to resume. (The slug was taken, then archived,
    // after the request was filed.)
    let clash = file_request(&s, &token, "clash", "Clash").await;
    kt_ok(
        &s,
        &token,
        &["teams", "create", "--name", "Clash", "--slug", "clash"],
    )
    .await;
    kt_ok(&s, &token, &["teams", "archive", "clash"]).await;
    let out = kt(&s.serve.url, Some(&token), &["onboard", "approve", &clash]).await;
    assert_eq!(out.status.code(), Some(1), "[{b}]\n{out}");
    let text = squash(&out.stdout);
    assert!(
        text.starts_with(&format!("onboarding request {clash}: failed"))
            && text.contains("team failed ")
            && text.contains("config pending - -")
            && !text.contains("gateway key:"),
        "[{b}] the failed pipeline's steps:\n{out}"
    );
    let shown = kt_json(&s, &token, &["onboard", "show", &clash]).await;
    assert_eq!(shown["status"], "failed", "[{b}] {shown}");
    let detail = shown["steps"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("clash"),
        "[{b}] the team step says why: {shown}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("team failed ") && l.ends_with(&squash(detail))),
        "[{b}] the team step's line shows why:\n{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "onboarding request {clash} is `failed`, not ready: step `team` failed: {detail}; fix the cause and run `kt onboard approve {clash}` again"
        )),
        "[{b}]\n{out}"
    );
    // A failed request can be rejected, with the reason the requester reads.
    let out = kt_ok(
        &s,
        &token,
        &["onboard", "reject", &clash, "--reason", "slug taken"],
    )
    .await;
    assert!(out.stdout.contains("rejected"), "[{b}]\n{out}");
    // A rejected request cannot be rejected again.
    let out = kt_fails(
        &s,
        Some(&token),
        &["onboard", "reject", &clash, "--reason", "again"],
        1,
    )
    .await;
    assert!(
        out.stderr.contains("409 Conflict") && out.stderr.contains("/reject"),
        "[{b}]\n{out}"
    );

    // Approving and rejecting are for org admins.
    let third = file_request(&s, &token, "legal", "Legal").await;
    let research = kt_json(&s, &token, &["teams", "list"]).await;
    assert!(
        research
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["slug"] == "research"),
        "[{b}] {research}"
    );
    let scoped = kt_json(
        &s,
        &token,
        &[
            "tokens",
            "create",
            "--name",
            "research-ci",
            "--type",
            "access",
            "--team",
            "research",
        ],
    )
    .await;
    let scoped = scoped["token"].as_str().unwrap();
    let out = kt_fails(&s, Some(scoped), &["onboard", "approve", &third], 1).await;
    assert!(
        out.stderr.contains("403 Forbidden") && out.stderr.contains("only org admins"),
        "[{b}]\n{out}"
    );
    let out = kt_fails(&s, Some(&token), &["onboard", "show", "no-such-request"], 1).await;
    assert!(
        out.stderr
            .contains("404 Not Found to GET /v1/onboarding/requests/no-such-request"),
        "[{b}]\n{out}"
    );
}
