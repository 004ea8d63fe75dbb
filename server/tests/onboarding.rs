//! Self-service onboarding (SPEC §9) through the real `kt serve`, on SQLite
//! and PostgreSQL: a request, an approval that runs the pipeline (team →
//! config from the template → wallet → key → a gateway started by the local
//! runner), the new key answered through that gateway, the time from
//! approval to the first answer, idempotent retry after a failed step,
//! rejection, the supervisor restarting a killed gateway and stopping it
//! when its team is archived, and Kubernetes manifests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn an_approved_request_gets_a_working_gateway_in_seconds() {
    for db in store::testing::backends().await {
        onboarding(&db).await;
        db.cleanup().await;
    }
}

fn step<'a>(request: &'a Value, name: &str) -> &'a Value {
    request["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("step {name} in {request}"))
}

async fn onboarding(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    // The organisation's OpenAI connection: every onboarded team uses it.
    let r = s
        .admin
        .post(
            "/v1/secrets",
            &json!({"name": "openai-org", "value": UPSTREAM_KEY}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    let r = s
        .admin
        .put(
            "/v1/providers/openai",
            &json!({"base_url": s.standin.base_url, "secret": "openai-org"}),
        )
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");

    let templates = s.admin.get("/v1/templates").await;
    let names: Vec<String> = templates
        .data()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["exp", "reg", "std"], "[{b}] shipped templates");

    // --- A team lead's token files the request; only admins decide.
    let lead_team = s.admin.create_team("Leads", "leads").await;
    let lead = s.admin.with_token(Some(
        s.admin
            .create_token("lead", "access", Some(lead_team["id"].as_str().unwrap()))
            .await["token"]
            .as_str()
            .unwrap(),
    ));
    let body = json!({
        "team_name": "Payments", "team_slug": "payments", "lead_email": "lead@example.com",
        "use_case": "invoice summaries", "template": "std", "monthly_budget": 250,
        "models": ["gpt-4o-mini"], "environment": "production"
    });
    for (field, bad) in [
        ("team_slug", json!({"team_slug": "Pay Ments"})),
        ("lead_email", json!({"lead_email": "nobody"})),
        ("template", json!({"template": "gold"})),
        ("monthly_budget", json!({"monthly_budget": -5})),
        ("models", json!({"models": []})),
        ("environment", json!({"environment": "Prod"})),
    ] {
        let mut b2 = body.clone();
        for (k, v) in bad.as_object().unwrap() {
            b2[k] = v.clone();
        }
        let r = lead.post("/v1/onboarding/requests", &b2).await;
        assert_eq!(r.status, 422, "[{b}] {field}: {r}");
        assert!(r.to_string().contains(field), "[{b}] names {field}: {r}");
    }
    let r = lead.post("/v1/onboarding/requests", &body).await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    assert_eq!(r.body["status"], "pending");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = lead
        .post(&format!("/v1/onboarding/requests/{id}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 403, "[{b}] a team token cannot approve: {r}");

    // --- Approval runs the pipeline; the key works through the new gateway.
    let approved_at = Instant::now();
    let r = s
        .admin
        .post(&format!("/v1/onboarding/requests/{id}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    assert_eq!(r.body["status"], "ready", "[{b}] {r}");
    for name in ["team", "config", "wallet", "key", "gateway"] {
        assert_eq!(step(&r.body, name)["status"], "done", "[{b}] {name}: {r}");
    }
    let key = r.body["gateway_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("kt_gk_"), "[{b}] {r}");
    let url = r.body["gateway_url"].as_str().unwrap().to_owned();
    let answered = loop {
        let reply = chat(&url, Some(&key), &chat_body("gpt-4o-mini", "hello")).await;
        if reply.status == 200 {
            break approved_at.elapsed();
        }
        assert!(
            approved_at.elapsed() < Duration::from_secs(10),
            "[{b}] no answer within 10 s of approval: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("[{b}] approval → first answer through the new gateway: {answered:?}");
    // Its policies: the template with the request's models and budget.
    assert_eq!(
        chat(&url, Some(&key), &chat_body("gpt-4o", "hello"))
            .await
            .status,
        409,
        "[{b}] gpt-4o was not requested"
    );
    let team_id = r.body["team_id"].as_str().unwrap().to_owned();
    let balance = s
        .admin
        .get(&format!("/v1/wallets/balance?team_id={team_id}"))
        .await;
    assert_eq!(balance.body["allocated"], 250.0, "[{b}] {balance}");
    let again = s.admin.get(&format!("/v1/onboarding/requests/{id}")).await;
    assert!(
        again.body.get("gateway_key").is_none(),
        "[{b}] the key is shown once"
    );
    let r = s
        .admin
        .post(&format!("/v1/onboarding/requests/{id}/approve"), &json!({}))
        .await;
    assert_eq!(r.status, 409, "[{b}] approving twice: {r}");
    let fleet = s.admin.get("/v1/gateways").await;
    let gw = fleet
        .data()
        .into_iter()
        .find(|g| g["name"] == "payments-production")
        .unwrap_or_else(|| panic!("[{b}] the new gateway in the fleet: {fleet}"));
    assert_eq!(gw["status"], "healthy", "[{b}] {gw}");
    assert_eq!(gw["drift"], false, "[{b}] {gw}");

    // --- The supervisor restarts a gateway that dies.
    let pid = gateway_pid("payments-production");
    kill(pid);
    let killed = Instant::now();
    loop {
        if gateway_pid_opt("payments-production").is_some_and(|p| p != pid) {
            let fleet = s.admin.get("/v1/gateways").await;
            let url = fleet
                .data()
                .into_iter()
                .find(|g| g["name"] == "payments-production")
                .map(|g| g["address"].as_str().unwrap().to_owned())
                .unwrap();
            if chat(&url, Some(&key), &chat_body("gpt-4o-mini", "again"))
                .await
                .status
                == 200
            {
                break;
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "[{b}] the killed gateway was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "[{b}] killed gateway answering again after {:?}",
        killed.elapsed()
    );

    // --- Archiving the team stops its gateway.
    let r = s
        .admin
        .post(&format!("/v1/teams/{team_id}/archive"), &json!({}))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let archived = Instant::now();
    while gateway_pid_opt("payments-production").is_some() {
        assert!(
            archived.elapsed() < Duration::from_secs(10),
            "[{b}] the archived team's gateway still runs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // --- A failed step, then a retry that creates nothing twice.
    let bare = "policies:\n  - name: pii\n    type: pii_detection\n    action: block\n    enabled: true\nproviders:\n  targets:\n    - id: openai\n      provider: {kind: openai}\n";
    let r = s
        .admin
        .put("/v1/templates/bare", &json!({"content": bare}))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let r = s
        .admin
        .put("/v1/templates/broken", &json!({"content": "policies: 3\n"}))
        .await;
    assert_eq!(r.status, 422, "[{b}] a template must pass lint: {r}");
    let mut body2 = body.clone();
    body2["team_slug"] = json!("search");
    body2["team_name"] = json!("Search");
    body2["template"] = json!("bare");
    let id2 = s.admin.post("/v1/onboarding/requests", &body2).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .admin
        .post(
            &format!("/v1/onboarding/requests/{id2}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "failed", "[{b}] {r}");
    assert_eq!(step(&r.body, "team")["status"], "done", "[{b}] {r}");
    assert_eq!(step(&r.body, "config")["status"], "failed", "[{b}] {r}");
    assert!(
        r.body["reason"]
            .as_str()
            .unwrap()
            .contains("allowed_models"),
        "[{b}] {r}"
    );
    let with_models = bare.replace(
        "providers:",
        "  - name: models\n    type: model_filter\n    allowed_models: [\"x\"]\n    enabled: true\nproviders:",
    );
    let r = s
        .admin
        .put("/v1/templates/bare", &json!({"content": with_models}))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let r = s
        .admin
        .post(
            &format!("/v1/onboarding/requests/{id2}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "ready", "[{b}] the retry: {r}");
    assert!(r.body["gateway_key"].as_str().is_some(), "[{b}] {r}");
    let teams = s.admin.get("/v1/teams").await;
    assert_eq!(
        teams
            .data()
            .iter()
            .filter(|t| t["slug"] == "search")
            .count(),
        1,
        "[{b}] one team, not two"
    );

    // --- Rejection, with a reason the requester reads.
    let mut body3 = body.clone();
    body3["team_slug"] = json!("ads");
    let id3 = lead.post("/v1/onboarding/requests", &body3).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .admin
        .post(
            &format!("/v1/onboarding/requests/{id3}/reject"),
            &json!({"reason": ""}),
        )
        .await;
    assert_eq!(r.status, 422, "[{b}] a reason is required: {r}");
    let r = s
        .admin
        .post(
            &format!("/v1/onboarding/requests/{id3}/reject"),
            &json!({"reason": "use the search team's gateway"}),
        )
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let seen = lead.get(&format!("/v1/onboarding/requests/{id3}")).await;
    assert_eq!(seen.body["status"], "rejected", "[{b}] {seen}");
    assert_eq!(seen.body["reason"], "use the search team's gateway");
    let r = s
        .admin
        .post(
            &format!("/v1/onboarding/requests/{id3}/approve"),
            &json!({}),
        )
        .await;
    assert_eq!(
        r.status, 409,
        "[{b}] a rejected request cannot be approved: {r}"
    );
    // Another requester's request is not visible.
    let other = lead.get(&format!("/v1/onboarding/requests/{id2}")).await;
    assert_eq!(other.status, 404, "[{b}] {other}");

    // --- Kubernetes manifests: no secret values, probes, isolation.
    let m = s
        .admin
        .get_text(&format!("/v1/onboarding/requests/{id}/manifests"))
        .await;
    for want in [
        "kind: Namespace",
        "name: tenant-payments",
        "kind: ConfigMap",
        "kind: Deployment",
        "path: /healthz",
        "path: /readyz",
        "kind: Service",
        "kind: NetworkPolicy",
        "secretKeyRef",
        "allowed_models: [\"gpt-4o-mini\"]",
        "monthly_limit: 250",
    ] {
        assert!(m.contains(want), "[{b}] manifests lack {want:?}:\n{m}");
    }
    assert!(
        !m.contains(UPSTREAM_KEY),
        "[{b}] a provider key in manifests"
    );
}

/// The pid of the gateway process called `name` (started by the runner).
fn gateway_pid_opt(name: &str) -> Option<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", "--", &format!("--name {name} ")])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
}

fn gateway_pid(name: &str) -> u32 {
    gateway_pid_opt(name).unwrap_or_else(|| panic!("no process for gateway {name}"))
}

fn kill(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -9 {pid}");
}
