//! Console-stored secrets and provider defaults through the real processes
//! (SPEC §3 `KT_MASTER_KEY`, §4 `secret_key_ref.secret`, §6 `/v1/secrets`,
//! `/v1/providers`), on every available database backend: values go in and
//! never come out, are sealed at rest under the master key, reach the
//! provider through a gateway (rotation without restart), and a wrong master
//! key is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A secret change must reach a running gateway within this (it re-reads
/// secrets and provider defaults every 10 s).
const ROTATION_WITHIN: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// helpers

/// The raw JSON text of a reply, for "appears nowhere" checks.
fn raw(r: &Reply) -> String {
    r.body.to_string()
}

/// Fails when any of `values` appears anywhere in the reply's body.
fn assert_no_value(r: &Reply, values: &[&str], what: &str) {
    let text = raw(r);
    for v in values {
        assert!(
            !text.contains(v),
            "{what}: a secret value appears in the response body: {r}"
        );
    }
}

/// The error message of an error reply (shape checked).
fn error_message(r: &Reply, what: &str) -> String {
    r.assert_error_shape(what);
    r.body["error"]["message"].as_str().unwrap().to_owned()
}

/// Checks one listed/returned secret: name, team, times, actor, never a value.
fn assert_secret_shape(s: &Value, what: &str) {
    let obj = s
        .as_object()
        .unwrap_or_else(|| panic!("{what}: a secret must be an object, got {s}"));
    assert!(
        s["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{what}: `name` must be a non-empty string: {s}"
    );
    assert!(
        s["team_id"].is_null() || s["team_id"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: `team_id` must be null (org-wide) or a team id: {s}"
    );
    for field in ["created_at", "updated_at"] {
        let at = s[field]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: `{field}` must be a string: {s}"));
        parse_rfc3339(at);
    }
    assert!(
        s["updated_by"].as_str().is_some_and(|a| !a.is_empty()),
        "{what}: `updated_by` must say who stored it: {s}"
    );
    for forbidden in ["value", "sealed", "secret", "ciphertext"] {
        assert!(
            !obj.contains_key(forbidden),
            "{what}: a secret must never carry `{forbidden}`: {s}"
        );
    }
}

/// `(name, team_id or "")` of every listed secret.
fn listed(r: &Reply) -> BTreeSet<(String, String)> {
    r.data()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["team_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect()
}

/// `(name, team_id, sealed)` of every row of the `secret` table, read
/// straight from the database.
async fn sealed_rows(db: &store::Db) -> Vec<(String, String, String)> {
    let sql = "select name, team_id, sealed from secret order by team_id, name";
    match db {
        store::Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        store::Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
    }
}

/// Lenient standard/URL-safe base64 decoding (padding and whitespace
/// ignored); `None` when `text` is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        bits = ((bits << 6) | u32::from(v)) & 0xffff;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push(((bits >> nbits) & 0xff) as u8);
        }
    }
    Some(out)
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The development master key `kt serve` generated into the data directory.
fn dev_master_key(install: &Install) -> store::crypto::MasterKey {
    let path = install.data_path().join("master.key");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no development master key at {}: {e}", path.display()));
    store::crypto::MasterKey::from_base64(&text)
        .unwrap_or_else(|e| panic!("{} is not a master key: {e}", path.display()))
}

/// The `Authorization` header of the stand-in's last request.
fn last_auth(standin: &StandIn) -> Option<String> {
    standin
        .requests()
        .last()
        .and_then(|r| r.header("authorization").map(str::to_owned))
}

/// Sends one chat request and checks it reached `standin` with
/// `Bearer <expected>`.
async fn assert_upstream_key(
    gateway: &KtProcess,
    key: &str,
    standin: &StandIn,
    expected: &str,
    what: &str,
) {
    let before = standin.count();
    let r = chat(&gateway.url, Some(key), &chat_body("gpt-4o", "hello")).await;
    assert_eq!(r.status, 200, "{what}: {r}");
    assert_eq!(
        r.body["choices"][0]["message"]["content"], STANDIN_CONTENT,
        "{what}: not the stand-in's answer: {r}"
    );
    assert_eq!(
        standin.count(),
        before + 1,
        "{what}: the request did not reach the expected stand-in"
    );
    assert_eq!(
        last_auth(standin).as_deref(),
        Some(format!("Bearer {expected}").as_str()),
        "{what}: the provider did not receive the stored secret as its key"
    );
}

/// Sends requests through `gateway` until `standin` receives one with
/// `Bearer <expected>` ([`ROTATION_WITHIN`] at most). Until then a request
/// may only reach it with `Bearer <old>` (when given) or, when `old` is
/// `None`, be refused with 502.
async fn wait_for_upstream_key(
    gateway: &mut KtProcess,
    key: &str,
    standin: &StandIn,
    expected: &str,
    old: Option<&str>,
    what: &str,
) -> Duration {
    let started = Instant::now();
    loop {
        let before = standin.count();
        let r = chat(&gateway.url, Some(key), &chat_body("gpt-4o", "hello")).await;
        let reached = standin.count() > before;
        let auth = last_auth(standin);
        if r.status == 200 && reached && auth.as_deref() == Some(&format!("Bearer {expected}")) {
            assert!(
                gateway.is_running(),
                "{what}: the gateway must not have restarted"
            );
            return started.elapsed();
        }
        match old {
            Some(old) => {
                assert_eq!(r.status, 200, "{what}: while waiting: {r}");
                assert!(
                    reached,
                    "{what}: while waiting, the request did not reach the stand-in"
                );
                assert_eq!(
                    auth.as_deref(),
                    Some(format!("Bearer {old}").as_str()),
                    "{what}: while waiting, the provider got a key that is neither the old nor the new one"
                );
            }
            None => {
                assert_eq!(r.status, 502, "{what}: while waiting: {r}");
                assert!(
                    !reached,
                    "{what}: while waiting, a request without a usable key reached the provider"
                );
            }
        }
        assert!(
            started.elapsed() < ROTATION_WITHIN,
            "{what}: the gateway did not pick up the change within {ROTATION_WITHIN:?} (last answer {r}, last key the stand-in saw: {auth:?})\n--- gateway stderr ---\n{}",
            gateway.stderr()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A config whose only target is `openai` with the given `provider:` lines
/// (already indented by 8 spaces), or none.
fn openai_config(provider: &str) -> String {
    if provider.is_empty() {
        "policies: []\nproviders:\n  targets:\n    - id: openai\n".to_owned()
    } else {
        format!(
            "policies: []\nproviders:\n  targets:\n    - id: openai\n      provider:\n{provider}"
        )
    }
}

fn secret_ref(name: &str) -> String {
    format!("        secret_key_ref:\n          secret: {name}\n")
}

fn base_url(url: &str) -> String {
    format!("        base_url: {url}\n")
}

// ---------------------------------------------------------------------------
// 1. the API: write-only, scoped, sealed at rest

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_write_only_and_scoped() {
    const ORG: &str = "sk-org-writeonly-7f3a9c51e2";
    const ORG_2: &str = "sk-org-writeonly-replaced-0d4e";
    const ORG_SAME_NAME: &str = "sk-org-shared-name-91c2aa";
    const ENG: &str = "sk-eng-writeonly-2b8d41f0aa";
    const ENG_2: &str = "sk-eng-writeonly-rotated-5c6e";
    const ENG_OWN: &str = "sk-ant-eng-own-88e1d0c3b7";
    const DATA: &str = "sk-data-writeonly-4a1f09bb3c";
    let all = [ORG, ORG_2, ORG_SAME_NAME, ENG, ENG_2, ENG_OWN, DATA];

    for db in store::testing::backends().await {
        let s = start_stack(&db).await;
        let b = s.backend;
        let admin = &s.admin;
        let eng = admin.create_team("Eng", "eng").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let data = admin.create_team("Data", "data").await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let eng_token = admin.create_token("eng-lead", "access", Some(&eng)).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let eng_api = admin.with_token(Some(&eng_token));
        let anonymous = admin.with_token(None);

        // No token, no secrets.
        let r = anonymous.get("/v1/secrets").await;
        assert_eq!(r.status, 401, "[{b}] GET /v1/secrets without a token: {r}");
        let r = anonymous
            .post("/v1/secrets", &json!({"name": "x", "value": "sk-anon"}))
            .await;
        assert_eq!(r.status, 401, "[{b}] POST /v1/secrets without a token: {r}");

        // An org admin stores org-wide and team secrets.
        let r = admin
            .post("/v1/secrets", &json!({"name": "openai-org", "value": ORG}))
            .await;
        assert_eq!(r.status, 201, "[{b}] POST org-wide secret: {r}");
        assert_secret_shape(&r.body, &format!("[{b}] POST org-wide secret"));
        assert_eq!(r.body["name"], "openai-org", "[{b}] {r}");
        assert!(
            r.body["team_id"].is_null(),
            "[{b}] org-wide: team_id null: {r}"
        );
        assert_no_value(&r, &all, &format!("[{b}] POST org-wide secret"));
        let org_created_at = r.body["created_at"].as_str().unwrap().to_owned();

        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai", "value": ENG, "team_id": eng}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] POST eng secret: {r}");
        assert_secret_shape(&r.body, &format!("[{b}] POST eng secret"));
        assert_eq!(r.body["team_id"], eng.as_str(), "[{b}] {r}");
        assert_no_value(&r, &all, &format!("[{b}] POST eng secret"));
        let eng_created_at = r.body["created_at"].as_str().unwrap().to_owned();

        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai", "value": DATA, "team_id": data}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] POST data secret: {r}");
        assert_no_value(&r, &all, &format!("[{b}] POST data secret"));

        // The same name org-wide is another secret (a name is per team).
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai", "value": ORG_SAME_NAME}),
            )
            .await;
        assert_eq!(
            r.status, 201,
            "[{b}] an org-wide secret may share a team secret's name: {r}"
        );

        let r = admin.get("/v1/secrets").await;
        assert_eq!(r.status, 200, "[{b}] GET /v1/secrets: {r}");
        for item in r.data() {
            assert_secret_shape(&item, &format!("[{b}] GET /v1/secrets (admin)"));
        }
        assert_no_value(&r, &all, &format!("[{b}] GET /v1/secrets (admin)"));
        assert_eq!(
            listed(&r),
            pairs(&[
                ("openai-org", ""),
                ("openai", ""),
                ("openai", &eng),
                ("openai", &data)
            ]),
            "[{b}] an org admin lists every secret: {r}"
        );

        // A team token sees and manages its own team's secrets only.
        let r = eng_api.get("/v1/secrets").await;
        assert_eq!(r.status, 200, "[{b}] GET /v1/secrets (team token): {r}");
        assert_no_value(&r, &all, &format!("[{b}] GET /v1/secrets (team token)"));
        assert_eq!(
            listed(&r),
            pairs(&[("openai", &eng)]),
            "[{b}] a team token lists only its team's secrets: {r}"
        );

        let r = eng_api
            .post(
                "/v1/secrets",
                &json!({"name": "anthropic", "value": ENG_OWN, "team_id": eng}),
            )
            .await;
        assert_eq!(
            r.status, 201,
            "[{b}] a team token stores its team's secret: {r}"
        );
        assert_eq!(r.body["team_id"], eng.as_str(), "[{b}] {r}");
        assert_no_value(&r, &all, &format!("[{b}] POST by team token"));
        assert!(
            r.body["updated_by"]
                .as_str()
                .is_some_and(|a| a.contains("eng-lead")),
            "[{b}] `updated_by` should name the token that stored it: {r}"
        );

        let r = eng_api
            .post(
                "/v1/secrets",
                &json!({"name": "sneaky", "value": "sk-sneaky-1"}),
            )
            .await;
        assert_eq!(
            r.status, 403,
            "[{b}] a team token may not store an org-wide secret: {r}"
        );
        r.assert_error_shape(&format!("[{b}] 403"));

        let r = eng_api
            .post(
                "/v1/secrets",
                &json!({"name": "openai", "value": "sk-sneaky-2", "team_id": data}),
            )
            .await;
        assert_eq!(
            r.status, 404,
            "[{b}] another team's team_id from a team token must look absent: {r}"
        );
        r.assert_error_shape(&format!("[{b}] 404"));

        let r = eng_api
            .delete(&format!("/v1/secrets/openai?team_id={data}"))
            .await;
        assert_eq!(
            r.status, 404,
            "[{b}] deleting another team's secret with a team token: {r}"
        );
        let r = eng_api.delete("/v1/secrets/openai-org").await;
        assert!(
            r.status == 403 || r.status == 404,
            "[{b}] a team token deleting an org-wide secret must be refused: {r}"
        );
        let r = admin.get("/v1/secrets").await;
        assert_eq!(
            listed(&r),
            pairs(&[
                ("anthropic", &eng),
                ("openai-org", ""),
                ("openai", ""),
                ("openai", &eng),
                ("openai", &data)
            ]),
            "[{b}] refused requests must change nothing: {r}"
        );

        // Replacing keeps one secret, answers 200 and keeps its creation time.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = eng_api
            .post(
                "/v1/secrets",
                &json!({"name": "openai", "value": ENG_2, "team_id": eng}),
            )
            .await;
        assert_eq!(r.status, 200, "[{b}] replacing a secret answers 200: {r}");
        assert_secret_shape(&r.body, &format!("[{b}] replace"));
        assert_no_value(&r, &all, &format!("[{b}] replace"));
        assert_eq!(
            r.body["created_at"], eng_created_at,
            "[{b}] replacing keeps created_at: {r}"
        );
        assert!(
            parse_rfc3339(r.body["updated_at"].as_str().unwrap()) > parse_rfc3339(&eng_created_at),
            "[{b}] replacing moves updated_at: {r}"
        );
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai-org", "value": ORG_2}),
            )
            .await;
        assert_eq!(r.status, 200, "[{b}] replacing an org-wide secret: {r}");
        assert_eq!(r.body["created_at"], org_created_at, "[{b}] {r}");

        // Invalid input: 4xx, a message naming the field, nothing stored.
        let long = "k".repeat(65);
        for (body, field, what) in [
            (
                json!({"name": "bad name", "value": "v"}),
                "name",
                "a space in the name",
            ),
            (json!({"name": "", "value": "v"}), "name", "an empty name"),
            (
                json!({"name": long, "value": "v"}),
                "name",
                "a 65-character name",
            ),
            (
                json!({"name": "a/b", "value": "v"}),
                "name",
                "a slash in the name",
            ),
            (
                json!({"name": "ok-name", "value": ""}),
                "value",
                "an empty value",
            ),
            (json!({"name": "ok-name"}), "value", "no value"),
            (json!({"value": "v"}), "name", "no name"),
            (
                json!({"name": "ok-name", "value": 42}),
                "value",
                "a number as value",
            ),
            (
                json!({"name": "ok-name", "value": "v", "scope": "org"}),
                "scope",
                "an unknown field",
            ),
        ] {
            let r = admin.post("/v1/secrets", &body).await;
            assert!(
                (400..500).contains(&r.status) && r.status != 401 && r.status != 403,
                "[{b}] {what}: expected a 4xx input error, got {r}"
            );
            let msg = error_message(&r, &format!("[{b}] {what}"));
            assert!(
                msg.contains(field),
                "[{b}] {what}: the message must name the field `{field}`: {msg}"
            );
        }
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "ok-name", "value": "v", "team_id": "no-such-team"}),
            )
            .await;
        assert_eq!(r.status, 404, "[{b}] an unknown team_id: {r}");
        let r = admin.get("/v1/secrets").await;
        assert_eq!(
            r.data().len(),
            5,
            "[{b}] refused requests must store nothing: {r}"
        );

        // Delete: 204, then 404; scoped by team_id.
        let r = eng_api
            .delete(&format!("/v1/secrets/anthropic?team_id={eng}"))
            .await;
        assert_eq!(
            r.status, 204,
            "[{b}] a team token deletes its team's secret: {r}"
        );
        let r = eng_api
            .delete(&format!("/v1/secrets/anthropic?team_id={eng}"))
            .await;
        assert_eq!(r.status, 404, "[{b}] deleting it again: {r}");
        r.assert_error_shape(&format!("[{b}] 404 on delete"));
        let r = admin.delete("/v1/secrets/openai").await;
        assert_eq!(r.status, 204, "[{b}] deleting the org-wide `openai`: {r}");
        let r = admin.delete("/v1/secrets/openai").await;
        assert_eq!(
            r.status, 404,
            "[{b}] deleting the org-wide `openai` again: {r}"
        );
        let r = admin.delete("/v1/secrets/never-stored").await;
        assert_eq!(r.status, 404, "[{b}] deleting an unknown secret: {r}");
        let r = admin.get("/v1/secrets").await;
        assert_eq!(
            listed(&r),
            pairs(&[("openai-org", ""), ("openai", &eng), ("openai", &data)]),
            "[{b}] an org-wide delete leaves the teams' secrets of that name: {r}"
        );
        assert_no_value(&r, &all, &format!("[{b}] final list"));

        // At rest: sealed, not in clear, under the installation's master key.
        let rows = sealed_rows(&db.db).await;
        assert_eq!(rows.len(), 3, "[{b}] rows of the secret table: {rows:?}");
        for (name, team, sealed) in &rows {
            assert!(
                !sealed.is_empty(),
                "[{b}] `{name}` ({team}) sealed is empty"
            );
            let decoded = base64_decode(sealed);
            for v in all {
                assert!(
                    !sealed.contains(v),
                    "[{b}] secret `{name}` ({team}) is stored in clear: {sealed}"
                );
                if let Some(bytes) = &decoded {
                    assert!(
                        !contains_bytes(bytes, v.as_bytes()),
                        "[{b}] secret `{name}` ({team}) is only base64-encoded, not encrypted"
                    );
                }
            }
        }
        let key = dev_master_key(&s.install);
        let for_eng = store::secrets::resolve(&db.db, &key, Some(&eng))
            .await
            .unwrap_or_else(|e| panic!("[{b}] the installation's key must open the secrets: {e}"));
        let expected: HashMap<String, String> = [("openai-org", ORG_2), ("openai", ENG_2)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            for_eng, expected,
            "[{b}] what the eng team's gateway would use"
        );
        let for_data = store::secrets::resolve(&db.db, &key, Some(&data))
            .await
            .unwrap();
        assert_eq!(
            for_data.get("openai").map(String::as_str),
            Some(DATA),
            "[{b}]"
        );
        let (other_key, _) = store::crypto::MasterKey::generate();
        assert!(
            store::secrets::resolve(&db.db, &other_key, None)
                .await
                .is_err(),
            "[{b}] another master key must not open the secrets"
        );

        // Nor in the console's logs.
        let logs = s.serve.stderr();
        for v in all {
            assert!(
                !logs.contains(v),
                "[{b}] a secret value is in kt serve's log"
            );
        }

        drop(s);
        db.cleanup().await;
    }
}

