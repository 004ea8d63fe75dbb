//! Budgets and limits that hold for a whole fleet, through real `kt serve`
//! and `kt gateway run` processes, on every available database backend:
//!
//! - the wallet API (`/v1/wallets/*`): allocations, corrections, balance and
//!   the ledger, and who may do what;
//! - a wallet as a hard cap on a team's spend through a gateway;
//! - two replicas of one gateway (two processes, one database, a spool
//!   each) sharing one monthly budget and one rate limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

/// What one stand-in answer costs on gpt-4o: 1234 input tokens at $2.50/Mtok
/// plus 567 output tokens at $10/Mtok.
const COST_PER_REQUEST: f64 = 0.008_755;
/// What the gateway reserves for a request with `max_tokens: 1000` before
/// forwarding it: 1000 output tokens at $10/Mtok, plus a few prompt tokens.
const WORST_CASE_PER_REQUEST: f64 = 0.0100;

// ---------------------------------------------------------------------------
// Helpers

fn allowlist(name: &str, models: &str) -> String {
    format!(
        "  - name: {name}\n    type: model_filter\n    allowed_models: [{models}]\n    enabled: true\n"
    )
}

fn cost_limit(name: &str, monthly_limit: &str) -> String {
    format!(
        "  - name: {name}\n    type: cost_limit\n    monthly_limit: {monthly_limit}\n    action: block\n    enabled: true\n"
    )
}

fn rate_limit(name: &str, rpm: u32) -> String {
    format!(
        "  - name: {name}\n    type: rate_limit\n    max_requests_per_minute: {rpm}\n    action: block\n    enabled: true\n"
    )
}

/// A gpt-4o request asking for at most 1000 output tokens.
fn capped_request(text: &str) -> Value {
    let mut body = chat_body("gpt-4o", text);
    body["max_tokens"] = json!(1000);
    body
}

fn usd(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number of USD, got {v}"))
}

/// Asserts a USD amount (to the micro-dollar).
fn assert_usd(v: &Value, expected: f64, what: &str) {
    assert!(
        (usd(v) - expected).abs() < 0.000_000_5,
        "{what}: expected ${expected}, got {v}"
    );
}

async fn allocate(api: &Api, team_id: &str, amount: f64, reason: Option<&str>) -> Reply {
    let mut body = json!({"team_id": team_id, "amount": amount});
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
    api.post("/v1/wallets/allocate", &body).await
}

async fn balance(api: &Api, team_id: &str) -> Reply {
    api.get(&format!("/v1/wallets/balance?team_id={team_id}"))
        .await
}

async fn ledger(api: &Api, team_id: &str) -> Vec<Value> {
    let r = api
        .get(&format!("/v1/wallets/transactions?team_id={team_id}"))
        .await;
    assert_eq!(r.status, 200, "GET /v1/wallets/transactions: {r}");
    r.data()
}

/// Asserts a wallet answer: its numbers, and that the balance is what is
/// left of the allocation.
fn assert_wallet(r: &Reply, team_id: &str, allocated: f64, spent: f64, what: &str) {
    assert_eq!(r.status, 200, "{what}: {r}");
    let w = &r.body;
    assert_eq!(w["team_id"], team_id, "{what}: team_id: {r}");
    assert_usd(&w["allocated"], allocated, &format!("{what}: allocated"));
    assert_usd(&w["spent"], spent, &format!("{what}: spent"));
    let reserved = usd(&w["reserved"]);
    assert!(reserved >= 0.0, "{what}: reserved: {r}");
    assert_usd(
        &w["balance"],
        allocated - spent - reserved,
        &format!("{what}: balance = allocated - spent - reserved"),
    );
}

/// Asserts an API error: status, `error.code`, and a message containing
/// `needle` (case-insensitive).
fn assert_api_error(r: &Reply, status: u16, code: &str, needle: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: expected {status}, got {r}");
    r.assert_error_shape(what);
    assert_eq!(r.body["error"]["code"], code, "{what}: error.code: {r}");
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.to_lowercase().contains(&needle.to_lowercase()),
        "{what}: the message should mention `{needle}`: {r}"
    );
}

/// Asserts a 402 from a gateway: `budget_exceeded`, by `policy`.
fn assert_budget_refusal(r: &Reply, policy: &str, what: &str) {
    assert_eq!(r.status, 402, "{what}: {r}");
    assert_eq!(r.body["error"]["code"], "budget_exceeded", "{what}: {r}");
    assert_eq!(r.body["error"]["policy"], policy, "{what}: {r}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: a refusal explains itself: {r}"
    );
}

