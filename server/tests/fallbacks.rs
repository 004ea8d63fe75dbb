//! Fallback targets through a real `kt gateway run`, on every available
//! database backend: a target's `fallbacks` take over when it answers 5xx or
//! cannot be reached (streamed requests too), the event names the target that
//! answered, `/metrics` counts the retries; without `fallbacks` the failure
//! reaches the caller, and a 4xx is never retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

/// Environment variable the `backup` target reads its key from.
const BACKUP_KEY_VAR: &str = "KT_TEST_BACKUP_KEY";
/// The backup's key: the backup must receive it, not the primary's.
const BACKUP_KEY: &str = "sk-backup-standin-13572468";
/// The prometheus counter of requests retried on a fallback target.
const FALLBACKS_METRIC: &str = "kt_gateway_fallbacks_total";

/// `primary` (at `primary_url`, with `fallbacks` when given) and `backup`,
/// both OpenAI targets serving every model; routing picks `primary` (the
/// first OpenAI target without a `models` list). `extra` targets come last.
fn config(primary_url: &str, fallbacks: Option<&str>, backup: &StandIn, extra: &str) -> String {
    let backup_url = &backup.base_url;
    let fallbacks = fallbacks.map_or_else(String::new, |f| format!("      fallbacks: [{f}]\n"));
    format!(
        "policies: []
providers:
  targets:
    - id: primary
      provider:
        kind: openai
        base_url: {primary_url}
        secret_key_ref:
          env: {UPSTREAM_KEY_VAR}
{fallbacks}    - id: backup
      provider:
        kind: openai
        base_url: {backup_url}
        secret_key_ref:
          env: {BACKUP_KEY_VAR}
{extra}"
    )
}

/// A base URL nothing answers on.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}/v1", closed_port())
}

/// Starts the gateway `name` on `config`, with the backup's key.
async fn gateway(s: &Stack, name: &str, config: &str) -> KtProcess {
    let path = s.install.write_config(name, config);
    s.install
        .gateway_with_env(&path, &[], &[(BACKUP_KEY_VAR, BACKUP_KEY)])
        .await
}

/// The value of the fallbacks counter on a gateway's `/metrics`.
async fn fallbacks_counted(gw: &KtProcess) -> f64 {
    let r = http_client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "gateway /metrics");
    let text = r.text().await.unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(FALLBACKS_METRIC)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("/metrics has no `{FALLBACKS_METRIC} N` line:\n{text}"))
}