// ---------------------------------------------------------------------------
// 2. gateways use them: `secret_key_ref.secret`, rotation, team secrets,
//    provider defaults

#[tokio::test(flavor = "multi_thread")]
async fn gateway_uses_console_stored_secrets_and_provider_defaults() {
    const ORG_KEY: &str = "sk-org-123";
    const ORG_KEY_2: &str = "sk-org-rotated-456";
    const TEAM_KEY: &str = "sk-team-eng-789";
    const LATE_KEY: &str = "sk-late-arrival-246";
    const DEFAULT_KEY: &str = "sk-default-only-135";
    let all = [ORG_KEY, ORG_KEY_2, TEAM_KEY, LATE_KEY, DEFAULT_KEY];

    for db in store::testing::backends().await {
        let s = start_stack(&db).await;
        let b = s.backend;
        let admin = &s.admin;
        let eng = s.team_with_key("Eng", "eng").await;
        let eng_api = admin.with_token(Some(
            admin
                .create_token("eng-lead", "access", Some(&eng.team_id))
                .await["token"]
                .as_str()
                .unwrap(),
        ));

        // --- provider defaults: validation (nothing stored by a refusal)
        let r = eng_api
            .put(
                "/v1/providers/openai",
                &json!({"base_url": "https://x.example/v1"}),
            )
            .await;
        assert_eq!(
            r.status, 403,
            "[{b}] a team token setting provider defaults: {r}"
        );
        r.assert_error_shape(&format!("[{b}] 403"));
        for kind in ["azure", "demo", "OPENAI"] {
            let r = admin
                .put(
                    &format!("/v1/providers/{kind}"),
                    &json!({"base_url": "https://x.example"}),
                )
                .await;
            assert_eq!(r.status, 404, "[{b}] PUT /v1/providers/{kind}: {r}");
        }
        let r = admin
            .put(
                "/v1/providers/openai",
                &json!({"base_url": "ftp://x.example/v1"}),
            )
            .await;
        assert_eq!(r.status, 422, "[{b}] a non-http base_url: {r}");
        let msg = error_message(&r, &format!("[{b}] bad base_url"));
        assert!(
            msg.contains("base_url"),
            "[{b}] the message must name `base_url`: {msg}"
        );
        let r = admin
            .put("/v1/providers/openai", &json!({"secret": "never-stored"}))
            .await;
        assert_eq!(
            r.status, 422,
            "[{b}] a default naming a missing secret: {r}"
        );
        let msg = error_message(&r, &format!("[{b}] missing secret"));
        assert!(
            msg.contains("secret") && msg.contains("never-stored"),
            "[{b}] the message must name `secret` and the missing secret: {msg}"
        );
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "eng-only", "value": TEAM_KEY, "team_id": eng.team_id}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] {r}");
        let r = admin
            .put("/v1/providers/openai", &json!({"secret": "eng-only"}))
            .await;
        assert_eq!(
            r.status, 422,
            "[{b}] a provider default must name an org-wide secret, not a team's: {r}"
        );
        let r = admin
            .put(
                "/v1/providers/openai",
                &json!({"base_url": "https://x.example/v1", "key": "sk-inline"}),
            )
            .await;
        assert!(
            (400..500).contains(&r.status),
            "[{b}] an unknown field (`key`) must be refused: {r}"
        );
        let r = admin.get("/v1/providers").await;
        assert_eq!(r.status, 200, "[{b}] GET /v1/providers: {r}");
        assert!(
            r.data().is_empty(),
            "[{b}] refusals must store no default: {r}"
        );

        // --- `secret_key_ref.secret` of an org-wide secret
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai-key", "value": ORG_KEY}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] {r}");
        let config = openai_config(&format!(
            "{}{}",
            base_url(&s.standin.base_url),
            secret_ref("openai-key")
        ));
        let path = s.install.write_config("org-secret", &config);
        let mut gw = s.install.gateway(&path, &[]).await;
        assert_upstream_key(
            &gw,
            &eng.key,
            &s.standin,
            ORG_KEY,
            &format!("[{b}] org secret"),
        )
        .await;

        // Rotation: a new value reaches the provider without a restart.
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai-key", "value": ORG_KEY_2}),
            )
            .await;
        assert_eq!(r.status, 200, "[{b}] rotating: {r}");
        let took = wait_for_upstream_key(
            &mut gw,
            &eng.key,
            &s.standin,
            ORG_KEY_2,
            Some(ORG_KEY),
            &format!("[{b}] rotation"),
        )
        .await;
        eprintln!("[{b}] rotation took effect after {took:?}");
        for _ in 0..3 {
            assert_upstream_key(
                &gw,
                &eng.key,
                &s.standin,
                ORG_KEY_2,
                &format!("[{b}] after rotation"),
            )
            .await;
        }

        // --- a team's own secret of the same name wins on that team's gateway
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai-key", "value": TEAM_KEY, "team_id": eng.team_id}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] {r}");
        let team_path = s.install.write_config("team-eng", &config);
        let team_gw = s.install.gateway(&team_path, &["--team", "eng"]).await;
        assert_upstream_key(
            &team_gw,
            &eng.key,
            &s.standin,
            TEAM_KEY,
            &format!("[{b}] team secret on a --team gateway"),
        )
        .await;
        // … and never on a gateway serving every team.
        assert_upstream_key(
            &gw,
            &eng.key,
            &s.standin,
            ORG_KEY_2,
            &format!("[{b}] org secret on a shared gateway"),
        )
        .await;
        drop(team_gw);

        // --- a missing secret: 502 naming it, then usable once stored
        let missing_config = openai_config(&format!(
            "{}{}",
            base_url(&s.standin.base_url),
            secret_ref("late-key")
        ));
        let missing_path = s.install.write_config("missing-secret", &missing_config);
        let mut missing_gw = s.install.gateway(&missing_path, &[]).await;
        let before = s.standin.count();
        let r = chat(
            &missing_gw.url,
            Some(&eng.key),
            &chat_body("gpt-4o", "hello"),
        )
        .await;
        assert_eq!(
            r.status, 502,
            "[{b}] a target whose secret does not exist: {r}"
        );
        let msg = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("late-key"),
            "[{b}] the 502 must name the missing secret `late-key`: {r}"
        );
        assert_eq!(
            s.standin.count(),
            before,
            "[{b}] nothing may reach the provider without a key"
        );
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "late-key", "value": LATE_KEY}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] {r}");
        wait_for_upstream_key(
            &mut missing_gw,
            &eng.key,
            &s.standin,
            LATE_KEY,
            None,
            &format!("[{b}] a secret stored after the gateway started"),
        )
        .await;
        drop(missing_gw);

        // --- provider defaults: the org's base_url (and key) for its kind
        let vendor = StandIn::start().await;
        let r = admin
            .post(
                "/v1/secrets",
                &json!({"name": "openai-default", "value": DEFAULT_KEY}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] {r}");
        let r = admin
            .put(
                "/v1/providers/openai",
                &json!({"base_url": vendor.base_url, "secret": "openai-default"}),
            )
            .await;
        assert_eq!(r.status, 200, "[{b}] PUT /v1/providers/openai: {r}");
        assert_eq!(r.body["kind"], "openai", "[{b}] {r}");
        assert_eq!(r.body["base_url"], vendor.base_url.as_str(), "[{b}] {r}");
        assert_eq!(r.body["secret"], "openai-default", "[{b}] {r}");
        assert_no_value(&r, &all, &format!("[{b}] PUT /v1/providers"));
        let r = admin.get("/v1/providers").await;
        assert_eq!(r.status, 200, "[{b}] {r}");
        let defaults: Vec<Value> = r.data();
        assert_eq!(defaults.len(), 1, "[{b}] GET /v1/providers: {r}");
        assert_eq!(defaults[0]["kind"], "openai", "[{b}] {r}");
        assert_eq!(defaults[0]["secret"], "openai-default", "[{b}] {r}");
        assert_no_value(&r, &all, &format!("[{b}] GET /v1/providers"));

        // A target with its own key but no base_url goes to the default URL
        // with its own key.
        let own_key_path = s.install.write_config(
            "own-key-default-url",
            &openai_config(&secret_ref("openai-key")),
        );
        let own_key_gw = s.install.gateway(&own_key_path, &[]).await;
        let on_standin = s.standin.count();
        assert_upstream_key(
            &own_key_gw,
            &eng.key,
            &vendor,
            ORG_KEY_2,
            &format!("[{b}] own key, default base_url"),
        )
        .await;
        assert_eq!(
            s.standin.count(),
            on_standin,
            "[{b}] the default base_url must be used"
        );
        drop(own_key_gw);

        // A target with its own base_url and key ignores the defaults, also
        // once the running gateway has re-read them.
        let on_vendor = vendor.count();
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_upstream_key(
            &gw,
            &eng.key,
            &s.standin,
            ORG_KEY_2,
            &format!("[{b}] own base_url and key win over the defaults"),
        )
        .await;
        assert_eq!(
            vendor.count(),
            on_vendor,
            "[{b}] the defaults must not override a target's own base_url"
        );

        // Values appear in no log and no event.
        let events = admin.get("/v1/events?limit=1000").await;
        assert_eq!(events.status, 200, "[{b}] {events}");
        assert_no_value(&events, &all, &format!("[{b}] GET /v1/events"));
        for (who, log) in [("kt serve", s.serve.stderr()), ("kt gateway", gw.stderr())] {
            for v in all {
                assert!(!log.contains(v), "[{b}] a secret value is in the {who} log");
            }
        }

        drop(gw);
        drop(s);
        db.cleanup().await;
    }
}

