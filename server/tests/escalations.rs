//! Escalations (SPEC §10) through a real gateway and `kt serve`, on SQLite
//! and PostgreSQL: a request an `escalate` policy holds answers 409 with an
//! escalation id; the team sees it, another team does not; routing (the org
//! admins while the team names no reviewers, then only its named reviewers,
//! through a personal token); claim and approve; the same request resent
//! with `X-Escalation-Id` passes exactly once, other content never, and the
//! team's other policies still apply to it; denial; expiry; a
//! `content_filter` that keeps the prompt for the reviewers, sealed, shown
//! to them only and erased on resolution and on expiry.
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
  - name: deal-review
    type: content_filter
    keywords: [acquisition, merger agreement]
    patterns:
      - name: project_codename
        pattern: 'PRJ-[0-9]{4}'
    reviewers_see_prompt: true
  - name: phones
    type: pii_detection
    action: redact
    entities: [phone]
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
    let eng_token = token(&eng.team_id).await;
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

    // --- Only the team sees it; metadata only.
    let listed = eng_token.get("/v1/escalations?status=pending").await;
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

    // --- Routing: while the team names no reviewers, its escalations go
    // to the org admins; the team's own token cannot decide.
    let claim = format!("/v1/escalations/{id}/claim");
    let r = eng_token.post(&claim, &json!({})).await;
    assert_eq!(r.status, 403, "[{b}] {r}");
    assert!(r.to_string().contains("org admins"), "[{b}] {r}");
    let r = s.admin.post(&claim, &json!({})).await;
    assert_eq!(r.body["status"], "claimed", "[{b}] org admin claims: {r}");
    let r = s
        .admin
        .post(&format!("/v1/escalations/{id}/unclaim"), &json!({}))
        .await;
    assert_eq!(r.body["status"], "pending", "[{b}] {r}");

    // The team names its reviewers: a team lead with a personal token, and
    // a member (who reviews in the console).
    let reviewers = format!("/v1/teams/{}/reviewers", eng.team_id);
    let r = eng_token.get(&reviewers).await;
    assert_eq!(r.body["routed_to"], "org_admins", "[{b}] {r}");
    s.team_user(&eng.team_id, "lead@eng.example", "team_lead")
        .await;
    s.team_user(&eng.team_id, "rita@eng.example", "member")
        .await;
    s.team_user(&eng.team_id, "vic@eng.example", "viewer").await;
    s.team_user(&ops.team_id, "otto@ops.example", "team_lead")
        .await;
    for (who, why) in [
        ("vic@eng.example", "viewer"),
        ("otto@ops.example", "not a member of team eng"),
        ("nobody@eng.example", "no console user"),
    ] {
        let r = s.admin.put(&reviewers, &json!({"reviewers": [who]})).await;
        assert_eq!(r.status, 422, "[{b}] {who}: {r}");
        assert!(r.to_string().contains(why), "[{b}] {who}: {r}");
    }
    let r = ops_reviewer
        .put(&reviewers, &json!({"reviewers": ["otto@ops.example"]}))
        .await;
    assert_eq!(r.status, 404, "[{b}] another team's reviewers: {r}");
    let r = s
        .admin
        .put(
            &reviewers,
            &json!({"reviewers": ["lead@eng.example", "rita@eng.example"]}),
        )
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    assert_eq!(r.body["routed_to"], "team_reviewers", "[{b}] {r}");
    let emails: Vec<String> = r
        .data()
        .iter()
        .map(|v| v["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        emails,
        ["lead@eng.example", "rita@eng.example"],
        "[{b}] {r}"
    );
    // A personal token: for its user only, with the user's scope.
    let r = s
        .admin
        .post(
            "/v1/tokens",
            &json!({"name": "rita", "token_type": "access", "user": "rita@eng.example"}),
        )
        .await;
    assert_eq!(r.status, 400, "[{b}] members review in the console: {r}");
    let r = s
        .admin
        .post(
            "/v1/tokens",
            &json!({"name": "lead", "token_type": "access", "user": "lead@eng.example", "team_id": ops.team_id}),
        )
        .await;
    assert_eq!(
        r.status, 400,
        "[{b}] a personal token has its user's scope: {r}"
    );
    let r = s
        .admin
        .post(
            "/v1/tokens",
            &json!({"name": "lead", "token_type": "access", "user": "lead@eng.example"}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    assert_eq!(r.body["team_id"], eng.team_id.as_str(), "[{b}] {r}");
    let eng_reviewer = s.admin.with_token(Some(r.body["token"].as_str().unwrap()));
    // Now the org admin and the team's token are not its reviewers.
    for (who, api) in [("org admin", &s.admin), ("team token", &eng_token)] {
        let r = api.post(&claim, &json!({})).await;
        assert_eq!(r.status, 403, "[{b}] {who}: {r}");
        assert!(
            r.to_string().contains("lead@eng.example"),
            "[{b}] {who}: {r}"
        );
    }

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
    // The team's other policies still applied to it (nothing to redact
    // here, the retry passed the review only); see the phone case below.
    let sent = s.standin.requests();
    assert!(
        last_user_text(&sent.last().unwrap().body).contains("alice@example.com"),
        "[{b}] the approved request reached the provider as sent"
    );
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

    // --- A content filter keeps the prompt for the reviewers only.
    let deal = "Draft the acquisition memo for PRJ-2049; questions to +1 415 555 0134";
    let r = send(&gw.url, &eng.key, deal, None).await;
    assert_eq!(r.status, 409, "[{b}] {r}");
    assert_eq!(r.body["error"]["policy"], "deal-review", "[{b}] {r}");
    let deal_id = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = format!("/v1/escalations/{deal_id}");
    let shown = eng_reviewer.get(&one).await;
    assert_eq!(
        shown.body["entities"],
        json!(["acquisition", "project_codename"]),
        "[{b}] the matched terms: {shown}"
    );
    assert_eq!(shown.body["prompt_kept"], true, "[{b}] {shown}");
    assert!(
        shown.body["prompt"]
            .as_str()
            .unwrap_or_default()
            .contains(deal),
        "[{b}] the reviewer reads the request: {shown}"
    );
    for (who, api) in [("the team's token", &eng_token), ("org admin", &s.admin)] {
        let r = api.get(&one).await;
        assert_eq!(r.status, 200, "[{b}] {who}: {r}");
        assert!(
            r.body.get("prompt").is_none(),
            "[{b}] {who} is no reviewer: {r}"
        );
    }
    let listed = eng_reviewer.get("/v1/escalations").await;
    assert!(
        !listed.to_string().contains("PRJ-2049"),
        "[{b}] lists never carry prompts"
    );
    let r = eng_reviewer
        .post(&format!("{one}/resolve"), &json!({"outcome": "approved"}))
        .await;
    assert_eq!(
        r.body["prompt_kept"], false,
        "[{b}] erased on resolution: {r}"
    );
    let shown = eng_reviewer.get(&one).await;
    assert!(shown.body.get("prompt").is_none(), "[{b}] {shown}");
    // The approved retry passes the review, and the team's redaction still
    // applies to it.
    let r = send(&gw.url, &eng.key, deal, Some(&deal_id)).await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let forwarded = last_user_text(&s.standin.requests().last().unwrap().body);
    assert!(
        forwarded.contains("PRJ-2049")
            && !forwarded.contains("555 0134")
            && forwarded.contains("[PHONE_"),
        "[{b}] redacted after approval: {forwarded}"
    );

    // --- Two policies hold the same request: each review releases its own
    // policy, and the resend names both escalations.
    let both = "Mail erin@example.com the acquisition plan";
    let approve = |id: String| {
        let api = eng_reviewer.clone();
        async move {
            let r = api
                .post(
                    &format!("/v1/escalations/{id}/resolve"),
                    &json!({"outcome": "approved"}),
                )
                .await;
            assert_eq!(r.body["status"], "approved", "{r}");
        }
    };
    let r = send(&gw.url, &eng.key, both, None).await;
    assert_eq!(r.body["error"]["policy"], "pii-review", "[{b}] {r}");
    let first = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    approve(first.clone()).await;
    let r = send(&gw.url, &eng.key, both, Some(&first)).await;
    assert_eq!(r.status, 409, "[{b}] {r}");
    assert_eq!(r.body["error"]["policy"], "deal-review", "[{b}] {r}");
    let second = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = format!("{first}, {second}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&header),
        "[{b}] the message names both: {r}"
    );
    let r = send(&gw.url, &eng.key, both, Some(&header)).await;
    assert_eq!(r.status, 409, "[{b}] the second is not approved yet: {r}");
    approve(second.clone()).await;
    let r = send(&gw.url, &eng.key, both, Some(&header)).await;
    assert_eq!(r.status, 200, "[{b}] both approved: {r}");
    let r = send(&gw.url, &eng.key, both, Some(&header)).await;
    assert_eq!(r.status, 409, "[{b}] once only: {r}");

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
    // A prompt kept for reviewers is erased when its escalation expires
    // (by `kt serve`, within a few seconds).
    let r = send(&short.url, &eng.key, "The merger agreement draft", None).await;
    let lapsing = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = eng_reviewer
        .get(&format!("/v1/escalations/{lapsing}"))
        .await;
    assert_eq!(shown.body["prompt_kept"], true, "[{b}] {shown}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let shown = eng_reviewer
            .get(&format!("/v1/escalations/{lapsing}"))
            .await;
        if shown.body["prompt_kept"] == false {
            assert_eq!(shown.body["status"], "expired", "[{b}] {shown}");
            assert!(
                shown.body.get("prompt").is_none()
                    && !shown.to_string().contains("merger agreement draft"),
                "[{b}] the reviewer no longer reads it: {shown}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "[{b}] the expired escalation's prompt was not erased: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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
    let audit = s.admin.get("/v1/audit?action=team.reviewers").await;
    let entry = &audit.data()[0];
    assert_eq!(
        entry["after"]["reviewers"],
        json!(["lead@eng.example", "rita@eng.example"]),
        "[{b}] {audit}"
    );
}
