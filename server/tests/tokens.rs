//! Token lifetimes: optional expiry (gateway keys and API tokens stop working
//! at `expires_at`) and last-use times shown in the token list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

fn rfc3339_in(d: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + d;
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn listed<'a>(tokens: &'a Value, id: &str) -> &'a Value {
    tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("token {id} not listed: {tokens}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expire_and_report_their_last_use() {
    for db in store::testing::backends().await {
        expiry_and_last_use(&db).await;
        db.cleanup().await;
    }
}

async fn expiry_and_last_use(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let path = s
        .install
        .write_config("team-eng", &allowlist_config(&s.standin, "gpt-4o"));
    let gw = s.install.gateway(&path, &[]).await;

    // A gateway key that expires in 3 s, and one that never does.
    let expiring = s
        .admin
        .post(
            "/v1/tokens",
            &json!({"name": "short", "token_type": "gateway", "team_id": eng.team_id,
                    "expires_at": rfc3339_in(Duration::from_secs(3))}),
        )
        .await;
    assert_eq!(expiring.status, 201, "[{b}] {expiring}");
    assert!(expiring.body["expires_at"].is_string(), "[{b}] {expiring}");
    let short_key = expiring.body["token"].as_str().unwrap().to_owned();
    let short_id = expiring.body["id"].as_str().unwrap().to_owned();
    let body = chat_body("gpt-4o", "hi");
    // Keys created a moment ago reach the gateway's cache on first use.
    assert_eq!(
        chat(&gw.url, Some(&short_key), &body).await.status,
        200,
        "[{b}] before expiry"
    );
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &body).await.status,
        200,
        "[{b}]"
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let r = chat(&gw.url, Some(&short_key), &body).await;
    assert_eq!(
        r.status, 401,
        "[{b}] an expired gateway key is refused at once: {r}"
    );
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &body).await.status,
        200,
        "[{b}] others still work"
    );

    // Expiry in the past, or not a time: 422 naming the field.
    for bad in [json!("2001-01-01T00:00:00Z"), json!("tomorrow")] {
        let r = s
            .admin
            .post(
                "/v1/tokens",
                &json!({"name": "x", "token_type": "access", "expires_at": bad}),
            )
            .await;
        assert_eq!(r.status, 422, "[{b}] expires_at {bad}: {r}");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("expires_at"),
            "[{b}] {r}"
        );
    }

    // An API token that expires stops authenticating.
    let api = s
        .admin
        .post(
            "/v1/tokens",
            &json!({"name": "ci", "token_type": "access", "expires_at": rfc3339_in(Duration::from_secs(2))}),
        )
        .await;
    assert_eq!(api.status, 201, "[{b}] {api}");
    let ci = Api::new(&s.serve.url, api.body["token"].as_str());
    assert_eq!(ci.get("/v1/teams").await.status, 200, "[{b}] before expiry");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(ci.get("/v1/teams").await.status, 401, "[{b}] after expiry");

    // Last use: the used keys show a time within a few seconds (gateways
    // report in batches); a key never used shows null.
    let unused = s
        .admin
        .create_token("unused", "gateway", Some(&eng.team_id))
        .await;
    let unused_id = unused["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let tokens = s.admin.get("/v1/tokens").await.body;
        let used = listed(&tokens, &eng.key_id)["last_used_at"].is_string()
            && listed(&tokens, &short_id)["last_used_at"].is_string();
        if used {
            assert!(
                listed(&tokens, &unused_id)["last_used_at"].is_null(),
                "[{b}] {tokens}"
            );
            assert!(
                listed(&tokens, &short_id)["expires_at"].is_string(),
                "[{b}] {tokens}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{b}] last use never reported: {tokens}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(gw);
}
