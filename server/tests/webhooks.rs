//! Webhooks (SPEC §10) through the real `kt serve` and gateway, on SQLite
//! and PostgreSQL, with a receiver in the test: deliveries are signed
//! (verified here with the secret), retried with back-off after the
//! receiver fails, listed with their results, sent only for subscribed
//! events, a budget threshold is notified once crossed, and the "send
//! test" delivery arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn notifications_are_signed_retried_and_logged() {
    for db in store::testing::backends().await {
        webhooks(&db).await;
        db.cleanup().await;
    }
}

const SECRET: &str = "receiver-shared-secret-0123456789";

#[derive(Clone, Debug)]
struct Received {
    path: String,
    event: String,
    signature: String,
    body: Vec<u8>,
}

/// A receiver that answers 500 to the first `fail_first` deliveries, then 200.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let store = got.clone();
    let app = axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
        let store = store.clone();
        async move {
            // (Read before the first await: a borrowed request is not Send.)
            let (path, event, signature) = {
                let header = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                (
                    req.uri().path().to_owned(),
                    header("x-kt-event"),
                    header("x-kt-signature"),
                )
            };
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec();
            let n = {
                let mut all = store.lock().unwrap();
                all.push(Received {
                    path,
                    event,
                    signature,
                    body,
                });
                all.len()
            };
            if n <= fail_first {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            } else {
                axum::http::StatusCode::OK
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), got)
}

