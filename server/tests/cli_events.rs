//! `kt events list` and `kt events tail` through the real `kt` binary, against
//! a real `kt serve`, real gateways and the stand-in provider, on every
//! available database backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use store::testing::TestDatabase;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// The only allowed model of the test gateways; anything else is blocked by
/// the policy `model-allowlist`.
const ALLOWED: &str = "gpt-4o";
const BLOCKED: &str = "gpt-3.5-turbo";
/// How long a `kt events tail` may take to print an event once it is in the API.
const TAIL_TIMEOUT: Duration = Duration::from_secs(15);

fn allowlist() -> String {
    format!("  - name: model-allowlist\n    type: model_filter\n    allowed_models: [{ALLOWED}]\n")
}

/// `kt events ARGS` against `api` with `token` (no token when `None`).
fn events_command(api: &str, token: Option<&str>, args: &[&str]) -> tokio::process::Command {
    let mut full = vec!["events"];
    full.extend_from_slice(args);
    let mut cmd = kt_command(&full);
    cmd.env("KT_API_URL", api);
    if let Some(token) = token {
        cmd.env("KT_API_TOKEN", token);
    }
    cmd
}

async fn kt_events(api: &str, token: Option<&str>, args: &[&str]) -> Output {
    run_command(events_command(api, token, args), None).await
}