/// SPEC §6: "A config target of that kind without its own base_url /
/// secret_key_ref uses them, so tenant configs and onboarding templates need
/// no vendor key of their own."
#[tokio::test(flavor = "multi_thread")]
async fn a_target_without_its_own_url_or_key_uses_the_provider_defaults() {
    const DEFAULT_KEY: &str = "sk-org-123";
    const NEXT_KEY: &str = "sk-org-next-789";

    for db in store::testing::backends().await {
        let s = start_stack(&db).await;
        let b = s.backend;
        let admin = &s.admin;
        let eng = s.team_with_key("Eng", "eng").await;
        for (name, value) in [("openai-key", DEFAULT_KEY), ("openai-next", NEXT_KEY)] {
            let r = admin
                .post("/v1/secrets", &json!({"name": name, "value": value}))
                .await;
            assert_eq!(r.status, 201, "[{b}] {r}");
        }
        let r = admin
            .put(
                "/v1/providers/openai",
                &json!({"base_url": s.standin.base_url, "secret": "openai-key"}),
            )
            .await;
        assert_eq!(r.status, 200, "[{b}] PUT /v1/providers/openai: {r}");

        // The bare target (as in an onboarding template) is a valid config…
        let path = s.install.write_config("bare", &openai_config(""));
        let lint = s
            .install
            .run(&["policy", "lint", "--file", path.to_str().unwrap()], None)
            .await;
        assert_eq!(
            lint.status.code(),
            Some(0),
            "[{b}] a target without base_url / secret_key_ref must lint clean (the org's provider defaults supply them):\n{lint}"
        );
        // … that runs on the defaults.
        let mut gw = s.install.gateway(&path, &[]).await;
        assert_upstream_key(
            &gw,
            &eng.key,
            &s.standin,
            DEFAULT_KEY,
            &format!("[{b}] bare target on the defaults"),
        )
        .await;

        // Changing the default's secret reaches the running gateway.
        let r = admin
            .put(
                "/v1/providers/openai",
                &json!({"base_url": s.standin.base_url, "secret": "openai-next"}),
            )
            .await;
        assert_eq!(r.status, 200, "[{b}] {r}");
        wait_for_upstream_key(
            &mut gw,
            &eng.key,
            &s.standin,
            NEXT_KEY,
            Some(DEFAULT_KEY),
            &format!("[{b}] a changed provider default"),
        )
        .await;

        drop(gw);
        drop(s);
        db.cleanup().await;
    }
}