/// Sleeps into the next UTC minute when fewer than `margin` are left of the
/// current one (rate windows are calendar minutes); returns the window's start.
async fn whole_minute_ahead(margin: Duration) -> i64 {
    let now = store::now_ms();
    let left = 60_000 - now.rem_euclid(60_000);
    if left < i64::try_from(margin.as_millis()).unwrap() {
        tokio::time::sleep(Duration::from_millis(u64::try_from(left).unwrap() + 200)).await;
    }
    let now = store::now_ms();
    now - now.rem_euclid(60_000)
}

// ---------------------------------------------------------------------------
// 1. The wallet API

#[tokio::test(flavor = "multi_thread")]
async fn wallet_api_allocates_reports_and_keeps_a_ledger() {
    for db in store::testing::backends().await {
        wallet_api(&db).await;
        db.cleanup().await;
    }
}

async fn wallet_api(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let started = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
    let eng = s.admin.create_team("Engineering", "eng").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = s.admin.create_team("Data", "data").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_token = s
        .admin
        .get("/v1/tokens")
        .await
        .data()
        .into_iter()
        .find(|t| t["name"] == "integration-tests")
        .unwrap_or_else(|| panic!("[{b}] the admin token is listed in GET /v1/tokens"));
    let admin_token_id = admin_token["id"].as_str().unwrap().to_owned();

    // A team without a wallet: zeros, and it says so.
    let r = balance(&s.admin, &eng).await;
    assert_wallet(&r, &eng, 0.0, 0.0, &format!("[{b}] before any allocation"));
    assert_eq!(r.body["has_wallet"], false, "[{b}] no wallet yet: {r}");
    assert_usd(&r.body["reserved"], 0.0, &format!("[{b}] nothing reserved"));

    // Two allocations add up; the answer is the wallet after each.
    let r = allocate(&s.admin, &eng, 25.0, Some("Q3 pilot")).await;
    assert_wallet(&r, &eng, 25.0, 0.0, &format!("[{b}] first allocation"));
    assert_usd(&r.body["balance"], 25.0, &format!("[{b}] first allocation"));
    let r = allocate(&s.admin, &eng, 0.5, None).await;
    assert_wallet(&r, &eng, 25.5, 0.0, &format!("[{b}] second allocation"));
    // A negative amount corrects an earlier allocation…
    let r = allocate(&s.admin, &eng, -5.25, Some("typo in the pilot amount")).await;
    assert_wallet(&r, &eng, 20.25, 0.0, &format!("[{b}] a correction"));
    // …but never below nothing allocated.
    let r = allocate(&s.admin, &eng, -100.0, Some("too much")).await;
    assert_api_error(
        &r,
        422,
        "invalid",
        "negative",
        &format!("[{b}] a correction past the total allocation"),
    );
    let r = balance(&s.admin, &eng).await;
    assert_wallet(
        &r,
        &eng,
        20.25,
        0.0,
        &format!("[{b}] balance after the refused correction"),
    );
    assert_eq!(r.body["has_wallet"], true, "[{b}] {r}");
    assert_usd(&r.body["balance"], 20.25, &format!("[{b}] balance"));
    // Another team's wallet is untouched.
    let r = balance(&s.admin, &data).await;
    assert_wallet(&r, &data, 0.0, 0.0, &format!("[{b}] the other team"));
    assert_eq!(r.body["has_wallet"], false, "[{b}] {r}");

    // The ledger: who, how much, why and when, newest first.
    let entries = ledger(&s.admin, &eng).await;
    assert_eq!(
        entries.len(),
        3,
        "[{b}] two allocations and a correction (the refused one is not recorded):\n{}",
        pretty(&entries)
    );
    let expected = [
        ("adjust", -5.25, 20.25, Some("typo in the pilot amount")),
        ("allocate", 0.5, 25.5, None),
        ("allocate", 25.0, 25.0, Some("Q3 pilot")),
    ];
    let now = time::OffsetDateTime::now_utc() + Duration::from_secs(1);
    let mut previous = now;
    let mut ids = std::collections::HashSet::new();
    for (entry, (kind, amount, after, reason)) in entries.iter().zip(expected) {
        let what = format!("[{b}] ledger entry {entry}");
        assert!(
            entry["id"]
                .as_str()
                .is_some_and(|id| ids.insert(id.to_owned())),
            "{what}: a unique id"
        );
        assert_eq!(entry["team_id"], eng.as_str(), "{what}");
        assert_eq!(entry["kind"], kind, "{what}");
        assert_usd(&entry["amount"], amount, &format!("{what}: amount"));
        assert_usd(
            &entry["balance_after"],
            after,
            &format!("{what}: balance_after"),
        );
        assert_eq!(entry["reason"], json!(reason), "{what}: reason");
        let actor = entry["actor"].as_str().unwrap_or_default();
        assert!(
            actor.contains("integration-tests") && actor.contains(&admin_token_id),
            "{what}: the actor names the API token (`integration-tests`, {admin_token_id})"
        );
        let at = parse_rfc3339(entry["created_at"].as_str().unwrap_or_default());
        assert!(
            started <= at && at <= previous,
            "{what}: created_at between the test's start and the newer entry's time"
        );
        previous = at;
    }
    let r = s
        .admin
        .get(&format!("/v1/wallets/transactions?team_id={eng}&limit=1"))
        .await;
    assert_eq!(r.status, 200, "[{b}] limit=1: {r}");
    let newest = r.data();
    assert_eq!(newest.len(), 1, "[{b}] limit=1: {r}");
    assert_eq!(
        newest[0]["id"], entries[0]["id"],
        "[{b}] limit=1: the newest"
    );
    assert!(
        ledger(&s.admin, &data).await.is_empty(),
        "[{b}] a team without a wallet has an empty ledger"
    );

    // Unknown teams.
    let r = allocate(&s.admin, "no-such-team", 1.0, None).await;
    assert_api_error(
        &r,
        404,
        "not_found",
        "team",
        &format!("[{b}] allocate to an unknown team"),
    );
    let r = balance(&s.admin, "no-such-team").await;
    assert_api_error(
        &r,
        404,
        "not_found",
        "team",
        &format!("[{b}] balance of an unknown team"),
    );

    // Bad requests say what is wrong.
    let bad_bodies = [
        (
            json!({"team_id": eng, "amount": 10, "currency": "EUR"}),
            "currency",
            "an unknown field",
        ),
        (
            json!({"team_id": eng, "amount": "10"}),
            "amount",
            "amount as a string",
        ),
        (json!({"amount": 10}), "team_id", "no team_id"),
        (json!({"team_id": eng}), "amount", "no amount"),
        (
            json!({"team_id": eng, "amount": 0}),
            "amount",
            "a zero amount",
        ),
        (
            json!({"team_id": "", "amount": 1}),
            "team_id",
            "an empty team_id",
        ),
    ];
    for (body, needle, what) in bad_bodies {
        let r = s.admin.post("/v1/wallets/allocate", &body).await;
        assert_api_error(&r, 422, "invalid", needle, &format!("[{b}] {what}: {body}"));
    }
    let r = Reply::read(
        s.admin
            .http
            .post(format!("{}/v1/wallets/allocate", s.admin.base))
            .bearer_auth(s.admin.token.as_deref().unwrap())
            .header("content-type", "application/json")
            .body("{\"team_id\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_api_error(
        &r,
        400,
        "bad_request",
        "json",
        &format!("[{b}] a body that is not JSON"),
    );
    let r = s.admin.get("/v1/wallets/balance").await;
    assert_api_error(
        &r,
        400,
        "bad_request",
        "team_id",
        &format!("[{b}] balance without team_id"),
    );
    let r = s.admin.get("/v1/wallets/transactions").await;
    assert_api_error(
        &r,
        400,
        "bad_request",
        "team_id",
        &format!("[{b}] transactions without team_id"),
    );
    let r = s
        .admin
        .get(&format!("/v1/wallets/transactions?team_id={eng}&limit=0"))
        .await;
    assert_api_error(&r, 400, "bad_request", "limit", &format!("[{b}] limit=0"));
    let r = s
        .admin
        .with_token(None)
        .get(&format!("/v1/wallets/balance?team_id={eng}"))
        .await;
    assert_api_error(
        &r,
        401,
        "unauthorized",
        "authorization",
        &format!("[{b}] no token"),
    );

    // A team's own access token reads its wallet, never another team's, and
    // cannot allocate at all.
    let lead = s.admin.create_token("eng-lead", "access", Some(&eng)).await;
    let team_api = s.admin.with_token(lead["token"].as_str());
    for team in [&eng, &data] {
        let r = allocate(&team_api, team, 1000.0, Some("self-service")).await;
        assert_api_error(
            &r,
            403,
            "forbidden",
            "only org admins",
            &format!("[{b}] a team token allocating credit"),
        );
    }
    let r = balance(&team_api, &eng).await;
    assert_wallet(
        &r,
        &eng,
        20.25,
        0.0,
        &format!("[{b}] the team token reads its own wallet"),
    );
    assert_eq!(
        ledger(&team_api, &eng).await.len(),
        3,
        "[{b}] its own ledger"
    );
    let r = balance(&team_api, &data).await;
    assert_api_error(
        &r,
        404,
        "not_found",
        "team",
        &format!("[{b}] a team token, another team's balance"),
    );
    let r = team_api
        .get(&format!("/v1/wallets/transactions?team_id={data}"))
        .await;
    assert_api_error(
        &r,
        404,
        "not_found",
        "team",
        &format!("[{b}] a team token, another team's ledger"),
    );

    // Nothing refused above reached the ledger.
    assert_eq!(
        ledger(&s.admin, &eng).await.len(),
        3,
        "[{b}] refused requests leave no ledger entry"
    );
    assert!(ledger(&s.admin, &data).await.is_empty(), "[{b}]");
}

// ---------------------------------------------------------------------------
// 2. A wallet caps a team's spend through the gateway

#[tokio::test(flavor = "multi_thread")]
async fn wallet_is_a_hard_cap_through_the_gateway() {
    for db in store::testing::backends().await {
        wallet_cap(&db).await;
        db.cleanup().await;
    }
}

async fn wallet_cap(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    // No cost_limit in the config: only a wallet can cap this team.
    let gw = s
        .policy_gateway("wallet-cap", &[allowlist("models", "gpt-4o")])
        .await;
    let body = capped_request("Spend from the wallet");

    // No wallet: not limited (10 requests cost ≈$0.0876, far more than the
    // wallet allocated below).
    let answers =
        futures::future::join_all((0..10).map(|_| chat(&gw.url, Some(&eng.key), &body))).await;
    for r in &answers {
        assert_eq!(
            r.status, 200,
            "[{b}] a team without a wallet is not capped: {r}"
        );
    }
    let before = s.gateway_events("wallet-cap", 10).await;
    assert!(
        before.iter().all(|e| e["verdict"] == "allow"),
        "[{b}] {}",
        pretty(&before)
    );
    let r = balance(&s.admin, &eng.team_id).await;
    assert_eq!(r.body["has_wallet"], false, "[{b}] {r}");

    // $0.035 covers three requests ($0.0263) but not four ($0.0350 + ε).
    let allocation = 0.035;
    let r = allocate(&s.admin, &eng.team_id, allocation, Some("small pilot")).await;
    assert_wallet(
        &r,
        &eng.team_id,
        allocation,
        0.0,
        &format!("[{b}] allocation"),
    );
    // A new wallet takes effect on every gateway within its effective delay
    // (gateways re-read which teams have wallets every 5 s); spend from
    // before is not charged to it.
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(store::budgets::WALLET_EFFECTIVE_AFTER_MS).unwrap() + 500,
    ))
    .await;

    let answers =
        futures::future::join_all((0..20).map(|_| chat(&gw.url, Some(&eng.key), &body))).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    eprintln!("[{b}] 20 concurrent requests on a ${allocation} wallet: {ok} answered");
    for r in &answers {
        match r.status {
            200 => {}
            402 => assert_budget_refusal(r, "wallet", &format!("[{b}] wallet spent")),
            _ => panic!("[{b}] every request is answered 200 or 402, not {r}"),
        }
    }
    let spend = ok as f64 * COST_PER_REQUEST;
    assert!(
        spend <= allocation,
        "[{b}] {ok} requests were admitted on a ${allocation} wallet: ${spend:.6} spent \
         (the wallet must be a hard cap once in effect, also on a gateway \
         that served the team before it had a wallet)"
    );
    // Reservations of ≈$0.0100 each: at least three fit in $0.035, less what
    // the lease-halving leaves in a slice too small for one more request.
    assert!(
        ok >= 2,
        "[{b}] the wallet admits what it covers ({ok} admitted)"
    );
    assert!(ok < 20, "[{b}] the wallet refused nothing");
    assert_eq!(
        s.standin.count(),
        10 + ok,
        "[{b}] refused requests never reach the provider"
    );

    // The events say the same, and the wallet's spend is theirs.
    let events = s.gateway_events("wallet-cap", 30).await;
    let burst = &events[..20];
    let allowed: Vec<&Value> = burst.iter().filter(|e| e["verdict"] == "allow").collect();
    assert_eq!(
        allowed.len(),
        ok,
        "[{b}] one allow event per answer:\n{}",
        pretty(&burst)
    );
    let events_cost: f64 = allowed.iter().map(|e| usd(&e["cost_usd"])).sum();
    assert!(
        (events_cost - spend).abs() < 0.000_001,
        "[{b}] events cost ${events_cost}, expected {ok} × ${COST_PER_REQUEST}"
    );
    for e in burst.iter().filter(|e| e["verdict"] != "allow") {
        assert_eq!(e["verdict"], "block", "[{b}] {e}");
        assert_eq!(e["reason"], "budget_exceeded", "[{b}] {e}");
        assert_eq!(e["policy"], "wallet", "[{b}] {e}");
        assert_usd(
            &e["cost_usd"],
            0.0,
            &format!("[{b}] a refused request costs nothing"),
        );
    }
    let deadline = Instant::now() + EVENT_TIMEOUT;
    let r = loop {
        let r = balance(&s.admin, &eng.team_id).await;
        if (usd(&r.body["spent"]) - events_cost).abs() < 0.000_001 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_wallet(
        &r,
        &eng.team_id,
        allocation,
        events_cost,
        &format!(
            "[{b}] the wallet's spend is the events' cost (spend before the wallet is not charged)"
        ),
    );

    // What the gateway holds but does not use goes back to the wallet.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = balance(&s.admin, &eng.team_id).await;
        if usd(&r.body["reserved"]) == 0.0 {
            assert_usd(
                &r.body["balance"],
                allocation - events_cost,
                &format!("[{b}] balance once idle"),
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{b}] an idle gateway still holds part of the wallet after 20 s: {r}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A top-up lets the team spend again.
    let r = allocate(&s.admin, &eng.team_id, 0.05, Some("top-up")).await;
    assert_wallet(
        &r,
        &eng.team_id,
        allocation + 0.05,
        events_cost,
        &format!("[{b}] top-up"),
    );
    let r = chat(&gw.url, Some(&eng.key), &body).await;
    assert_eq!(r.status, 200, "[{b}] after a top-up: {r}");
}

// ---------------------------------------------------------------------------
// 3. Two replicas of one gateway share the budget and the rate limit

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_one_budget_and_one_rate_limit() {
    for db in store::testing::backends().await {
        two_replicas(&db).await;
        db.cleanup().await;
    }
}

async fn two_replicas(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;

    // (a) One monthly cap for both replicas.
    let fleet = s.team_with_key("Fleet", "fleet").await;
    let cap = 0.10;
    let one = s
        .policy_gateway("fleet-cost", &[cost_limit("fleet-cap", "0.10")])
        .await;
    let two = s.policy_gateway_replica("fleet-cost").await;
    assert_ne!(one.url, two.url, "[{b}] two processes");
    let body = capped_request("Two replicas, one budget");
    let answers = futures::future::join_all((0..60).map(|i| {
        let url = if i % 2 == 0 { &one.url } else { &two.url };
        let body = &body;
        let key = &fleet.key;
        async move { (i % 2, chat(url, Some(key), body).await) }
    }))
    .await;
    let mut ok = [0usize; 2];
    for (replica, r) in &answers {
        match r.status {
            200 => ok[*replica] += 1,
            402 => assert_budget_refusal(r, "fleet-cap", &format!("[{b}] the shared cap")),
            _ => panic!("[{b}] every request is answered 200 or 402, not {r}"),
        }
    }
    let admitted = ok[0] + ok[1];
    eprintln!(
        "[{b}] 60 concurrent requests over two replicas under a ${cap} cap: {} + {} answered",
        ok[0], ok[1]
    );
    let spend = admitted as f64 * COST_PER_REQUEST;
    assert!(
        spend <= cap,
        "[{b}] {admitted} requests admitted ({} + {}): ${spend:.6} spent past the ${cap} cap \
         (each replica enforcing the cap alone would admit up to twice what fits)",
        ok[0],
        ok[1]
    );
    // Leases may strand a little budget near the cap: each replica may keep
    // a slice smaller than one request's reservation, so up to two requests'
    // worth may go unused.
    let least = (cap / WORST_CASE_PER_REQUEST).floor() as usize - 2;
    assert!(
        admitted >= least,
        "[{b}] only {admitted} requests admitted under a ${cap} cap: at least {least} fit"
    );
    // Which replica gets the budget is a race (one may take it all); what
    // matters is the total.
    assert_eq!(
        s.standin.count(),
        admitted,
        "[{b}] refused requests never reach the provider"
    );
    // Both replicas record under the gateway's one name.
    let events = s.gateway_events("fleet-cost", 60).await;
    let cost: f64 = events.iter().map(|e| usd(&e["cost_usd"])).sum();
    assert!(
        cost <= cap + 0.000_001,
        "[{b}] the events' cost ${cost} passed the ${cap} cap"
    );
    assert_eq!(
        events.iter().filter(|e| e["verdict"] == "allow").count(),
        admitted,
        "[{b}] one allow event per answer"
    );

    // The replicas hold leases of the monthly cap, not of a wallet: a team
    // without a wallet shows none.
    let r = balance(&s.admin, &fleet.team_id).await;
    assert_wallet(&r, &fleet.team_id, 0.0, 0.0, &format!("[{b}] no wallet"));
    assert_eq!(r.body["has_wallet"], false, "[{b}] {r}");
    assert_usd(
        &r.body["reserved"],
        0.0,
        &format!("[{b}] no wallet, nothing reserved from it"),
    );

    // (b) One rate limit for both replicas: 10 requests per minute, however
    // they are spread.
    let research = s.team_with_key("Research", "research").await;
    let one = s
        .policy_gateway("fleet-rpm", &[rate_limit("fleet-rpm-10", 10)])
        .await;
    let two = s.policy_gateway_replica("fleet-rpm").await;
    let provider_before = s.standin.count();
    // Rate windows are UTC calendar minutes: all 30 requests must land in one.
    let window = whole_minute_ahead(Duration::from_secs(5)).await;
    let mut answers = Vec::new();
    for i in 0..30 {
        let url = if i % 2 == 0 { &one.url } else { &two.url };
        answers.push((
            i % 2,
            chat(url, Some(&research.key), &chat_body("gpt-4o", "hi")).await,
        ));
    }
    let end = store::now_ms();
    assert_eq!(
        end - end.rem_euclid(60_000),
        window,
        "[{b}] the 30 requests straddled a minute boundary (took {} ms): rerun",
        end - window
    );
    let mut ok = [0usize; 2];
    for (replica, r) in &answers {
        match r.status {
            200 => ok[*replica] += 1,
            429 => {
                let what = format!("[{b}] rate limited");
                assert_eq!(
                    r.body["error"]["code"], "rate_limit_exceeded",
                    "{what}: {r}"
                );
                assert_eq!(r.body["error"]["policy"], "fleet-rpm-10", "{what}: {r}");
                let header = |name: &str| {
                    r.headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_else(|| panic!("{what}: no `{name}` header: {:?}", r.headers))
                        .to_owned()
                };
                let retry_after: u64 = header("retry-after")
                    .parse()
                    .unwrap_or_else(|e| panic!("{what}: Retry-After must be seconds: {e}"));
                assert!(
                    (1..=60).contains(&retry_after),
                    "{what}: Retry-After {retry_after} s (the window is one minute)"
                );
                assert_eq!(header("ratelimit-limit"), "10", "{what}");
                assert_eq!(header("ratelimit-remaining"), "0", "{what}");
                assert_eq!(
                    header("ratelimit-reset"),
                    retry_after.to_string(),
                    "{what}: RateLimit-Reset"
                );
            }
            _ => panic!("[{b}] every request is answered 200 or 429, not {r}"),
        }
    }
    eprintln!(
        "[{b}] 30 requests alternating over two replicas, 10 per minute allowed: {} + {} answered",
        ok[0], ok[1]
    );
    assert_eq!(
        ok[0] + ok[1],
        10,
        "[{b}] exactly 10 of 30 requests answered in one minute ({} + {}); \
         a limit counted per replica would admit up to 20",
        ok[0],
        ok[1]
    );
    assert_eq!(
        s.standin.count() - provider_before,
        10,
        "[{b}] rate-limited requests never reach the provider"
    );
    let events = s.gateway_events("fleet-rpm", 30).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["verdict"] == "block" && e["reason"] == "rate_limited")
            .count(),
        20,
        "[{b}] one rate_limited event per refusal:\n{}",
        pretty(&events)
    );
}