/// `kt events list --json ARGS`, expecting success; the events.
async fn list_json(s: &Stack, token: &str, args: &[&str]) -> Vec<Value> {
    let mut full = vec!["list", "--json"];
    full.extend_from_slice(args);
    let out = kt_events(&s.serve.url, Some(token), &full).await;
    assert!(
        out.status.success(),
        "[{}] kt events {full:?}:\n{out}",
        s.backend
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "[{}] kt events {full:?}: stdout is not one JSON document ({e}):\n{out}",
            s.backend
        )
    });
    v.as_array()
        .unwrap_or_else(|| {
            panic!(
                "[{}] kt events {full:?}: not a JSON array:\n{out}",
                s.backend
            )
        })
        .clone()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn usd(micros: i64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn micros(e: &Value) -> i64 {
    (e["cost_usd"].as_f64().unwrap() * 1_000_000.0).round() as i64
}

/// `created_at` as the table shows it: `YYYY-MM-DD HH:MM:SS` (UTC).
fn table_time(e: &Value) -> String {
    let t = parse_rfc3339(e["created_at"].as_str().unwrap()).to_offset(time::UtcOffset::UTC);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap()
}

/// A chat request for `model` through `gw`: answered when it is [`ALLOWED`],
/// refused (4xx) otherwise.
async fn send(gw: &KtProcess, key: &str, model: &str) {
    let r = chat(gw.url.as_str(), Some(key), &chat_body(model, "Say hello")).await;
    if model == ALLOWED {
        assert_eq!(r.status, 200, "{model} through {}: {r}", gw.url);
    } else {
        assert!(
            (400..500).contains(&r.status),
            "{model} through {} must be refused: {r}",
            gw.url
        );
    }
}

// ---------------------------------------------------------------------------
// Flags and errors that need no data

#[tokio::test(flavor = "multi_thread")]
async fn flags_and_the_token_are_checked_before_calling_the_api() {
    // Nothing listens here: exit 2 (not 1) proves the check came first.
    let api = format!("http://127.0.0.1:{}", closed_port());
    let token = Some("kt_ak_0123456789abcdef0123456789abcdef");

    for (args, flag, hint) in [
        (&["list", "--since", "yesterday"][..], "--since", "30s"),
        (&["list", "--since", "5 minutes"][..], "--since", "RFC 3339"),
        (&["tail", "--since", "-5m"][..], "--since", "RFC 3339"),
        (&["list", "--limit", "0"][..], "--limit", "1..=1000"),
        (&["list", "--limit", "1001"][..], "--limit", "1..=1000"),
        (&["list", "--verdict", "blocked"][..], "--verdict", "block"),
        (&["tail", "--interval", "0"][..], "--interval", "seconds"),
    ] {
        let out = kt_events(&api, token, args).await;
        assert_eq!(out.status.code(), Some(2), "kt events {args:?}:\n{out}");
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(hint),
            "kt events {args:?}: the error must name {flag} and the accepted forms ({hint}):\n{out}"
        );
        assert!(out.stdout.is_empty(), "kt events {args:?}:\n{out}");
    }

    for sub in ["list", "tail"] {
        let out = kt_events(&api, None, &[sub]).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "kt events {sub} without a token:\n{out}"
        );
        assert!(
            out.stderr.contains("KT_API_TOKEN") && out.stderr.contains("kt admin create-token"),
            "kt events {sub} without a token must say how to get one:\n{out}"
        );
    }

    let out = kt_events("localhost:3000", token, &["list"]).await;
    assert_eq!(out.status.code(), Some(2), "a URL without a scheme:\n{out}");
    assert!(out.stderr.contains("KT_API_URL"), "{out}");

    for sub in ["list", "tail"] {
        let out = kt_events(&api, token, &[sub]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "kt events {sub} with no API listening:\n{out}"
        );
        assert!(
            out.stderr
                .contains(&format!("cannot reach the kt API at {api}"))
                && out.stderr.contains("kt serve")
                && out.stderr.contains("KT_API_URL"),
            "kt events {sub}: an unreachable API must be named with a hint:\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------
// kt events list

#[tokio::test(flavor = "multi_thread")]
async fn events_list_shows_a_table_json_and_filters() {
    for db in store::testing::backends().await {
        events_list(&db).await;
        db.cleanup().await;
    }
}

async fn events_list(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let token = s.admin.token.clone().unwrap();
    let eng = s.team_with_key("Engineering", "eng").await;
    let ops = s.team_with_key("Operations", "ops").await;
    let gw_eng = s.policy_gateway("gw-eng", &[allowlist()]).await;
    let gw_ops = s.policy_gateway("gw-ops", &[allowlist()]).await;

    send(&gw_eng, &eng.key, ALLOWED).await;
    send(&gw_eng, &eng.key, ALLOWED).await;
    send(&gw_eng, &eng.key, BLOCKED).await;
    send(&gw_ops, &ops.key, ALLOWED).await;
    let api_events = s
        .admin
        .wait_for_events("limit=1000", "4 events", |e| e.len() >= 4)
        .await;
    assert_eq!(api_events.len(), 4, "[{b}] {}", pretty(&api_events));

    // The table: a header, one row per event newest first, and a footer.
    let out = kt_events(&s.serve.url, Some(&token), &["list"]).await;
    assert!(out.status.success(), "[{b}] kt events list:\n{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "[{b}] header, 4 rows, footer:\n{out}");
    for title in [
        "TIME (UTC)",
        "GATEWAY",
        "TEAM",
        "MODEL",
        "VERDICT",
        "POLICY / REASON",
        "TOKENS IN",
        "TOKENS OUT",
        "COST USD",
        "LATENCY MS",
        "STATUS",
    ] {
        assert!(lines[0].contains(title), "[{b}] header `{title}`:\n{out}");
    }
    for (line, e) in lines[1..5].iter().zip(&api_events) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        let slug = if e["team_id"] == eng.team_id.as_str() {
            "eng"
        } else {
            "ops"
        };
        assert_eq!(
            format!("{} {}", cells[0], cells[1]),
            table_time(e),
            "[{b}] time of {line}"
        );
        assert_eq!(cells[2], e["gateway_name"], "[{b}] gateway of {line}");
        assert_eq!(cells[3], slug, "[{b}] team slug of {line}");
        assert_eq!(cells[4], e["model"], "[{b}] model of {line}");
        assert_eq!(cells[5], e["verdict"], "[{b}] verdict of {line}");
        assert!(
            line.contains(&usd(micros(e))),
            "[{b}] cost with 6 decimals ({}) in {line}",
            usd(micros(e))
        );
        assert!(
            cells.contains(&e["latency_ms"].to_string().as_str()),
            "[{b}] latency in {line}"
        );
        if e["verdict"] == "block" {
            assert!(
                line.contains("model-allowlist"),
                "[{b}] the blocking policy in {line}"
            );
        } else {
            assert!(
                cells.contains(&e["input_tokens"].to_string().as_str())
                    && cells.contains(&e["output_tokens"].to_string().as_str())
                    && cells.last() == Some(&"200"),
                "[{b}] tokens and upstream status in {line}"
            );
        }
    }
    let total: i64 = api_events.iter().map(micros).sum();
    assert_eq!(
        lines[5],
        format!("4 events, total cost ${}", usd(total)),
        "[{b}] footer:\n{out}"
    );
    assert!(
        out.stdout.contains("block"),
        "[{b}] the blocked request:\n{out}"
    );

    // --json: the API's events, as one array, newest first.
    let all = list_json(&s, &token, &[]).await;
    assert_eq!(ids(&all), ids(&api_events), "[{b}] --json");
    assert_eq!(all, api_events, "[{b}] --json must be the API's events");

    let blocked = list_json(&s, &token, &["--verdict", "block"]).await;
    assert_eq!(
        blocked.len(),
        1,
        "[{b}] --verdict block: {}",
        pretty(&blocked)
    );
    assert_eq!(blocked[0]["model"], BLOCKED);
    assert_eq!(blocked[0]["policy"], "model-allowlist");

    let of_ops = list_json(&s, &token, &["--team", "ops"]).await;
    assert_eq!(of_ops.len(), 1, "[{b}] --team ops: {}", pretty(&of_ops));
    assert_eq!(of_ops[0]["team_id"], ops.team_id.as_str());

    let of_eng = list_json(&s, &token, &["--team", "eng", "--verdict", "allow"]).await;
    assert_eq!(of_eng.len(), 2, "[{b}] --team eng --verdict allow");

    let on_gw = list_json(&s, &token, &["--gateway", "gw-eng"]).await;
    assert_eq!(on_gw.len(), 3, "[{b}] --gateway gw-eng: {}", pretty(&on_gw));
    assert!(on_gw.iter().all(|e| e["gateway_name"] == "gw-eng"));
    let gw_id = on_gw[0]["gateway_id"].as_str().unwrap();
    assert_eq!(
        ids(&list_json(&s, &token, &["--gateway", gw_id]).await),
        ids(&on_gw),
        "[{b}] --gateway takes an id too"
    );

    let newest = list_json(&s, &token, &["--limit", "2"]).await;
    assert_eq!(ids(&newest), ids(&api_events[..2]), "[{b}] --limit 2");
    assert_eq!(list_json(&s, &token, &["--since", "1h"]).await.len(), 4);
    assert_eq!(
        list_json(&s, &token, &["--since", "2000-01-01T00:00:00Z"])
            .await
            .len(),
        4
    );

    // --limit reached: the footer says more may match.
    let out = kt_events(&s.serve.url, Some(&token), &["list", "--limit", "1"]).await;
    assert!(out.status.success(), "[{b}] {out}");
    let footer = out.stdout.lines().last().unwrap_or_default();
    assert!(
        footer.starts_with("1 event, total cost $") && footer.contains("--limit"),
        "[{b}] footer with --limit 1:\n{out}"
    );

    // Nothing matches: just the footer.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let later = later
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let out = kt_events(&s.serve.url, Some(&token), &["list", "--since", &later]).await;
    assert!(out.status.success(), "[{b}] {out}");
    assert_eq!(
        out.stdout.trim(),
        "0 events, total cost $0.000000",
        "[{b}] {out}"
    );

    // An unknown slug is invalid input.
    let out = kt_events(&s.serve.url, Some(&token), &["list", "--team", "nope"]).await;
    assert_eq!(out.status.code(), Some(2), "[{b}] --team nope:\n{out}");
    assert!(
        out.stderr.contains("no team with slug `nope`") && out.stderr.contains("GET /v1/teams"),
        "[{b}] --team nope:\n{out}"
    );

    // A team-scoped access token sees its own team only.
    let ops_token = s
        .admin
        .create_token("ops-cli", "access", Some(&ops.team_id))
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = list_json(&s, &ops_token, &[]).await;
    assert_eq!(ids(&seen), ids(&of_ops), "[{b}] an ops token sees ops only");
    let out = kt_events(&s.serve.url, Some(&ops_token), &["list", "--team", "eng"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "[{b}] --team eng with an ops token:\n{out}"
    );

    // A token the API does not know: exit 1 with what to do.
    let out = kt_events(
        &s.serve.url,
        Some("kt_ak_0000000000000000000000000000000000"),
        &["list"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "[{b}] wrong token:\n{out}");
    assert!(
        out.stderr
            .contains("the API refused the token (401): set KT_API_TOKEN to a kt_ak_… token (`kt admin create-token`)"),
        "[{b}] wrong token:\n{out}"
    );
    // A gateway key is not an API token either.
    let out = kt_events(&s.serve.url, Some(&eng.key), &["list", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "[{b}] gateway key:\n{out}");
    assert!(
        out.stderr.contains("(401)") && out.stderr.contains("kt_gk_"),
        "[{b}] gateway key: the API's message must be shown:\n{out}"
    );
    // Another API error: its message is shown.
    let out = kt_events(&gw_eng.url, Some(&token), &["list", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "[{b}] a gateway's URL as KT_API_URL:\n{out}"
    );
    assert!(
        out.stderr.contains(gw_eng.url.as_str()),
        "[{b}] the error names the URL:\n{out}"
    );
}

// ---------------------------------------------------------------------------
// kt events tail

/// A running `kt events tail`.
struct Tail {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    what: String,
}

impl Tail {
    fn start(s: &Stack, token: &str, args: &[&str]) -> Tail {
        let mut full = vec!["tail", "--interval", "0.2"];
        full.extend_from_slice(args);
        let mut cmd = events_command(&s.serve.url, Some(token), &full);
        cmd.stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Tail {
            child,
            lines,
            what: format!("[{}] kt events {}", s.backend, full.join(" ")),
        }
    }

    /// The next `n` lines, within `TAIL_TIMEOUT`.
    async fn lines(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + TAIL_TIMEOUT;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => got.push(line),
                Ok(other) => panic!("{}: stdout ended ({other:?}) after {got:?}", self.what),
                Err(_) => panic!(
                    "{}: {} line(s) expected within {TAIL_TIMEOUT:?}, got {got:?}",
                    self.what, n
                ),
            }
        }
        got
    }

    /// The next `n` lines as JSON objects.
    async fn events(&mut self, n: usize) -> Vec<Value> {
        self.lines(n)
            .await
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: `{l}` is not JSON: {e}", self.what));
                assert!(v.is_object(), "{}: `{l}` is not an object", self.what);
                v
            })
            .collect()
    }

    /// Asserts that nothing more is printed for `wait`.
    async fn quiet(&mut self, wait: Duration) {
        if let Ok(line) = tokio::time::timeout(wait, self.lines.next_line()).await {
            panic!("{}: nothing more expected, got {line:?}", self.what);
        }
    }

    /// SIGTERM: it must exit 0, promptly.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{}: still running 5 s after SIGTERM", self.what))
            .unwrap();
        assert!(
            status.success(),
            "{}: SIGTERM must end it with 0: {status}",
            self.what
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_tail_prints_new_events_once_as_they_arrive() {
    for db in store::testing::backends().await {
        events_tail(&db).await;
        db.cleanup().await;
    }
}

async fn events_tail(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let token = s.admin.token.clone().unwrap();
    let eng = s.team_with_key("Engineering", "eng").await;
    let gw = s.policy_gateway("gw-tail", &[allowlist()]).await;

    send(&gw, &eng.key, ALLOWED).await;
    send(&gw, &eng.key, ALLOWED).await;
    let before = s.gateway_events("gw-tail", 2).await;

    // The events already there, oldest first.
    let mut all = Tail::start(&s, &token, &["--json"]);
    let backlog = all.events(2).await;
    let mut oldest_first = ids(&before);
    oldest_first.reverse();
    assert_eq!(ids(&backlog), oldest_first, "[{b}] tail's backlog");
    let mut blocks = Tail::start(&s, &token, &["--json", "--verdict", "block"]);
    let mut table = Tail::start(&s, &token, &["--team", "eng"]);
    let head = table.lines(3).await;
    assert!(
        head[0].starts_with("TIME (UTC)") && head[0].contains("POLICY / REASON"),
        "[{b}] tail's table header: {head:?}"
    );
    assert!(
        head[1].starts_with(&table_time(&before[1])) && head[1].contains("eng"),
        "[{b}] tail's table rows: {head:?}"
    );

    // New events show up as they are sent, each once.
    send(&gw, &eng.key, ALLOWED).await;
    let first = all.events(1).await;
    send(&gw, &eng.key, BLOCKED).await;
    send(&gw, &eng.key, ALLOWED).await;
    let more = all.events(2).await;
    let after = s.gateway_events("gw-tail", 5).await;
    let new: Vec<Value> = first.into_iter().chain(more).collect();
    let mut expected = ids(&after[..3]);
    expected.reverse();
    assert_eq!(
        ids(&new),
        expected,
        "[{b}] tail must print the 3 new events, oldest first"
    );
    assert_eq!(new[1]["verdict"], "block", "[{b}] {}", pretty(&new));
    assert_eq!(new, after[..3].iter().rev().cloned().collect::<Vec<_>>());

    let blocked = blocks.events(1).await;
    assert_eq!(blocked[0]["id"], after[1]["id"], "[{b}] --verdict block");
    let rows = table.lines(3).await;
    assert!(
        rows[1].contains("block") && rows[1].contains("model-allowlist"),
        "[{b}] tail's table row of the blocked request: {rows:?}"
    );

    // Nothing is printed twice.
    all.quiet(Duration::from_millis(1500)).await;
    blocks.quiet(Duration::from_millis(200)).await;
    table.quiet(Duration::from_millis(200)).await;
    all.stop().await;
    blocks.stop().await;
    table.stop().await;
}