// ---------------------------------------------------------------------------
// 3. the master key

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_master_key_is_refused() {
    const VALUE: &str = "sk-sealed-under-dev-key-3e9f";

    for db in store::testing::backends().await {
        let b = db.name();
        let install = Install::new(&db.url);

        // First start: a development key is generated (0600, with a warning).
        let mut serve = install.serve().await;
        let key_file = install.data_path().join("master.key");
        assert!(
            key_file.exists(),
            "[{b}] kt serve must generate {}",
            key_file.display()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode, 0o600,
                "[{b}] the dev master key file must be mode 0600, is {mode:o}"
            );
        }
        assert!(
            serve.stderr().contains("KT_MASTER_KEY"),
            "[{b}] a generated development key must come with a warning naming KT_MASTER_KEY:\n{}",
            serve.stderr()
        );
        let token = install.create_admin_token("t").await;
        let api = Api::new(&serve.url, Some(&token));
        let r = api
            .post(
                "/v1/secrets",
                &json!({"name": "openai-key", "value": VALUE}),
            )
            .await;
        assert_eq!(r.status, 201, "[{b}] {r}");
        let status = serve.terminate(Duration::from_secs(15)).await;
        assert!(status.success(), "[{b}] kt serve on SIGTERM: {status}");
        let dev_key = std::fs::read_to_string(&key_file)
            .unwrap()
            .trim()
            .to_owned();

        let with_key = |args: &[&str], key: &str| {
            let mut cmd = install.command(args);
            cmd.env("KT_MASTER_KEY", key);
            cmd
        };
        let serve_args = ["serve", "--addr", "127.0.0.1:0"];

        // Another valid key: refused, saying which setting is wrong.
        let (_, other) = store::crypto::MasterKey::generate();
        let out = run_command_within(with_key(&serve_args, &other), None, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| {
                panic!("[{b}] kt serve must refuse a wrong KT_MASTER_KEY, yet it kept running: {e}")
            });
        assert!(
            !out.status.success() && out.status.code().is_some(),
            "[{b}] kt serve with a wrong KT_MASTER_KEY must exit non-zero:\n{out}"
        );
        assert!(
            out.stderr.contains("KT_MASTER_KEY"),
            "[{b}] the refusal must mention KT_MASTER_KEY:\n{out}"
        );
        assert!(
            !out.stdout.contains("listening on"),
            "[{b}] it must not have served:\n{out}"
        );
        assert!(
            !out.stderr.contains(&other),
            "[{b}] the key itself must not be printed:\n{out}"
        );

        // A gateway with a wrong KT_MASTER_KEY refuses too.
        let config = install.write_config(
            "team-eng",
            &openai_config(&format!(
                "{}{}",
                base_url(&format!("http://127.0.0.1:{}/v1", closed_port())),
                secret_ref("openai-key")
            )),
        );
        let gw_args = [
            "gateway",
            "run",
            "--policy-config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ];
        let out = run_command_within(with_key(&gw_args, &other), None, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("[{b}] kt gateway run must refuse a wrong KT_MASTER_KEY, yet it kept running: {e}"));
        assert!(
            !out.status.success() && out.stderr.contains("KT_MASTER_KEY"),
            "[{b}] kt gateway run with a wrong KT_MASTER_KEY must exit non-zero naming it:\n{out}"
        );

        // Malformed keys are invalid input: exit 2.
        for (bad, what) in [
            ("not a base64 key!", "not base64"),
            ("AAAAAAAAAAAAAAAAAAAAAA==", "16 bytes"),
            ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "33 bytes"),
        ] {
            let out = run_command_within(with_key(&serve_args, bad), None, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "[{b}] kt serve with a malformed KT_MASTER_KEY ({what}) kept running: {e}"
                    )
                });
            assert_eq!(
                out.status.code(),
                Some(2),
                "[{b}] a malformed KT_MASTER_KEY ({what}) must exit with 2:\n{out}"
            );
            assert!(
                out.stderr.contains("KT_MASTER_KEY"),
                "[{b}] the message for a malformed key ({what}) must name KT_MASTER_KEY:\n{out}"
            );
        }

        // The installation's key, given as KT_MASTER_KEY, is accepted and
        // opens the stored secret.
        let serve = KtProcess::start(with_key(&serve_args, &dev_key), "kt serve").await;
        let api = Api::new(&serve.url, Some(&token));
        let r = api.get("/v1/secrets").await;
        assert_eq!(r.status, 200, "[{b}] {r}");
        assert_eq!(r.data().len(), 1, "[{b}] {r}");
        let key = store::crypto::MasterKey::from_base64(&dev_key).unwrap();
        let values = store::secrets::resolve(&db.db, &key, None).await.unwrap();
        assert_eq!(
            values.get("openai-key").map(String::as_str),
            Some(VALUE),
            "[{b}]"
        );
        // The failed starts left the key file alone.
        assert_eq!(
            std::fs::read_to_string(&key_file).unwrap().trim(),
            dev_key,
            "[{b}]"
        );

        drop(serve);
        drop(install);
        db.cleanup().await;
    }
}
