//! Team lifecycle through the API: rename, archive (the team's keys and
//! tokens stop working), members, and the audit trail of each change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn teams_are_renamed_archived_and_staffed_with_an_audit_trail() {
    for db in store::testing::backends().await {
        lifecycle(&db).await;
        db.cleanup().await;
    }
}

fn actions(audit: &Value) -> Vec<String> {
    audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn lifecycle(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let ops = s.team_with_key("Operations", "ops").await;
    let team_token = s
        .admin
        .create_token("eng-ci", "access", Some(&eng.team_id))
        .await;
    let eng_api = Api::new(&s.serve.url, team_token["token"].as_str());

    // Rename: org admins only; the slug stays.
    let path = format!("/v1/teams/{}", eng.team_id);
    let r = eng_api.patch(&path, &json!({"name": "Eng"})).await;
    assert_eq!(r.status, 403, "[{b}] a team token cannot rename: {r}");
    let r = s.admin.patch(&path, &json!({"name": "  "})).await;
    assert_eq!(r.status, 422, "[{b}] {r}");
    let r = s.admin.patch(&path, &json!({"slug": "x"})).await;
    assert_eq!(r.status, 422, "[{b}] unknown field: {r}");
    let r = s
        .admin
        .patch(&path, &json!({"name": "Platform Engineering"}))
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    assert_eq!(r.body["name"], "Platform Engineering");
    assert_eq!(r.body["slug"], "eng");

    // Members: existing console users get a team role.
    let out = s
        .install
        .run(
            &[
                "admin",
                "create-user",
                "--email",
                "lead@example.com",
                "--role",
                "viewer",
            ],
            Some("a long enough password\n"),
        )
        .await;
    assert!(out.status.success(), "{out}");
    let member = format!("{path}/members/lead@example.com");
    let r = eng_api.put(&member, &json!({"role": "team_lead"})).await;
    assert_eq!(r.status, 403, "[{b}] {r}");
    let r = s.admin.put(&member, &json!({"role": "admin"})).await;
    assert_eq!(r.status, 422, "[{b}] not a team role: {r}");
    let r = s
        .admin
        .put(
            &format!("{path}/members/nobody@example.com"),
            &json!({"role": "member"}),
        )
        .await;
    assert_eq!(r.status, 404, "[{b}] {r}");
    let r = s.admin.put(&member, &json!({"role": "team_lead"})).await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    let listed = eng_api.get(&format!("{path}/members")).await;
    assert_eq!(
        listed.status, 200,
        "[{b}] a team sees its members: {listed}"
    );
    assert_eq!(listed.body["data"][0]["email"], "lead@example.com");
    assert_eq!(listed.body["data"][0]["role"], "team_lead");
    let other = eng_api
        .get(&format!("/v1/teams/{}/members", ops.team_id))
        .await;
    assert_eq!(other.status, 404, "[{b}] another team's members: {other}");

    // Archive: keys stop working at the gateway (within one key refresh),
    // API tokens at once; the team leaves the default list.
    let config = s
        .install
        .write_config("team-eng", &allowlist_config(&s.standin, "gpt-4o"));
    let gw = s.install.gateway(&config, &[]).await;
    let body = chat_body("gpt-4o", "hi");
    assert_eq!(
        chat(&gw.url, Some(&eng.key), &body).await.status,
        200,
        "[{b}]"
    );
    let r = eng_api.post(&format!("{path}/archive"), &json!({})).await;
    assert_eq!(r.status, 403, "[{b}] {r}");
    let r = s.admin.post(&format!("{path}/archive"), &json!({})).await;
    assert_eq!(r.status, 200, "[{b}] {r}");
    assert!(r.body["archived_at"].is_string(), "[{b}] {r}");
    assert_eq!(
        eng_api.get("/v1/teams").await.status,
        401,
        "[{b}] an archived team's API token"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = chat(&gw.url, Some(&eng.key), &body).await;
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{b}] an archived team's key still works: {r}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        chat(&gw.url, Some(&ops.key), &body).await.status,
        200,
        "[{b}] other teams unaffected"
    );
    let teams = s.admin.get("/v1/teams").await;
    let slugs: Vec<&str> = teams.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["ops"], "[{b}] archived teams are hidden by default");
    let all = s.admin.get("/v1/teams?include_archived=true").await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 2, "[{b}] {all}");
    let r = s
        .admin
        .post(
            "/v1/tokens",
            &json!({"name": "late", "token_type": "gateway", "team_id": eng.team_id}),
        )
        .await;
    assert!(
        r.status == 400 || r.status == 422,
        "[{b}] no new keys for an archived team: {r}"
    );

    // Every change is in the audit log, with who made it and before/after.
    let audit = s
        .admin
        .get(&format!("/v1/audit?team_id={}", eng.team_id))
        .await;
    assert_eq!(audit.status, 200, "[{b}] {audit}");
    let got = actions(&audit.body);
    for expected in [
        "team.create",
        "token.create",
        "team.rename",
        "member.set",
        "team.archive",
    ] {
        assert!(
            got.iter().any(|a| a == expected),
            "[{b}] audit lacks {expected}: {got:?}"
        );
    }
    let rename = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "team.rename")
        .unwrap();
    assert_eq!(rename["before"]["name"], "Engineering", "[{b}] {rename}");
    assert_eq!(
        rename["after"]["name"], "Platform Engineering",
        "[{b}] {rename}"
    );
    assert!(
        rename["actor"]
            .as_str()
            .unwrap()
            .contains("integration-tests"),
        "[{b}] the actor is the admin token: {rename}"
    );
    let ops_audit = s
        .admin
        .get(&format!("/v1/audit?team_id={}", ops.team_id))
        .await;
    assert!(
        !actions(&ops_audit.body).iter().any(|a| a == "team.rename"),
        "[{b}] filters by team"
    );
    let prefix = s.admin.get("/v1/audit?action=member.").await;
    assert_eq!(
        actions(&prefix.body),
        ["member.set"],
        "[{b}] action prefix filter"
    );
    drop(gw);
}