fn sign(body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, what: &str, ok: impl Fn(&[Received]) -> bool) {
    let started = Instant::now();
    while !ok(&got.lock().unwrap()) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: received {:?}",
            got.lock()
                .unwrap()
                .iter()
                .map(|r| (&r.path, &r.event))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn webhooks(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let (url, got) = receiver(1).await;

    // --- Validation and access.
    for (bad, field) in [
        (
            json!({"url": "ftp://x", "events": ["*"], "secret": SECRET}),
            "url",
        ),
        (
            json!({"url": "http://example.com/hook", "events": ["*"], "secret": SECRET}),
            "url",
        ),
        (
            json!({"url": format!("{url}/a"), "events": ["budget.nope"], "secret": SECRET}),
            "events",
        ),
        (
            json!({"url": format!("{url}/a"), "events": [], "secret": SECRET}),
            "events",
        ),
        (
            json!({"url": format!("{url}/a"), "events": ["*"], "secret": "short"}),
            "secret",
        ),
    ] {
        let r = s.admin.post("/v1/webhooks", &bad).await;
        assert_eq!(r.status, 422, "[{b}] {bad}: {r}");
        assert!(r.to_string().contains(field), "[{b}] names {field}: {r}");
    }
    let team = s.admin.with_token(Some(
        s.admin
            .create_token("eng", "access", Some(&eng.team_id))
            .await["token"]
            .as_str()
            .unwrap(),
    ));
    let r = team
        .post(
            "/v1/webhooks",
            &json!({"url": format!("{url}/a"), "events": ["*"], "secret": SECRET}),
        )
        .await;
    assert_eq!(r.status, 403, "[{b}] {r}");

    // --- Two webhooks: one for everything, one for config deployments.
    let all = s
        .admin
        .post(
            "/v1/webhooks",
            &json!({"url": format!("{url}/all"), "events": ["*"], "secret": SECRET}),
        )
        .await;
    assert_eq!(all.status, 201, "[{b}] {all}");
    assert!(
        !all.to_string().contains(SECRET),
        "[{b}] the secret is never returned"
    );
    let all_id = all.body["id"].as_str().unwrap().to_owned();
    let configs = s
        .admin
        .post(
            "/v1/webhooks",
            &json!({"url": format!("{url}/configs"), "events": ["config.deployed"], "secret": SECRET}),
        )
        .await;
    assert_eq!(configs.status, 201, "[{b}] {configs}");

    // --- A deployment notifies both; the first attempt fails and is retried.
    // Escalate emails; a monthly cap of one micro-dollar that only warns,
    // so that the first answered request crosses it.
    let config = policies_config(
        &s.standin,
        &[
            "  - name: pii-review\n    type: pii_detection\n    action: escalate\n    entities: [email]\n".to_owned(),
            "  - name: cap\n    type: cost_limit\n    monthly_limit: 0.000001\n    action: warn\n".to_owned(),
        ],
    );
    let r = s
        .admin
        .post(
            "/v1/configurations",
            &json!({"team_id": eng.team_id, "environment": "production", "content": config}),
        )
        .await;
    assert_eq!(r.status, 201, "[{b}] {r}");
    // Both webhooks get it; one of the two first attempts failed (the
    // receiver refuses its first request), so three requests in all.
    wait_for(&got, "config.deployed on both webhooks", |all| {
        ["/all", "/configs"].iter().all(|p| {
            all.iter()
                .any(|r| r.path == *p && r.event == "config.deployed")
        }) && all.len() >= 3
    })
    .await;
    let received = got.lock().unwrap().clone();
    for r in &received {
        assert_eq!(r.signature, sign(&r.body), "[{b}] signed with the secret");
    }
    let first: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(first["event"], "config.deployed", "[{b}] {first}");
    assert_eq!(first["data"]["version"], 1, "[{b}] {first}");
    assert_eq!(first["data"]["team_id"], eng.team_id.as_str());
    // The failed one was sent again, with the same delivery id in the body.
    let ids: Vec<Value> = received
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["id"].clone())
        .collect();
    assert!(
        ids.iter().filter(|id| **id == ids[0]).count() == 2,
        "[{b}] the first delivery was retried: {ids:?}"
    );
    let log = s
        .admin
        .get(&format!("/v1/webhooks/{all_id}/deliveries"))
        .await;
    let wait = Instant::now();
    let mut log = log;
    while !log
        .data()
        .iter()
        .any(|d| d["status"] == "delivered" && d["attempts"] == 2)
        && wait.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = s
            .admin
            .get(&format!("/v1/webhooks/{all_id}/deliveries"))
            .await;
    }
    assert!(
        log.data().iter().any(|d| d["status"] == "delivered"
            && d["attempts"] == 2
            && d["last_status_code"] == 200),
        "[{b}] the log shows the retry: {log}"
    );

    // --- An escalation reaches only the webhook subscribed to it.
    let file = s.install.write_config("eng", &config);
    let gw = s.install.gateway(&file, &["--team", "eng"]).await;
    let r = chat(
        &gw.url,
        Some(&eng.key),
        &chat_body("gpt-4o", "mail ada@example.com"),
    )
    .await;
    assert_eq!(r.status, 409, "[{b}] {r}");
    let esc = r.body["error"]["escalation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&got, "escalation.created", |all| {
        all.iter().any(|r| r.event == "escalation.created")
    })
    .await;
    let created: Vec<Received> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.event == "escalation.created")
        .cloned()
        .collect();
    assert!(
        created.iter().all(|r| r.path == "/all"),
        "[{b}] only /all subscribes"
    );
    let body: Value = serde_json::from_slice(&created[0].body).unwrap();
    assert_eq!(body["data"]["escalation_id"], esc.as_str(), "[{b}] {body}");
    assert!(
        !String::from_utf8_lossy(&created[0].body).contains("ada@example.com"),
        "[{b}] no prompt text"
    );

    // --- Budget threshold: the cap is crossed by one answered request.
    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hello")).await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    wait_for(&got, "budget.threshold", |all| {
        all.iter().any(|r| r.event == "budget.threshold")
    })
    .await;
    let threshold: Value = {
        let all = got.lock().unwrap();
        let r = all.iter().find(|r| r.event == "budget.threshold").unwrap();
        serde_json::from_slice(&r.body).unwrap()
    };
    assert_eq!(
        threshold["data"]["budget"], "cost_limit",
        "[{b}] {threshold}"
    );
    assert_eq!(
        threshold["data"]["threshold_percent"], 100,
        "[{b}] {threshold}"
    );
    assert_eq!(threshold["data"]["team"], "eng", "[{b}] {threshold}");

    // --- "Send test".
    let r = s
        .admin
        .post(&format!("/v1/webhooks/{all_id}/test"), &json!({}))
        .await;
    assert_eq!(r.status, 202, "[{b}] {r}");
    wait_for(&got, "webhook.test", |all| {
        all.iter().any(|r| r.event == "webhook.test")
    })
    .await;
    // Every delivery of the test was signed, and went only where it was
    // subscribed: /configs gets config.deployed alone.
    for r in got.lock().unwrap().iter() {
        assert_eq!(
            r.signature,
            sign(&r.body),
            "[{b}] {} signed with the secret",
            r.event
        );
        assert!(
            r.path == "/all" || (r.path == "/configs" && r.event == "config.deployed"),
            "[{b}] {} delivered to {}",
            r.event,
            r.path
        );
    }

    let r = s.admin.delete(&format!("/v1/webhooks/{all_id}")).await;
    assert_eq!(r.status, 204, "[{b}] {r}");
    assert_eq!(s.admin.get("/v1/webhooks").await.data().len(), 1, "[{b}]");

    // --- Every change this test made is in the audit log, secrets masked.
    let audit = s.admin.get("/v1/audit?limit=1000").await;
    let entries = audit.data();
    let count = |action: &str, target: Option<&str>| {
        entries
            .iter()
            .filter(|e| e["action"] == action && target.is_none_or(|t| e["target_id"] == t))
            .count()
    };
    assert_eq!(count("webhook.create", Some(&all_id)), 1, "[{b}] {audit}");
    assert_eq!(
        count("webhook.create", None),
        2,
        "[{b}] the refused one is not: {audit}"
    );
    assert_eq!(count("webhook.delete", Some(&all_id)), 1, "[{b}] {audit}");
    assert_eq!(count("config.version", None), 1, "[{b}] {audit}");
    assert_eq!(count("team.create", Some(&eng.team_id)), 1, "[{b}] {audit}");
    assert_eq!(
        count("token.create", None),
        2,
        "[{b}] a gateway key, an access token: {audit}"
    );
    assert!(
        !audit.to_string().contains(SECRET),
        "[{b}] secrets are masked"
    );
}