/// A streamed chat request, read whole: status, content type and body.
async fn chat_streamed(gateway: &str, key: &str, body: &Value) -> (u16, String, String) {
    let response = http_client()
        .post(format!("{gateway}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

fn streamed_body(model: &str, text: &str) -> Value {
    let mut body = chat_body(model, text);
    body["stream"] = json!(true);
    body
}

/// Asserts the stand-in's canned answer reached the caller.
fn assert_canned(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what}: {r}");
    assert_eq!(
        r.body["choices"][0]["message"]["content"], STANDIN_CONTENT,
        "{what}: the backup's answer: {r}"
    );
    assert_eq!(
        r.body["usage"]["prompt_tokens"], STANDIN_PROMPT_TOKENS,
        "{what}: {r}"
    );
}

/// Asserts a streamed answer is the stand-in's canned stream.
fn assert_canned_stream(status: u16, content_type: &str, body: &str, what: &str) {
    assert_eq!(status, 200, "{what}:\n{body}");
    assert!(
        content_type.starts_with("text/event-stream"),
        "{what}: content type `{content_type}`:\n{body}"
    );
    assert_eq!(
        sse_content(body),
        STREAM_PIECES.concat(),
        "{what}: the backup's streamed text:\n{body}"
    );
    assert_eq!(
        body.matches("data: [DONE]").count(),
        1,
        "{what}: exactly one [DONE]:\n{body}"
    );
}

/// Asserts the event of a request a target answered.
fn assert_answered_by(e: &Value, target: &str, streamed: bool, what: &str) {
    assert_eq!(
        e["provider_target"], target,
        "{what}: the event must name the target that answered: {e}"
    );
    assert_eq!(e["provider_kind"], "openai", "{what}: {e}");
    assert_eq!(e["verdict"], "allow", "{what}: {e}");
    assert_eq!(e["upstream_status"], 200, "{what}: {e}");
    assert_eq!(e["streamed"], streamed, "{what}: {e}");
    let (input, output) = if streamed {
        (STREAM_PROMPT_TOKENS, STREAM_COMPLETION_TOKENS)
    } else {
        (STANDIN_PROMPT_TOKENS, STANDIN_COMPLETION_TOKENS)
    };
    assert_eq!(e["input_tokens"], input, "{what}: {e}");
    assert_eq!(e["output_tokens"], output, "{what}: {e}");
    assert!(
        e["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{what}: the answered request is priced: {e}"
    );
}

/// Asserts the event of a request that failed upstream.
fn assert_failed_at(e: &Value, target: &str, status: u16, what: &str) {
    assert_eq!(e["provider_target"], target, "{what}: {e}");
    assert_eq!(e["verdict"], "error", "{what}: {e}");
    assert_eq!(e["upstream_status"], status, "{what}: {e}");
    assert_eq!(e["input_tokens"], 0, "{what}: {e}");
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fallback_targets_take_over_when_the_primary_fails() {
    for db in store::testing::backends().await {
        fallbacks(&db).await;
        db.cleanup().await;
    }
}

async fn fallbacks(db: &TestDatabase) {
    let s = start_stack(db).await;
    let backend = s.backend;
    let team = s.team_with_key("Engineering", "eng").await;
    let key = team.key.as_str();
    // The stack's stand-in is the backup everywhere.
    let backup = &s.standin;
    let primary = StandIn::start_answering(Answering::status(503)).await;

    // ---- The primary answers 503: the backup answers instead.
    let gw = gateway(
        &s,
        "with-fallback",
        &config(&primary.base_url, Some("backup"), backup, ""),
    )
    .await;
    let what = format!("[{backend}] primary 503, non-streamed");
    let sent = chat_body("gpt-4o", "Hello, whoever answers");
    let r = chat(&gw.url, Some(key), &sent).await;
    assert_canned(&r, &what);
    assert_eq!(primary.count(), 1, "{what}: the primary was tried first");
    assert_eq!(backup.count(), 1, "{what}: then the backup");
    let (tried, answered) = (&primary.requests()[0], &backup.requests()[0]);
    for (who, req, secret) in [
        ("primary", tried, UPSTREAM_KEY),
        ("backup", answered, BACKUP_KEY),
    ] {
        assert_eq!(
            req.header("authorization"),
            Some(format!("Bearer {secret}").as_str()),
            "{what}: the {who} must get its own target's key"
        );
        assert_eq!(
            req.body["model"], "gpt-4o",
            "{what}: the {who} got: {}",
            req.body
        );
        assert_eq!(
            req.body["messages"], sent["messages"],
            "{what}: the {who} must get the same request: {}",
            req.body
        );
    }
    let events = s.gateway_events("with-fallback", 1).await;
    assert_answered_by(&events[0], "backup", false, &what);
    assert_eq!(events[0]["team_id"], team.team_id.as_str(), "{what}");

    let what = format!("[{backend}] primary 503, streamed");
    let (status, ct, body) = chat_streamed(
        &gw.url,
        key,
        &streamed_body("gpt-4o", "Stream, whoever answers"),
    )
    .await;
    assert_canned_stream(status, &ct, &body, &what);
    assert_eq!(primary.count(), 2, "{what}: the primary was tried first");
    assert_eq!(backup.count(), 2, "{what}: then the backup");
    assert_eq!(
        primary.requests()[1].body["stream"],
        true,
        "{what}: the primary was asked for a stream"
    );
    assert_eq!(
        backup.requests()[1].body["stream"],
        true,
        "{what}: the backup was asked for a stream"
    );
    let events = s.gateway_events("with-fallback", 2).await;
    assert_answered_by(&events[0], "backup", true, &what);
    assert_eq!(
        fallbacks_counted(&gw).await,
        2.0,
        "[{backend}] two requests were retried on the backup"
    );

    // ---- A 4xx from the primary is the caller's problem: relayed as is,
    // never retried.
    for status in [400, 429] {
        let what = format!("[{backend}] primary {status}");
        primary.set_answering(Answering::status(status));
        let (p, b) = (primary.count(), backup.count());
        let r = chat(&gw.url, Some(key), &chat_body("gpt-4o", "Bad request")).await;
        assert_eq!(
            r.status, status,
            "{what}: the primary's status reaches the caller: {r}"
        );
        assert_eq!(
            r.body,
            standin_error_body(status),
            "{what}: the primary's error body reaches the caller unchanged"
        );
        assert_eq!(primary.count(), p + 1, "{what}");
        assert_eq!(
            backup.count(),
            b,
            "{what}: a 4xx must not be retried on the backup"
        );
        let (status_s, _, body) =
            chat_streamed(&gw.url, key, &streamed_body("gpt-4o", "Bad stream")).await;
        assert_eq!(status_s, status, "{what}, streamed:\n{body}");
        assert_eq!(
            backup.count(),
            b,
            "{what}, streamed: a 4xx must not be retried on the backup"
        );
    }
    let events = s.gateway_events("with-fallback", 6).await;
    // Newest first: 429 streamed, 429, 400 streamed, 400.
    for (e, (status, streamed)) in
        events
            .iter()
            .zip([(429, true), (429, false), (400, true), (400, false)])
    {
        let what = format!("[{backend}] primary {status} (streamed: {streamed})");
        assert_failed_at(e, "primary", status, &what);
        assert_eq!(e["streamed"], streamed, "{what}: {e}");
    }
    assert_eq!(
        fallbacks_counted(&gw).await,
        2.0,
        "[{backend}] 4xx answers are not retried"
    );

    // ---- Both fail: the caller gets the last target's failure.
    let what = format!("[{backend}] primary 503 and backup 500");
    primary.set_answering(Answering::status(503));
    backup.set_answering(Answering::status(500));
    let r = chat(&gw.url, Some(key), &chat_body("gpt-4o", "Anyone?")).await;
    assert_eq!(r.status, 500, "{what}: the backup's answer: {r}");
    assert_eq!(r.body, standin_error_body(500), "{what}");
    let events = s.gateway_events("with-fallback", 7).await;
    assert_failed_at(&events[0], "backup", 500, &what);
    assert_eq!(fallbacks_counted(&gw).await, 3.0, "{what}");
    backup.set_answering(Answering::Canned);
    drop(gw);

    // ---- The primary cannot be reached: the backup answers.
    let (p, b) = (primary.count(), backup.count());
    let gw = gateway(
        &s,
        "unreachable-primary",
        &config(&dead_url(), Some("backup"), backup, ""),
    )
    .await;
    let what = format!("[{backend}] primary unreachable, non-streamed");
    let r = chat(&gw.url, Some(key), &chat_body("gpt-4o", "Hello?")).await;
    assert_canned(&r, &what);
    assert_eq!(backup.count(), b + 1, "{what}");
    let what = format!("[{backend}] primary unreachable, streamed");
    let (status, ct, body) = chat_streamed(&gw.url, key, &streamed_body("gpt-4o", "Stream?")).await;
    assert_canned_stream(status, &ct, &body, &what);
    assert_eq!(backup.count(), b + 2, "{what}");
    assert_eq!(primary.count(), p, "the 503 stand-in is not in this config");
    let events = s.gateway_events("unreachable-primary", 2).await;
    assert_answered_by(&events[0], "backup", true, &what);
    assert_answered_by(
        &events[1],
        "backup",
        false,
        &format!("[{backend}] primary unreachable, non-streamed"),
    );
    assert_eq!(
        fallbacks_counted(&gw).await,
        2.0,
        "[{backend}] both requests were retried on the backup"
    );
    drop(gw);

    // ---- Without `fallbacks`, the same failures reach the caller and the
    // backup is never called.
    let dead = format!(
        "    - id: dead
      provider:
        kind: openai
        base_url: {}
        models: [gpt-4o-mini]
        secret_key_ref:
          env: {UPSTREAM_KEY_VAR}
",
        dead_url()
    );
    let gw = gateway(
        &s,
        "no-fallback",
        &config(&primary.base_url, None, backup, &dead),
    )
    .await;
    let (p, b) = (primary.count(), backup.count());
    let what = format!("[{backend}] primary 503 without fallbacks");
    let r = chat(&gw.url, Some(key), &chat_body("gpt-4o", "Hello?")).await;
    assert_eq!(
        r.status, 503,
        "{what}: the primary's 503 is relayed as is: {r}"
    );
    assert_eq!(r.body, standin_error_body(503), "{what}");
    let (status, _, body) = chat_streamed(&gw.url, key, &streamed_body("gpt-4o", "Stream?")).await;
    assert_eq!(status, 503, "{what}, streamed:\n{body}");
    assert_eq!(primary.count(), p + 2, "{what}");

    let what = format!("[{backend}] unreachable target without fallbacks");
    let r = chat(&gw.url, Some(key), &chat_body("gpt-4o-mini", "Hello?")).await;
    assert_eq!(r.status, 502, "{what}: {r}");
    r.assert_error_shape(&what);
    assert_eq!(r.body["error"]["code"], "upstream_failed", "{what}: {r}");
    let (status, _, body) =
        chat_streamed(&gw.url, key, &streamed_body("gpt-4o-mini", "Stream?")).await;
    assert_eq!(status, 502, "{what}, streamed:\n{body}");

    assert_eq!(
        backup.count(),
        b,
        "[{backend}] without `fallbacks` the backup is never called"
    );
    let events = s.gateway_events("no-fallback", 4).await;
    assert_failed_at(&events[0], "dead", 502, &what);
    assert_failed_at(&events[1], "dead", 502, &what);
    assert_failed_at(
        &events[2],
        "primary",
        503,
        &format!("[{backend}] primary 503 without fallbacks"),
    );
    assert_failed_at(
        &events[3],
        "primary",
        503,
        &format!("[{backend}] primary 503 without fallbacks"),
    );
    assert_eq!(
        fallbacks_counted(&gw).await,
        0.0,
        "[{backend}] nothing was retried"
    );
}
