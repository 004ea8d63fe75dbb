//! Escalations (SPEC §10) through a real gateway and `kt serve`, on SQLite
//! and PostgreSQL: a request an `escalate` policy holds answers 409 with an
//! escalation id; the team's reviewer (its access token) sees it, another
//! team does not; claim and approve; the same request resent with
//! `X-Escalation-Id` passes exactly once, other content never; denial; and
//! expiry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn held_requests_pass_once_after_a_reviewers_approval() {
    for db in store::testing::backends().await {
        escalations(&db).await;
        db.cleanup().await;
    }
}

const ESCALATE_EMAILS: &str = "  - name: pii-review
    type: pii_detection
    action: escalate
    entities: [email]
";

async fn send(gw: &str, key: &str, text: &str, escalation: Option<&str>) -> Reply {
    let mut rb = reqwest::Client::new()
        .post(format!("{gw}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body("gpt-4o", text));
    if let Some(id) = escalation {
        rb = rb.header("x-escalation-id", id);
    }
    Reply::read(rb.send().await.unwrap()).await
}

async fn escalations(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let ops = s.team_with_key("Operations", "ops").await;
    let config = policies_config(&s.standin, &[ESCALATE_EMAILS.to_owned()]);
    let file = s.install.write_config("reviewed", &config);
    let gw = s.install.gateway(&file, &[]).await;
    let token = |team: &str| {
        let admin = s.admin.clone();
        let team = team.to_owned();
        async move {
            let t = admin.create_token("reviewer", "access", Some(&team)).await;
            admin.with_token(Some(t["token"].as_str().unwrap()))
        }
    };
    let eng_reviewer = token(&eng.team_id).await;
    let ops_reviewer = token(&ops.team_id).await;

    // --- Held: 409 with an escalation id; nothing reached the provider.
    let prompt = "Please email alice@example.com the summary";
    let before = s.standin.requests().len();
    let r = send(&gw.url, &eng.key, prompt, None).await;
    assert_eq!(r.status, 409, "[{b}] {r}");
    assert_eq!(r.body["error"]["code"], "escalation_required", "[{b}] {r}");
    let id = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.standin.requests().len(),
        before,
        "[{b}] held, not forwarded"
    );

    // --- Only the team's reviewers see it; metadata only.
    let listed = eng_reviewer.get("/v1/escalations?status=pending").await;
    let e = listed
        .data()
        .into_iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("[{b}] {listed}"));
    assert_eq!(e["entities"], json!(["email"]), "[{b}] {e}");
    assert_eq!(e["policy"], "pii-review");
    assert!(
        !listed.to_string().contains("alice@example.com"),
        "[{b}] no prompt text"
    );
    assert!(
        ops_reviewer.get("/v1/escalations").await.data().is_empty(),
        "[{b}] another team sees none"
    );
    for (method, path) in [
        ("GET", format!("/v1/escalations/{id}")),
        ("POST", format!("/v1/escalations/{id}/claim")),
        ("POST", format!("/v1/escalations/{id}/resolve")),
    ] {
        let r = match method {
            "GET" => ops_reviewer.get(&path).await,
            _ => {
                ops_reviewer
                    .post(&path, &json!({"outcome": "approved"}))
                    .await
            }
        };
        assert_eq!(r.status, 404, "[{b}] {method} {path} by another team: {r}");
    }

    // --- Before approval the retry is refused.
    let r = send(&gw.url, &eng.key, prompt, Some(&id)).await;
    assert_eq!(r.status, 409, "[{b}] not approved yet: {r}");

    // --- Claim, approve; the same request passes once.
    let r = eng_reviewer
        .post(&format!("/v1/escalations/{id}/claim"), &json!({}))
        .await;
    assert_eq!(r.body["status"], "claimed", "[{b}] {r}");
    let r = eng_reviewer
        .post(&format!("/v1/escalations/{id}/claim"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "[{b}] claimed twice: {r}");
    let r = eng_reviewer
        .post(
            &format!("/v1/escalations/{id}/resolve"),
            &json!({"outcome": "maybe"}),
        )
        .await;
    assert_eq!(r.status, 422, "[{b}] {r}");
    let r = eng_reviewer
        .post(
            &format!("/v1/escalations/{id}/resolve"),
            &json!({"outcome": "approved", "note": "customer asked for it"}),
        )
        .await;
    assert_eq!(r.body["status"], "approved", "[{b}] {r}");
    let r = send(
        &gw.url,
        &eng.key,
        "Please email bob@example.com instead",
        Some(&id),
    )
    .await;
    assert_eq!(r.status, 409, "[{b}] other content: {r}");
    let r = send(&gw.url, &eng.key, prompt, Some(&id)).await;
    assert_eq!(r.status, 200, "[{b}] approved retry: {r}");
    let r = send(&gw.url, &eng.key, prompt, Some(&id)).await;
    assert_eq!(r.status, 409, "[{b}] a second retry: {r}");
    let shown = eng_reviewer.get(&format!("/v1/escalations/{id}")).await;
    assert!(shown.body["used_at"].is_string(), "[{b}] {shown}");
    let r = eng_reviewer
        .post(
            &format!("/v1/escalations/{id}/resolve"),
            &json!({"outcome": "denied"}),
        )
        .await;
    assert_eq!(r.status, 409, "[{b}] resolved twice: {r}");

    // --- Denied: the retry never passes.
    let r = send(&gw.url, &eng.key, "Write to carol@example.com", None).await;
    let denied = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = eng_reviewer
        .post(
            &format!("/v1/escalations/{denied}/resolve"),
            &json!({"outcome": "denied", "note": "no customer data"}),
        )
        .await;
    assert_eq!(r.body["status"], "denied", "[{b}] {r}");
    let r = send(
        &gw.url,
        &eng.key,
        "Write to carol@example.com",
        Some(&denied),
    )
    .await;
    assert_eq!(r.status, 409, "[{b}] denied: {r}");
    // Another team's key cannot use this team's approval either.
    let r = send(&gw.url, &ops.key, prompt, Some(&id)).await;
    assert_eq!(r.status, 409, "[{b}] {r}");

    // --- Expiry: an escalation left unresolved cannot be approved.
    let short = s
        .install
        .gateway_with_env(
            &s.install.write_config("reviewed-short", &config),
            &[],
            &[("KT_ESCALATION_TTL_SECONDS", "1")],
        )
        .await;
    let r = send(&short.url, &eng.key, "mail dave@example.com", None).await;
    let expiring = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = eng_reviewer
        .post(
            &format!("/v1/escalations/{expiring}/resolve"),
            &json!({"outcome": "approved"}),
        )
        .await;
    assert_eq!(r.status, 409, "[{b}] expired: {r}");
    let expired = eng_reviewer.get("/v1/escalations?status=expired").await;
    assert!(
        expired.data().iter().any(|e| e["id"] == expiring.as_str()),
        "[{b}] {expired}"
    );
    // The org admin sees every team's; audit entries name the reviewer.
    let all = s.admin.get("/v1/escalations").await;
    assert!(all.data().len() >= 3, "[{b}] {all}");
    let audit = s.admin.get("/v1/audit?action=escalation.").await;
    let actions: Vec<Value> = audit.data().iter().map(|a| a["action"].clone()).collect();
    assert!(
        actions.contains(&json!("escalation.resolve")),
        "[{b}] {audit}"
    );
    assert!(
        actions.contains(&json!("escalation.claim")),
        "[{b}] {audit}"
    );
}
