//! Versioned configurations and managed gateways (SPEC §8), through the
//! real `kt serve` and `kt gateway run`, on SQLite and PostgreSQL:
//! lint-gated versions, a managed gateway that follows the current version
//! within seconds with no failed request while traffic flows, rollback,
//! drift in the fleet view, and tenant scoping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use store::testing::TestDatabase;

/// The promise: a new current version runs within this long.
const SWITCH_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn managed_gateways_follow_versions_without_failed_requests() {
    for db in store::testing::backends().await {
        configurations(&db).await;
        db.cleanup().await;
    }
}

/// Waits until `ok` holds for a chat with `model`; returns how long it took.
async fn until_status(gw: &str, key: &str, model: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        let r = chat(gw, Some(key), &chat_body(model, "hi")).await;
        if r.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SWITCH_WITHIN + Duration::from_secs(5),
            "{model} still answers {} (wanted {status}) after {:?}: {r}",
            r.status,
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn configurations(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let ops = s.team_with_key("Operations", "ops").await;

    // --- Only lint-clean content becomes a version.
    let bad = "policies:\n  - name: x\n    type: model_filter\n    allowed_models: gpt-4o\n";
    let r = s
        .admin
        .post(
            "/v1/configurations",
            &json!({"team_id": eng.team_id, "environment": "production", "content": bad}),
        )
        .await;
    assert_eq!(r.status, 422, "[{b}] {r}");
    r.assert_error_shape("lint failure");
    let diags = r.body["error"]["diagnostics"]
        .as_array()
        .expect("diagnostics");
    assert!(!diags.is_empty(), "[{b}] {r}");
    assert_eq!(diags[0]["line"], 4, "[{b}] the error is located: {r}");
    assert!(diags[0]["column"].as_u64().unwrap() >= 1, "[{b}] {r}");
    for (body, what) in [
        (
            json!({"team_id": eng.team_id, "environment": "Prod!", "content": "x"}),
            "bad environment",
        ),
        (
            json!({"team_id": eng.team_id, "environment": "production"}),
            "missing content",
        ),
        (
            json!({"team_id": eng.team_id, "environment": "production", "content": "x", "extra": 1}),
            "unknown field",
        ),
    ] {
        let r = s.admin.post("/v1/configurations", &body).await;
        assert!(r.status == 422 || r.status == 400, "[{b}] {what}: {r}");
        r.assert_error_shape(what);
    }
    let listed = s
        .admin
        .get(&format!("/v1/configurations?team_id={}", eng.team_id))
        .await;
    assert_eq!(listed.data().len(), 0, "[{b}] nothing stored: {listed}");

    // --- A managed gateway needs a version to start from.
    let v1 = allowlist_config(&s.standin, "gpt-4o");
    let r = s
        .admin
        .post(
            "/v1/configurations",
            &json!({"team_id": eng.team_id, "environment": "production", "content": v1, "message": "first"}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["source"], "api");
    assert_eq!(r.body["content_hash"], policy::source_hash(&v1));
    let gw = s.install.managed_gateway("eng", "production", &[]).await;
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hi"))
            .await
            .status,
        200,
        "[{b}]"
    );
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o-mini", "hi"))
            .await
            .status,
        409,
        "[{b}] a model outside the allowlist is refused"
    );

    // --- Traffic throughout a rollout: no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let traffic = {
        let (stop, sent, failures, url, key) = (
            stop.clone(),
            sent.clone(),
            failures.clone(),
            gw.url.clone(),
            eng.key.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = chat(&url, Some(&key), &chat_body("gpt-4o", "steady")).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if r.status != 200 {
                    failures.lock().unwrap().push(r.to_string());
                }
            }
        })
    };
    let v2 = allowlist_config(&s.standin, "gpt-4o, gpt-4o-mini");
    let r = s
        .admin
        .post(
            "/v1/configurations",
            &json!({"team_id": eng.team_id, "environment": "production", "content": v2}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    assert_eq!(r.body["version"], 2);
    let took = until_status(&gw.url, &eng.key, "gpt-4o-mini", 200).await;
    assert!(
        took <= SWITCH_WITHIN,
        "[{b}] the new version ran after {took:?}"
    );
    eprintln!("[{b}] version 2 running {took:?} after it was stored");
    // The gateway reports it; the fleet view shows no drift.
    let fleet = s.admin.get("/v1/gateways").await;
    let me = fleet
        .data()
        .into_iter()
        .find(|g| g["name"] == "eng-production")
        .unwrap_or_else(|| panic!("[{b}] the managed gateway in the fleet: {fleet}"));
    assert_eq!(
        me["desired_config_hash"],
        policy::source_hash(&v2),
        "[{b}] {me}"
    );
    assert_eq!(
        me["running_config_hash"],
        policy::source_hash(&v2),
        "[{b}] {me}"
    );
    assert_eq!(me["drift"], false, "[{b}] {me}");

    // --- Rollback makes version 1's content current as version 3.
    let r = s
        .admin
        .post(
            "/v1/configurations/rollback",
            &json!({"team_id": eng.team_id, "environment": "production", "version": 1}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    assert_eq!(r.body["version"], 3);
    assert_eq!(r.body["content_hash"], policy::source_hash(&v1));
    assert_eq!(r.body["message"], "rollback to version 1");
    let took = until_status(&gw.url, &eng.key, "gpt-4o-mini", 409).await;
    assert!(
        took <= SWITCH_WITHIN,
        "[{b}] the rollback ran after {took:?}"
    );
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    let failures = failures.lock().unwrap().clone();
    let sent = sent.load(Ordering::Relaxed);
    assert!(
        sent > 10,
        "[{b}] traffic flowed during the rollout ({sent} requests)"
    );
    assert!(
        failures.is_empty(),
        "[{b}] {} of {sent} requests failed during the rollout: {failures:?}",
        failures.len()
    );
    let r = s
        .admin
        .post(
            "/v1/configurations/rollback",
            &json!({"team_id": eng.team_id, "environment": "production", "version": 99}),
        )
        .await;
    assert_eq!(r.status, 404, "[{b}] {r}");

    // --- A file-based gateway of that environment that runs other content drifts.
    let file = s.install.write_config("eng-prod-file", &v2);
    let filegw = s
        .install
        .gateway(&file, &["--team", "eng", "--environment", "production"])
        .await;
    let fleet = s.admin.get("/v1/gateways").await;
    let drifting = fleet
        .data()
        .into_iter()
        .find(|g| g["name"] == "eng-prod-file")
        .unwrap_or_else(|| panic!("[{b}] {fleet}"));
    assert_eq!(drifting["drift"], true, "[{b}] {drifting}");
    assert_eq!(
        drifting["desired_config_hash"],
        policy::source_hash(&v1),
        "[{b}] {drifting}"
    );
    let out = s.install.run(&["doctor"], None).await;
    assert!(
        !out.status.success(),
        "[{b}] kt doctor fails on drift:\n{out}"
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("eng-prod-file drift"))
        .unwrap_or_else(|| panic!("[{b}] kt doctor names the drifting gateway:\n{out}"));
    assert!(
        line.contains(&policy::source_hash(&v1)[..12]),
        "[{b}] {line}"
    );
    assert!(
        !out.stdout.contains("eng-production drift"),
        "[{b}] the managed gateway does not drift:\n{out}"
    );
    drop(filegw);

    // --- Versions are listed newest first, with their source; other teams see nothing.
    let listed = s
        .admin
        .get(&format!(
            "/v1/configurations?team_id={}&environment=production",
            eng.team_id
        ))
        .await;
    let versions: Vec<i64> = listed
        .data()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1], "[{b}] {listed}");
    let ops_token = s
        .admin
        .create_token("ops-ci", "access", Some(&ops.team_id))
        .await;
    let ops_api = Api::new(&s.serve.url, ops_token["token"].as_str());
    let r = ops_api
        .get(&format!("/v1/configurations?team_id={}", eng.team_id))
        .await;
    assert_eq!(r.status, 404, "[{b}] another team's configurations: {r}");
    let r = ops_api
        .post(
            "/v1/configurations",
            &json!({"team_id": eng.team_id, "environment": "production", "content": v2}),
        )
        .await;
    assert_eq!(
        r.status, 404,
        "[{b}] writing another team's configuration: {r}"
    );
    let fleet = ops_api.get("/v1/gateways").await;
    assert!(
        fleet
            .data()
            .iter()
            .all(|g| g["desired_config_hash"].is_null()),
        "[{b}] no other team's desired config leaks: {fleet}"
    );
    let audit = s.admin.get("/v1/audit?action=config.").await;
    assert_eq!(
        audit.data().len(),
        3,
        "[{b}] every version is audited: {audit}"
    );
}
