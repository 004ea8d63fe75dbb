//! Anthropic's Messages API through a real `kt gateway run` (`POST
//! /v1/messages`), on every available database backend: authentication,
//! forwarding to an Anthropic stand-in in the test process, relaying (streamed
//! and not), metering, policies, the built-in demo provider, and OpenAI-format
//! requests (`POST /v1/chat/completions`) for Anthropic-served models,
//! translated both ways (text, streams, tool calls, errors).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt as _;
use serde_json::{Value, json};
use store::testing::TestDatabase;

/// A model routed to the `anthropic` target (by its `claude-` family).
const CLAUDE: &str = "claude-sonnet-4-20250514";
/// A model listed by the `anthropic-v1` target (base_url ending in `/v1`).
const CLAUDE_V1: &str = "claude-3-5-haiku-20241022";
/// A Claude model outside the allowlist.
const CLAUDE_NOT_ALLOWED: &str = "claude-3-opus-20240229";
/// An email address the PII policy must catch.
const EMAIL: &str = "jane.doe@example.com";

/// PII blocked, a model allowlist, the Anthropic stand-in as `anthropic`
/// (base_url without `/v1`) and as `anthropic-v1` (with `/v1`, serving
/// [`CLAUDE_V1`] only), and the OpenAI stand-in as `openai`.
fn config(claude: &AnthropicStandIn, openai: &StandIn) -> String {
    let anthropic_base = &claude.base_url;
    let openai_base = &openai.base_url;
    format!(
        "policies:
  - name: pii-protection
    type: pii_detection
    action: block
    enabled: true
  - name: model-allowlist
    type: model_filter
    allowed_models: [{CLAUDE}, {CLAUDE_V1}, gpt-4o]
    enabled: true
providers:
  targets:
    - id: openai
      provider:
        base_url: {openai_base}
        secret_key_ref:
          env: {UPSTREAM_KEY_VAR}
    - id: anthropic
      provider:
        base_url: {anthropic_base}
        secret_key_ref:
          env: {ANTHROPIC_KEY_VAR}
    - id: anthropic-v1
      provider:
        kind: anthropic
        base_url: {anthropic_base}/v1
        models: [{CLAUDE_V1}]
        secret_key_ref:
          env: {ANTHROPIC_KEY_VAR}
"
    )
}

/// Everything but the built-in demo provider.
fn demo_config() -> String {
    format!(
        "policies:
  - name: pii-protection
    type: pii_detection
    action: block
    enabled: true
  - name: model-allowlist
    type: model_filter
    allowed_models: [{CLAUDE}, gpt-4o]
    enabled: true
providers:
  targets:
    - id: demo
      provider: {{kind: demo}}
"
    )
}

/// A stack, an Anthropic stand-in, a team with a gateway key and a gateway
/// running a config.
struct Setup {
    s: Stack,
    claude: AnthropicStandIn,
    gw: KtProcess,
    team_id: String,
    key_id: String,
    key: String,
}

impl Setup {
    /// A gateway on [`config`], or on `custom` when given.
    async fn start(db: &TestDatabase, custom: Option<String>) -> Setup {
        let s = start_stack(db).await;
        let claude = AnthropicStandIn::start().await;
        let team = s.admin.create_team("Engineering", "eng").await;
        let team_id = team["id"].as_str().unwrap().to_owned();
        let key = s
            .admin
            .create_token("eng-app", "gateway", Some(&team_id))
            .await;
        let text = custom.unwrap_or_else(|| config(&claude, &s.standin));
        let path = s.install.write_config("team-eng", &text);
        let gw = s
            .install
            .gateway_with_env(&path, &[], &[(ANTHROPIC_KEY_VAR, ANTHROPIC_KEY)])
            .await;
        Setup {
            claude,
            gw,
            team_id,
            key_id: key["id"].as_str().unwrap().to_owned(),
            key: key["token"].as_str().unwrap().to_owned(),
            s,
        }
    }

    fn team_query(&self) -> String {
        format!("team_id={}&limit=100", self.team_id)
    }

    /// Waits for the team's events until `n` exist, and returns them
    /// (newest first), asserting there are exactly `n`.
    async fn events(&self, n: usize, what: &str) -> Vec<Value> {
        let events = self
            .s
            .admin
            .wait_for_events(&self.team_query(), what, |evs| evs.len() >= n)
            .await;
        assert_eq!(
            events.len(),
            n,
            "[{}] {what}: expected {n} events (one per request), got:\n{}",
            self.s.backend,
            serde_json::to_string_pretty(&events).unwrap()
        );
        events
    }
}

/// How a caller presents its key.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    XApiKey(&'a str),
    Bearer(&'a str),
}

/// `POST {gateway}/v1/messages`, not yet sent.
fn messages_request(
    gateway: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::RequestBuilder {
    let mut rb = http_client()
        .post(format!("{gateway}/v1/messages"))
        .json(body);
    match auth {
        Auth::None => {}
        Auth::XApiKey(key) => rb = rb.header("x-api-key", key),
        Auth::Bearer(key) => rb = rb.bearer_auth(key),
    }
    for (name, value) in headers {
        rb = rb.header(*name, *value);
    }
    rb
}

/// `POST {gateway}/v1/messages`, read as a [`Reply`].
async fn messages(gateway: &str, auth: Auth<'_>, headers: &[(&str, &str)], body: &Value) -> Reply {
    Reply::read(
        messages_request(gateway, auth, headers, body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A minimal Anthropic Messages request.
fn messages_body(model: &str, text: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": text}]
    })
}

fn content_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts Anthropic's error shape
/// `{"type": "error", "error": {"type": TYPE, "code": CODE, "message": …}}`.
fn assert_anthropic_error(r: &Reply, error_type: &str, code: &str, what: &str) {
    assert_eq!(
        r.body["type"], "error",
        "{what}: an Anthropic client expects {{\"type\": \"error\", \"error\": {{…}}}}, got {r}"
    );
    assert_eq!(
        r.body["error"]["type"], error_type,
        "{what}: error.type in {r}"
    );
    assert_eq!(r.body["error"]["code"], code, "{what}: error.code in {r}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: error.message must say what went wrong: {r}"
    );
}

/// Asserts what the Anthropic stand-in received: the path, the provider key
/// in `x-api-key`, never the caller's key, and `anthropic-version`.
fn assert_forwarded(
    forwarded: &Recorded,
    caller_key: &str,
    anthropic_version: &str,
    backend: &str,
) {
    assert_eq!(
        forwarded.path, "/v1/messages",
        "[{backend}] the gateway must call POST {{base_url}}/v1/messages"
    );
    assert_eq!(
        forwarded.header("x-api-key"),
        Some(ANTHROPIC_KEY),
        "[{backend}] the gateway must send the provider key from ${ANTHROPIC_KEY_VAR} in x-api-key; \
         headers received: {:?}",
        forwarded.headers
    );
    for (name, value) in &forwarded.headers {
        let value = value.to_str().unwrap_or_default();
        assert!(
            !value.contains(caller_key),
            "[{backend}] the caller's gateway key leaked upstream in header `{name}`"
        );
        assert!(
            !value.contains(UPSTREAM_KEY),
            "[{backend}] the OpenAI target's key was sent to the Anthropic target in header `{name}`"
        );
    }
    assert_eq!(
        forwarded.header("anthropic-version"),
        Some(anthropic_version),
        "[{backend}] anthropic-version upstream; headers received: {:?}",
        forwarded.headers
    );
}

/// Asserts the forwarded body carries every field the client sent,
/// unchanged, and nothing else but possibly `stream`.
fn assert_body_forwarded(forwarded: &Value, sent: &Value, backend: &str) {
    let sent = sent.as_object().unwrap();
    for (field, value) in sent {
        assert_eq!(
            &forwarded[field], value,
            "[{backend}] field `{field}` must reach the provider unchanged; forwarded body: {forwarded}"
        );
    }
    let extra: Vec<&String> = forwarded
        .as_object()
        .unwrap_or_else(|| {
            panic!("[{backend}] the forwarded body is not a JSON object: {forwarded}")
        })
        .keys()
        .filter(|k| !sent.contains_key(*k) && k.as_str() != "stream")
        .collect();
    assert!(
        extra.is_empty(),
        "[{backend}] the gateway added fields {extra:?} the client did not send \
         (Anthropic refuses unknown fields): {forwarded}"
    );
}

fn assert_costs_something(e: &Value, what: &str) {
    assert!(
        e["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "{what}: a request with non-zero usage must cost more than $0: {e}"
    );
}

/// A streamed answer as the client received it.
struct Streamed {
    status: u16,
    content_type: String,
    /// Arrival time (since the request was sent) and bytes of each chunk.
    chunks: Vec<(Duration, Vec<u8>)>,
    text: String,
}

impl Streamed {
    async fn receive(rb: reqwest::RequestBuilder) -> Streamed {
        let started = Instant::now();
        let response = rb.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = content_type(response.headers());
        let mut chunks = Vec::new();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            chunks.push((started.elapsed(), chunk.unwrap().to_vec()));
        }
        let text = String::from_utf8(chunks.iter().flat_map(|(_, c)| c.clone()).collect())
            .expect("a streamed answer must be UTF-8");
        Streamed {
            status,
            content_type,
            chunks,
            text,
        }
    }

    fn spread(&self) -> Duration {
        match (self.chunks.first(), self.chunks.last()) {
            (Some(first), Some(last)) => last.0 - first.0,
            _ => Duration::ZERO,
        }
    }
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_requests_are_forwarded_relayed_and_metered() {
    for db in store::testing::backends().await {
        forwarded_relayed_and_metered(&db).await;
        db.cleanup().await;
    }
}

async fn forwarded_relayed_and_metered(db: &TestDatabase) {
    let t = Setup::start(db, None).await;
    let backend = t.s.backend;

    // x-api-key, with the client's anthropic-version and anthropic-beta.
    let beta = "prompt-caching-2024-07-31,output-128k-2025-02-19";
    let sent = json!({
        "model": CLAUDE,
        "max_tokens": 512,
        "system": "You are terse.",
        "temperature": 0.2,
        "metadata": {"user_id": "caller-42"},
        "messages": [
            {"role": "user", "content": "Say hello"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hi."}]},
            {"role": "user", "content": [{"type": "text", "text": "Again, please"}]}
        ]
    });
    let r = messages(
        &t.gw.url,
        Auth::XApiKey(&t.key),
        &[
            ("anthropic-version", "2023-01-01"),
            ("anthropic-beta", beta),
        ],
        &sent,
    )
    .await;
    assert_eq!(
        r.status, 200,
        "[{backend}] POST /v1/messages with x-api-key: {r}"
    );
    assert_eq!(
        r.body,
        anthropic_message(CLAUDE),
        "[{backend}] the provider's answer must reach the caller unchanged"
    );
    let ct = content_type(&r.headers);
    assert!(
        ct.starts_with("application/json"),
        "[{backend}] a non-streamed answer must be application/json, got `{ct}`"
    );
    assert_eq!(
        t.s.standin.count(),
        0,
        "[{backend}] a claude-* model must not go to the OpenAI target"
    );
    let seen = t.claude.requests();
    assert_eq!(
        seen.len(),
        1,
        "[{backend}] the Anthropic stand-in must receive exactly one request: {seen:?}"
    );
    assert_forwarded(&seen[0], &t.key, "2023-01-01", backend);
    assert_eq!(
        seen[0].header("anthropic-beta"),
        Some(beta),
        "[{backend}] anthropic-beta must be passed through; headers: {:?}",
        seen[0].headers
    );
    assert_body_forwarded(&seen[0].body, &sent, backend);

    let events = t.events(1, "the non-streamed request's event").await;
    let e = &events[0];
    assert_eq!(e["team_id"], t.team_id.as_str(), "event team: {e}");
    assert_eq!(e["token_id"], t.key_id.as_str(), "event key: {e}");
    assert_eq!(e["model"], CLAUDE, "event model: {e}");
    assert_eq!(e["provider_target"], "anthropic", "event target: {e}");
    assert_eq!(e["provider_kind"], "anthropic", "event provider kind: {e}");
    assert_eq!(e["verdict"], "allow", "event verdict: {e}");
    assert_eq!(e["streamed"], false, "event streamed: {e}");
    assert_eq!(e["demo"], false, "event demo: {e}");
    assert_eq!(e["upstream_status"], 200, "event upstream status: {e}");
    assert_eq!(
        e["input_tokens"], ANTHROPIC_INPUT_TOKENS,
        "input tokens must come from the answer's usage.input_tokens: {e}"
    );
    assert_eq!(
        e["output_tokens"], ANTHROPIC_OUTPUT_TOKENS,
        "output tokens must come from the answer's usage.output_tokens: {e}"
    );
    assert_costs_something(e, "a non-streamed Anthropic request");

    // Authorization: Bearer, no anthropic-version, and a target whose
    // base_url ends in /v1.
    let sent = messages_body(CLAUDE_V1, "Hello through the /v1 base_url");
    let r = messages(&t.gw.url, Auth::Bearer(&t.key), &[], &sent).await;
    assert_eq!(
        r.status, 200,
        "[{backend}] POST /v1/messages with Authorization: Bearer, to a target whose base_url ends in /v1: {r}"
    );
    assert_eq!(
        r.body,
        anthropic_message(CLAUDE_V1),
        "[{backend}] the provider's answer must reach the caller unchanged"
    );
    let seen = t.claude.requests();
    assert_eq!(
        seen.len(),
        2,
        "[{backend}] two requests upstream now: {seen:?}"
    );
    assert_forwarded(&seen[1], &t.key, "2023-06-01", backend);
    assert_body_forwarded(&seen[1].body, &sent, backend);

    let events = t.events(2, "the Bearer request's event").await;
    let e = &events[0];
    assert_eq!(e["model"], CLAUDE_V1, "newest event first: {events:?}");
    assert_eq!(e["provider_target"], "anthropic-v1", "event target: {e}");
    assert_eq!(e["provider_kind"], "anthropic", "event provider kind: {e}");
    assert_eq!(e["token_id"], t.key_id.as_str(), "event key: {e}");
    assert_eq!(e["input_tokens"], ANTHROPIC_INPUT_TOKENS, "{e}");
    assert_eq!(e["output_tokens"], ANTHROPIC_OUTPUT_TOKENS, "{e}");
    assert_costs_something(e, "a non-streamed Anthropic request");

    // The provider key never shows in the logs.
    for (label, logs) in [("gateway", t.gw.stderr()), ("serve", t.s.serve.stderr())] {
        for (what, secret) in [
            ("the gateway key", t.key.as_str()),
            ("the Anthropic key", ANTHROPIC_KEY),
        ] {
            assert!(
                !logs.contains(secret),
                "[{backend}] {what} appears in the {label} logs:\n{logs}"
            );
        }
    }
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_streams_are_relayed_event_by_event_and_metered() {
    for db in store::testing::backends().await {
        streamed(&db).await;
        db.cleanup().await;
    }
}

async fn streamed(db: &TestDatabase) {
    let t = Setup::start(db, None).await;
    let backend = t.s.backend;
    let mut sent = messages_body(CLAUDE, "Stream hello");
    sent["stream"] = json!(true);
    let got = Streamed::receive(messages_request(
        &t.gw.url,
        Auth::XApiKey(&t.key),
        &[("anthropic-version", "2023-06-01")],
        &sent,
    ))
    .await;
    eprintln!(
        "[{backend}] streamed answer: {} chunks over {:?}",
        got.chunks.len(),
        got.spread()
    );
    assert_eq!(
        got.status, 200,
        "[{backend}] streamed POST /v1/messages:\n{}",
        got.text
    );
    assert!(
        got.content_type.starts_with("text/event-stream"),
        "[{backend}] a streamed answer must be text/event-stream, got `{}`",
        got.content_type
    );

    let seen = t.claude.requests();
    assert_eq!(seen.len(), 1, "[{backend}] one request upstream: {seen:?}");
    assert_forwarded(&seen[0], &t.key, "2023-06-01", backend);
    assert_eq!(
        seen[0].body["stream"], true,
        "[{backend}] the request must be forwarded as a stream: {}",
        seen[0].body
    );
    assert_body_forwarded(&seen[0].body, &sent, backend);

    // Chunk by chunk, not buffered.
    assert!(
        got.chunks.len() > 1,
        "[{backend}] the streamed answer arrived in {} chunk(s); it must be relayed chunk by chunk:\n{}",
        got.chunks.len(),
        got.text
    );
    assert!(
        got.spread() >= STREAM_FRAME_DELAY * 3,
        "[{backend}] the first chunk arrived only {:?} before the last: the gateway buffered the stream \
         (the stand-in spreads it over about {:?})",
        got.spread(),
        STREAM_FRAME_DELAY * (anthropic_stream_events(CLAUDE).len() as u32)
    );
    // Every event, in order, unchanged.
    let received = sse_events(&got.text);
    assert_eq!(
        received,
        anthropic_stream_events(CLAUDE),
        "[{backend}] the client must receive the provider's events unchanged, in order:\n{}",
        got.text
    );
    assert_eq!(
        received.last().map(|(name, _)| name.as_str()),
        Some("message_stop"),
        "[{backend}] the last event must be message_stop:\n{}",
        got.text
    );
    assert_eq!(
        anthropic_sse_text(&got.text),
        ANTHROPIC_STREAM_PIECES.concat(),
        "[{backend}] the streamed text:\n{}",
        got.text
    );

    let events = t.events(1, "the streamed request's event").await;
    let e = &events[0];
    assert_eq!(e["streamed"], true, "event streamed: {e}");
    assert_eq!(e["model"], CLAUDE, "event model: {e}");
    assert_eq!(e["provider_target"], "anthropic", "event target: {e}");
    assert_eq!(e["provider_kind"], "anthropic", "event provider kind: {e}");
    assert_eq!(e["verdict"], "allow", "event verdict: {e}");
    assert_eq!(e["demo"], false, "event demo: {e}");
    assert_eq!(
        e["input_tokens"], ANTHROPIC_STREAM_INPUT_TOKENS,
        "[{backend}] streamed input tokens must come from message_start's message.usage.input_tokens: {e}"
    );
    assert_eq!(
        e["output_tokens"], ANTHROPIC_STREAM_OUTPUT_TOKENS,
        "[{backend}] streamed output tokens must come from message_delta's usage.output_tokens \
         (message_start says 1): {e}"
    );
    assert_costs_something(e, "a streamed Anthropic request");
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_callers_without_a_valid_key_get_an_anthropic_401() {
    for db in store::testing::backends().await {
        unauthenticated(&db).await;
        db.cleanup().await;
    }
}

async fn unauthenticated(db: &TestDatabase) {
    let t = Setup::start(db, None).await;
    let backend = t.s.backend;
    let body = messages_body(CLAUDE, "hi");
    let bogus = "kt_gk_0000000000000000000000000000000000000000";
    let cases = [
        ("no key", Auth::None),
        ("an unknown kt_gk_ key in x-api-key", Auth::XApiKey(bogus)),
        (
            "an Anthropic key in x-api-key",
            Auth::XApiKey("sk-ant-api03-not-a-kt-key"),
        ),
        ("an unknown kt_gk_ key as Bearer", Auth::Bearer(bogus)),
    ];
    for (what, auth) in cases {
        let r = messages(&t.gw.url, auth, &[], &body).await;
        assert_eq!(r.status, 401, "[{backend}] /v1/messages with {what}: {r}");
        assert_anthropic_error(
            &r,
            "authentication_error",
            "invalid_api_key",
            &format!("[{backend}] /v1/messages with {what}"),
        );
    }
    // Streamed requests too, and before any stream starts.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = messages(&t.gw.url, Auth::XApiKey(bogus), &[], &streamed).await;
    assert_eq!(r.status, 401, "[{backend}] streamed, unknown key: {r}");
    assert_anthropic_error(
        &r,
        "authentication_error",
        "invalid_api_key",
        &format!("[{backend}] streamed /v1/messages with an unknown key"),
    );
    assert_eq!(
        t.claude.count(),
        0,
        "[{backend}] unauthenticated requests must not reach the provider"
    );
    assert_eq!(t.s.standin.count(), 0);

    // The same request with the team's key goes through (so the 401s above
    // are about the key).
    let r = messages(&t.gw.url, Auth::XApiKey(&t.key), &[], &body).await;
    assert_eq!(r.status, 200, "[{backend}] the valid key: {r}");
    assert_eq!(t.claude.count(), 1);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn policies_apply_to_anthropic_requests() {
    for db in store::testing::backends().await {
        policies(&db).await;
        db.cleanup().await;
    }
}

async fn policies(db: &TestDatabase) {
    let t = Setup::start(db, None).await;
    let backend = t.s.backend;
    let mention = format!("Please forward the report to {EMAIL} today");
    let with = |extra: Value| {
        let mut body = messages_body(CLAUDE, "Summarise the report");
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let pii_cases = [
        (
            "an email in the top-level `system` string",
            with(json!({"system": format!("You assist the team. {mention}")})),
        ),
        (
            "an email in `system` text blocks",
            with(json!({"system": [
                {"type": "text", "text": "You assist the team."},
                {"type": "text", "text": mention}
            ]})),
        ),
        (
            "an email in a message's text blocks",
            with(json!({"messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Here is the report."},
                    {"type": "text", "text": mention}
                ]}
            ]})),
        ),
        (
            "an email in an earlier turn's text blocks",
            with(json!({"messages": [
                {"role": "user", "content": [{"type": "text", "text": mention}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
                {"role": "user", "content": "Thanks"}
            ]})),
        ),
        (
            "an email in `system` of a streamed request",
            with(json!({"stream": true, "system": mention})),
        ),
    ];
    for (what, body) in &pii_cases {
        let r = messages(&t.gw.url, Auth::XApiKey(&t.key), &[], body).await;
        assert_eq!(r.status, 409, "[{backend}] {what} must be blocked: {r}");
        assert_anthropic_error(&r, "policy_violation", "input_blocked", what);
        assert_eq!(r.body["error"]["policy"], "pii-protection", "{what}: {r}");
        assert!(
            !serde_json::to_string(&r.body).unwrap().contains(EMAIL),
            "[{backend}] {what}: the refusal must not echo the PII value: {r}"
        );
        assert_eq!(
            t.claude.count(),
            0,
            "[{backend}] {what}: a blocked request must not reach the provider"
        );
    }

    let r = messages(
        &t.gw.url,
        Auth::XApiKey(&t.key),
        &[],
        &messages_body(CLAUDE_NOT_ALLOWED, "hi"),
    )
    .await;
    assert_eq!(
        r.status, 409,
        "[{backend}] a model outside the allowlist must be blocked: {r}"
    );
    assert_anthropic_error(&r, "policy_violation", "input_blocked", "blocked model");
    assert_eq!(r.body["error"]["policy"], "model-allowlist", "{r}");
    assert_eq!(
        t.claude.count(),
        0,
        "[{backend}] a request for a model outside the allowlist must not reach the provider"
    );

    // A clean request on the same gateway goes through (the blocks above are
    // the policies' doing).
    let clean = with(json!({"system": [{"type": "text", "text": "You assist the team."}]}));
    let r = messages(&t.gw.url, Auth::XApiKey(&t.key), &[], &clean).await;
    assert_eq!(r.status, 200, "[{backend}] a clean request: {r}");
    assert_eq!(
        t.claude.count(),
        1,
        "[{backend}] the clean request upstream"
    );
    assert_eq!(t.s.standin.count(), 0);

    // One event per request; the blocks name their policy; no PII stored.
    let n = pii_cases.len() + 2;
    let events = t.events(n, "the policy test's events").await;
    let blocks: Vec<&Value> = events.iter().filter(|e| e["verdict"] == "block").collect();
    assert_eq!(
        blocks.len(),
        n - 1,
        "[{backend}] every refused request is a `block` event: {events:?}"
    );
    assert_eq!(
        blocks
            .iter()
            .filter(|e| e["policy"] == "pii-protection")
            .count(),
        pii_cases.len(),
        "[{backend}] PII blocks name pii-protection: {events:?}"
    );
    assert!(
        blocks
            .iter()
            .any(|e| e["policy"] == "model-allowlist" && e["model"] == CLAUDE_NOT_ALLOWED),
        "[{backend}] the model block names model-allowlist: {events:?}"
    );
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains(EMAIL),
        "[{backend}] the PII value must never be stored in events: {all}"
    );
    let logs = t.gw.stderr();
    assert!(
        !logs.contains(EMAIL),
        "[{backend}] the PII value appears in the gateway logs:\n{logs}"
    );
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn demo_provider_answers_in_anthropic_format() {
    for db in store::testing::backends().await {
        demo(&db).await;
        db.cleanup().await;
    }
}

async fn demo(db: &TestDatabase) {
    let t = Setup::start(db, Some(demo_config())).await;
    let backend = t.s.backend;

    // Non-streamed.
    let r = messages(
        &t.gw.url,
        Auth::XApiKey(&t.key),
        &[],
        &json!({
            "model": CLAUDE,
            "max_tokens": 256,
            "system": "You are a helpful assistant.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
        }),
    )
    .await;
    assert_eq!(r.status, 200, "[{backend}] demo /v1/messages: {r}");
    let b = &r.body;
    assert_eq!(
        b["type"], "message",
        "[{backend}] Anthropic answer type: {r}"
    );
    assert_eq!(b["role"], "assistant", "[{backend}] {r}");
    assert!(
        b["id"].as_str().is_some_and(|s| !s.is_empty()),
        "[{backend}] answer id: {r}"
    );
    assert!(
        b["model"].as_str().is_some_and(|s| !s.is_empty()),
        "[{backend}] answer model: {r}"
    );
    assert!(b["stop_reason"].is_string(), "[{backend}] stop_reason: {r}");
    assert_eq!(b["content"][0]["type"], "text", "[{backend}] content: {r}");
    assert!(
        b["content"][0]["text"]
            .as_str()
            .is_some_and(|s| !s.trim().is_empty()),
        "[{backend}] the demo answer must say something: {r}"
    );
    assert!(
        b.get("choices").is_none(),
        "[{backend}] /v1/messages must not answer in OpenAI's format: {r}"
    );
    let input = b["usage"]["input_tokens"].as_i64().unwrap_or(0);
    let output = b["usage"]["output_tokens"].as_i64().unwrap_or(0);
    assert!(
        input > 0 && output > 0,
        "[{backend}] the demo answer needs non-zero usage.input_tokens and usage.output_tokens: {r}"
    );

    let events = t.events(1, "the demo request's event").await;
    let e = &events[0];
    assert_eq!(
        e["demo"], true,
        "[{backend}] demo traffic is labelled demo: {e}"
    );
    assert_eq!(e["streamed"], false, "{e}");
    assert_eq!(e["verdict"], "allow", "{e}");
    assert_eq!(e["model"], CLAUDE, "{e}");
    assert_eq!(
        e["input_tokens"], input,
        "[{backend}] the event's input tokens must be the answer's: {e}"
    );
    assert_eq!(
        e["output_tokens"], output,
        "[{backend}] the event's output tokens must be the answer's: {e}"
    );
    assert_costs_something(e, "a demo request");

    // Streamed.
    let got = Streamed::receive(messages_request(
        &t.gw.url,
        Auth::XApiKey(&t.key),
        &[],
        &json!({
            "model": CLAUDE,
            "max_tokens": 256,
            "stream": true,
            "messages": [{"role": "user", "content": "Stream hello"}]
        }),
    ))
    .await;
    eprintln!(
        "[{backend}] demo stream: {} chunks over {:?}",
        got.chunks.len(),
        got.spread()
    );
    assert_eq!(got.status, 200, "[{backend}] demo stream:\n{}", got.text);
    assert!(
        got.content_type.starts_with("text/event-stream"),
        "[{backend}] demo stream content type `{}`",
        got.content_type
    );
    assert!(
        got.chunks.len() > 1,
        "[{backend}] the demo stream arrived in {} chunk(s):\n{}",
        got.chunks.len(),
        got.text
    );
    let events = sse_events(&got.text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    for (name, data) in &events {
        assert_eq!(
            data["type"],
            name.as_str(),
            "[{backend}] each event's name must match its data.type:\n{}",
            got.text
        );
    }
    assert_eq!(
        names.first(),
        Some(&"message_start"),
        "[{backend}] events: {names:?}"
    );
    assert_eq!(
        names.last(),
        Some(&"message_stop"),
        "[{backend}] events: {names:?}"
    );
    for needed in [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
    ] {
        assert!(
            names.contains(&needed),
            "[{backend}] the demo stream lacks `{needed}`: {names:?}"
        );
    }
    assert!(
        !anthropic_sse_text(&got.text).trim().is_empty(),
        "[{backend}] the demo stream's text_deltas must say something:\n{}",
        got.text
    );
    let stream_input = events[0].1["message"]["usage"]["input_tokens"]
        .as_i64()
        .unwrap_or(0);
    let stream_output = events
        .iter()
        .rev()
        .find(|(n, _)| n == "message_delta")
        .and_then(|(_, d)| d["usage"]["output_tokens"].as_i64())
        .unwrap_or(0);
    assert!(
        stream_input > 0 && stream_output > 0,
        "[{backend}] the demo stream needs message_start.message.usage.input_tokens and \
         message_delta.usage.output_tokens above 0:\n{}",
        got.text
    );

    let events = t.events(2, "the demo stream's event").await;
    let e = &events[0];
    assert_eq!(e["streamed"], true, "newest first: {events:?}");
    assert_eq!(
        e["demo"], true,
        "[{backend}] demo traffic is labelled demo: {e}"
    );
    assert_eq!(e["input_tokens"], stream_input, "[{backend}] {e}");
    assert_eq!(e["output_tokens"], stream_output, "[{backend}] {e}");
    assert_costs_something(e, "a streamed demo request");
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn openai_format_requests_for_claude_are_translated() {
    for db in store::testing::backends().await {
        translated(&db).await;
        db.cleanup().await;
    }
}

/// `POST {gateway}/v1/chat/completions` with the key as bearer, not yet sent.
fn chat_request(gateway: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
    http_client()
        .post(format!("{gateway}/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
}

/// The `data:` payloads of an OpenAI SSE body, in order (`[DONE]` included
/// as is).
fn data_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.trim().to_owned())
        .collect()
}

/// The chunks of an OpenAI SSE body, asserting what every OpenAI SDK relies
/// on: exactly one `data: [DONE]`, last, and every other `data:` a
/// `chat.completion.chunk` of `model`.
fn openai_chunks(body: &str, model: &str, what: &str) -> Vec<Value> {
    let data = data_lines(body);
    let done = data.iter().filter(|d| *d == "[DONE]").count();
    assert_eq!(
        done, 1,
        "{what}: the stream must end with exactly one `data: [DONE]`:\n{body}"
    );
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{what}: `data: [DONE]` must be the last event:\n{body}"
    );
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| {
            serde_json::from_str(d)
                .unwrap_or_else(|e| panic!("{what}: `data: {d}` is not JSON ({e}) in:\n{body}"))
        })
        .collect();
    assert!(
        !chunks.is_empty(),
        "{what}: no chunk before [DONE]:\n{body}"
    );
    for c in &chunks {
        assert_eq!(
            c["object"], "chat.completion.chunk",
            "{what}: every event must be a chat.completion.chunk, got {c} in:\n{body}"
        );
        assert_eq!(c["model"], model, "{what}: chunk model in {c}");
        assert!(
            c["id"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: chunk id in {c}"
        );
        assert!(
            c.get("error").is_none(),
            "{what}: the stream carries an error:\n{body}"
        );
    }
    let ids: std::collections::BTreeSet<&str> =
        chunks.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        1,
        "{what}: all chunks of one answer share one id:\n{body}"
    );
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "{what}: the first chunk's delta says role assistant:\n{body}"
    );
    chunks
}

/// The `finish_reason`s of the chunks that have one.
fn finish_reasons(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_owned))
        .collect()
}

/// The tool calls of a stream, reassembled from their deltas the way OpenAI
/// SDKs do (by `index`: the first id, type and name, the arguments
/// concatenated).
fn reassembled_tool_calls(chunks: &[Value]) -> Vec<Value> {
    let mut calls: Vec<Value> = Vec::new();
    for c in chunks {
        let Some(deltas) = c["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        for d in deltas {
            let index =
                usize::try_from(d["index"].as_u64().expect("tool call delta index")).unwrap();
            while calls.len() <= index {
                calls.push(json!({"id": null, "type": null,
                                  "function": {"name": null, "arguments": ""}}));
            }
            let call = &mut calls[index];
            for field in ["id", "type"] {
                if call[field].is_null() && d[field].is_string() {
                    call[field] = d[field].clone();
                }
            }
            if call["function"]["name"].is_null() && d["function"]["name"].is_string() {
                call["function"]["name"] = d["function"]["name"].clone();
            }
            if let Some(piece) = d["function"]["arguments"].as_str() {
                let so_far = call["function"]["arguments"].as_str().unwrap().to_owned();
                call["function"]["arguments"] = json!(so_far + piece);
            }
        }
    }
    calls
}

/// The tool of the tool-call requests, in OpenAI's format.
fn weather_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather forecast for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer"},
                    "hourly": {"type": "boolean"}
                },
                "required": ["city"]
            }
        }
    })
}

/// The text of an Anthropic message's content: a string, or its text blocks
/// joined.
fn anthropic_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

/// Asserts that a forwarded body is a Messages request Anthropic accepts:
/// the model, a positive `max_tokens`, alternating `user`/`assistant`
/// messages starting with `user`, and none of OpenAI's own fields.
fn assert_valid_messages_request(body: &Value, model: &str, what: &str) {
    assert_eq!(body["model"], model, "{what}: model upstream: {body}");
    assert!(
        body["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "{what}: Anthropic requires a positive max_tokens: {body}"
    );
    let messages = body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no messages upstream: {body}"));
    assert!(!messages.is_empty(), "{what}: no messages upstream: {body}");
    for (i, m) in messages.iter().enumerate() {
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        assert_eq!(
            m["role"], expected,
            "{what}: Anthropic needs alternating user/assistant turns starting with user: {body}"
        );
    }
    for openai_only in [
        "n",
        "stream_options",
        "max_completion_tokens",
        "parallel_tool_calls",
        "response_format",
        "user",
    ] {
        assert!(
            body.get(openai_only).is_none(),
            "{what}: OpenAI's `{openai_only}` was sent to Anthropic (it refuses unknown fields): {body}"
        );
    }
}

async fn translated(db: &TestDatabase) {
    let t = Setup::start(db, None).await;
    let backend = t.s.backend;
    let mut n_events = 0;

    // ---- Non-streamed text.
    let sent = json!({
        "model": CLAUDE,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello"}
        ],
        "max_completion_tokens": 300,
        "temperature": 0.2,
        "n": 1,
        "user": "caller-42"
    });
    let r = chat(&t.gw.url, Some(&t.key), &sent).await;
    assert_eq!(
        r.status, 200,
        "[{backend}] OpenAI-format request for {CLAUDE}: {r}"
    );
    let ct = content_type(&r.headers);
    assert!(
        ct.starts_with("application/json"),
        "[{backend}] content type `{ct}`"
    );
    let b = &r.body;
    assert_eq!(
        b["object"], "chat.completion",
        "[{backend}] an OpenAI caller expects a chat.completion: {r}"
    );
    assert!(
        b["id"].as_str().is_some_and(|s| !s.is_empty()),
        "[{backend}] id: {r}"
    );
    assert!(b["created"].is_u64(), "[{backend}] created: {r}");
    assert_eq!(b["model"], CLAUDE, "[{backend}] model: {r}");
    assert!(
        b.get("type").is_none() && b.get("content").is_none(),
        "[{backend}] the answer must not be in Anthropic's format: {r}"
    );
    let choice = &b["choices"][0];
    assert_eq!(
        b["choices"].as_array().map(Vec::len),
        Some(1),
        "[{backend}] {r}"
    );
    assert_eq!(choice["index"], 0, "[{backend}] {r}");
    assert_eq!(choice["message"]["role"], "assistant", "[{backend}] {r}");
    assert_eq!(
        choice["message"]["content"], ANTHROPIC_CONTENT,
        "[{backend}] the Anthropic answer's text: {r}"
    );
    assert!(
        choice["message"]
            .get("tool_calls")
            .is_none_or(Value::is_null),
        "[{backend}] no tool calls in a text answer: {r}"
    );
    assert_eq!(
        choice["finish_reason"], "stop",
        "[{backend}] end_turn is finish_reason stop: {r}"
    );
    assert_eq!(
        b["usage"]["prompt_tokens"], ANTHROPIC_INPUT_TOKENS,
        "[{backend}] {r}"
    );
    assert_eq!(
        b["usage"]["completion_tokens"], ANTHROPIC_OUTPUT_TOKENS,
        "[{backend}] {r}"
    );
    assert_eq!(
        b["usage"]["total_tokens"],
        ANTHROPIC_INPUT_TOKENS + ANTHROPIC_OUTPUT_TOKENS,
        "[{backend}] {r}"
    );
    assert_eq!(
        t.s.standin.count(),
        0,
        "[{backend}] a claude-* model must not go to the OpenAI target"
    );
    let seen = t.claude.requests();
    assert_eq!(seen.len(), 1, "[{backend}] one request upstream: {seen:?}");
    assert_forwarded(&seen[0], &t.key, "2023-06-01", backend);
    assert!(
        seen[0].header("authorization").is_none(),
        "[{backend}] Anthropic authenticates with x-api-key; no Authorization header upstream: {:?}",
        seen[0].headers
    );
    let up = &seen[0].body;
    assert_valid_messages_request(up, CLAUDE, &format!("[{backend}] non-streamed"));
    assert_eq!(
        up["system"], "You are terse.",
        "[{backend}] the system message must become Anthropic's top-level `system`: {up}"
    );
    assert_eq!(
        up["max_tokens"], 300,
        "[{backend}] max_completion_tokens becomes max_tokens: {up}"
    );
    assert_eq!(up["temperature"], 0.2, "[{backend}] temperature: {up}");
    assert_eq!(
        up["metadata"]["user_id"], "caller-42",
        "[{backend}] `user` becomes metadata.user_id: {up}"
    );
    let messages = up["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        1,
        "[{backend}] only the user turn (the system message left `messages`): {up}"
    );
    assert_eq!(anthropic_text(&messages[0]["content"]), "Say hello", "{up}");
    assert!(
        up["stream"].is_null() || up["stream"] == false,
        "[{backend}] a non-streamed request upstream: {up}"
    );

    n_events += 1;
    let events = t.events(n_events, "the translated request's event").await;
    let e = &events[0];
    assert_eq!(e["model"], CLAUDE, "event model: {e}");
    assert_eq!(e["provider_target"], "anthropic", "event target: {e}");
    assert_eq!(e["provider_kind"], "anthropic", "event provider kind: {e}");
    assert_eq!(e["verdict"], "allow", "event verdict: {e}");
    assert_eq!(e["streamed"], false, "event streamed: {e}");
    assert_eq!(e["upstream_status"], 200, "event upstream status: {e}");
    assert_eq!(e["input_tokens"], ANTHROPIC_INPUT_TOKENS, "{e}");
    assert_eq!(e["output_tokens"], ANTHROPIC_OUTPUT_TOKENS, "{e}");
    assert_costs_something(e, "a translated request");

    // ---- Streamed text, without and with stream_options.include_usage.
    for include_usage in [false, true] {
        let what = format!("[{backend}] streamed (include_usage: {include_usage})");
        let mut sent = chat_body(CLAUDE, "Stream hello");
        sent["stream"] = json!(true);
        if include_usage {
            sent["stream_options"] = json!({"include_usage": true});
        }
        let before = t.claude.count();
        let got = Streamed::receive(chat_request(&t.gw.url, &t.key, &sent)).await;
        eprintln!(
            "{what}: {} chunks over {:?}",
            got.chunks.len(),
            got.spread()
        );
        assert_eq!(got.status, 200, "{what}:\n{}", got.text);
        assert!(
            got.content_type.starts_with("text/event-stream"),
            "{what}: content type `{}`",
            got.content_type
        );
        assert!(
            got.chunks.len() > 1 && got.spread() >= STREAM_FRAME_DELAY * 3,
            "{what}: the stream arrived in {} chunk(s) within {:?}: it must be relayed as it comes, not buffered:\n{}",
            got.chunks.len(),
            got.spread(),
            got.text
        );
        let chunks = openai_chunks(&got.text, CLAUDE, &what);
        assert_eq!(
            sse_content(&got.text),
            ANTHROPIC_STREAM_PIECES.concat(),
            "{what}: the concatenated delta.content:\n{}",
            got.text
        );
        assert_eq!(
            finish_reasons(&chunks),
            ["stop"],
            "{what}: exactly one finish_reason, stop:\n{}",
            got.text
        );
        assert!(
            reassembled_tool_calls(&chunks).is_empty(),
            "{what}: no tool calls:\n{}",
            got.text
        );
        let with_usage: Vec<&Value> = chunks.iter().filter(|c| !c["usage"].is_null()).collect();
        let usage_only = chunks
            .iter()
            .filter(|c| c["choices"].as_array().is_some_and(Vec::is_empty))
            .count();
        if include_usage {
            assert_eq!(
                with_usage.len(),
                1,
                "{what}: exactly one chunk with usage:\n{}",
                got.text
            );
            let last = chunks.last().unwrap();
            assert!(
                last["choices"].as_array().is_some_and(Vec::is_empty),
                "{what}: the usage chunk (choices: []) comes last before [DONE]:\n{}",
                got.text
            );
            assert_eq!(
                last["usage"]["prompt_tokens"], ANTHROPIC_STREAM_INPUT_TOKENS,
                "{what}: {last}"
            );
            assert_eq!(
                last["usage"]["completion_tokens"], ANTHROPIC_STREAM_OUTPUT_TOKENS,
                "{what}: completion tokens come from message_delta (message_start says 1): {last}"
            );
            assert_eq!(
                last["usage"]["total_tokens"],
                ANTHROPIC_STREAM_INPUT_TOKENS + ANTHROPIC_STREAM_OUTPUT_TOKENS,
                "{what}: {last}"
            );
        } else {
            assert!(
                with_usage.is_empty() && usage_only == 0,
                "{what}: the caller did not ask for usage, so no chunk may carry it:\n{}",
                got.text
            );
        }

        let seen = t.claude.requests();
        assert_eq!(seen.len(), before + 1, "{what}: one request upstream");
        let up = &seen[before];
        assert_forwarded(up, &t.key, "2023-06-01", backend);
        assert_valid_messages_request(&up.body, CLAUDE, &what);
        assert_eq!(
            up.body["stream"], true,
            "{what}: streamed upstream: {}",
            up.body
        );

        n_events += 1;
        let events = t.events(n_events, "the translated stream's event").await;
        let e = &events[0];
        assert_eq!(e["streamed"], true, "{what}: newest first: {events:?}");
        assert_eq!(e["model"], CLAUDE, "{what}: {e}");
        assert_eq!(e["provider_target"], "anthropic", "{what}: {e}");
        assert_eq!(e["verdict"], "allow", "{what}: {e}");
        assert_eq!(
            e["input_tokens"], ANTHROPIC_STREAM_INPUT_TOKENS,
            "{what}: the stream must be metered: {e}"
        );
        assert_eq!(
            e["output_tokens"], ANTHROPIC_STREAM_OUTPUT_TOKENS,
            "{what}: the stream must be metered: {e}"
        );
        assert!(
            e["reason"].is_null(),
            "{what}: the usage was reported, not estimated: {e}"
        );
        assert_costs_something(e, &what);
    }

    // ---- Tool calls, non-streamed.
    let question = "What will the weather be in Paris?";
    let with_tools = json!({
        "model": CLAUDE,
        "messages": [{"role": "user", "content": question}],
        "tools": [weather_tool()],
        "tool_choice": "auto"
    });
    let before = t.claude.count();
    let r = chat(&t.gw.url, Some(&t.key), &with_tools).await;
    let what = format!("[{backend}] tool call");
    assert_eq!(r.status, 200, "{what}: {r}");
    let choice = &r.body["choices"][0];
    assert_eq!(
        choice["finish_reason"], "tool_calls",
        "{what}: stop_reason tool_use is finish_reason tool_calls: {r}"
    );
    assert_eq!(
        choice["message"]["content"], ANTHROPIC_TOOL_TEXT,
        "{what}: the text before the tool call: {r}"
    );
    let calls = choice["message"]["tool_calls"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no message.tool_calls in {r}"));
    assert_eq!(calls.len(), 1, "{what}: {r}");
    let call = calls[0].clone();
    assert_eq!(
        call["id"], ANTHROPIC_TOOL_USE_ID,
        "{what}: tool call id: {r}"
    );
    assert_eq!(call["type"], "function", "{what}: {r}");
    assert_eq!(call["function"]["name"], "get_weather", "{what}: {r}");
    let arguments = call["function"]["arguments"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: function.arguments must be a JSON string: {r}"));
    assert_eq!(
        serde_json::from_str::<Value>(arguments).ok(),
        Some(anthropic_tool_input()),
        "{what}: the arguments must parse to the tool_use input: {r}"
    );
    assert_eq!(r.body["usage"]["prompt_tokens"], ANTHROPIC_INPUT_TOKENS);
    let seen = t.claude.requests();
    assert_eq!(seen.len(), before + 1);
    let up = &seen[before].body;
    assert_valid_messages_request(up, CLAUDE, &what);
    assert_eq!(
        up["tools"],
        json!([{
            "name": "get_weather",
            "description": "The weather forecast for a city.",
            "input_schema": weather_tool()["function"]["parameters"]
        }]),
        "{what}: tools in Anthropic's format: {up}"
    );
    assert_eq!(
        up["tool_choice"],
        json!({"type": "auto"}),
        "{what}: tool_choice: {up}"
    );
    n_events += 1;
    let events = t.events(n_events, "the tool call's event").await;
    assert_eq!(events[0]["input_tokens"], ANTHROPIC_INPUT_TOKENS, "{what}");
    assert_eq!(
        events[0]["output_tokens"], ANTHROPIC_OUTPUT_TOKENS,
        "{what}"
    );
    assert_costs_something(&events[0], &what);

    // ---- The follow-up turn: the assistant message as returned (as SDKs
    // append it) and the tool's result.
    let tool_result = "18°C and sunny all day.";
    let follow_up = json!({
        "model": CLAUDE,
        "messages": [
            {"role": "user", "content": question},
            choice["message"].clone(),
            {"role": "tool", "tool_call_id": call["id"], "content": tool_result}
        ],
        "tools": [weather_tool()]
    });
    let before = t.claude.count();
    let r = chat(&t.gw.url, Some(&t.key), &follow_up).await;
    let what = format!("[{backend}] tool result turn");
    assert_eq!(r.status, 200, "{what}: {r}");
    assert_eq!(
        r.body["choices"][0]["message"]["content"], ANTHROPIC_CONTENT,
        "{what}: {r}"
    );
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop", "{what}: {r}");
    let seen = t.claude.requests();
    assert_eq!(seen.len(), before + 1);
    let up = &seen[before].body;
    assert_valid_messages_request(up, CLAUDE, &what);
    let messages = up["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        3,
        "{what}: user, assistant (tool_use), user (tool_result): {up}"
    );
    let blocks = |i: usize| -> Vec<Value> {
        messages[i]["content"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{what}: messages[{i}].content must be blocks: {up}"))
    };
    let uses: Vec<Value> = blocks(1)
        .into_iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(
        uses.len(),
        1,
        "{what}: the assistant turn carries the tool_use: {up}"
    );
    assert_eq!(uses[0]["id"], ANTHROPIC_TOOL_USE_ID, "{what}: {up}");
    assert_eq!(uses[0]["name"], "get_weather", "{what}: {up}");
    assert_eq!(
        uses[0]["input"],
        anthropic_tool_input(),
        "{what}: the tool_use input is the parsed arguments: {up}"
    );
    assert_eq!(
        anthropic_text(&messages[1]["content"]),
        ANTHROPIC_TOOL_TEXT,
        "{what}: the assistant's text is kept: {up}"
    );
    let results: Vec<Value> = blocks(2)
        .into_iter()
        .filter(|b| b["type"] == "tool_result")
        .collect();
    assert_eq!(
        results.len(),
        1,
        "{what}: the tool message becomes a tool_result in a user turn: {up}"
    );
    assert_eq!(
        results[0]["tool_use_id"], ANTHROPIC_TOOL_USE_ID,
        "{what}: the tool_result answers the tool_use's id: {up}"
    );
    assert_eq!(
        anthropic_text(&results[0]["content"]),
        tool_result,
        "{what}: the tool's result: {up}"
    );
    n_events += 1;
    t.events(n_events, "the tool result turn's event").await;

    // ---- Tool calls, streamed.
    let mut streamed_tools = with_tools.clone();
    streamed_tools["stream"] = json!(true);
    let got = Streamed::receive(chat_request(&t.gw.url, &t.key, &streamed_tools)).await;
    let what = format!("[{backend}] streamed tool call");
    assert_eq!(got.status, 200, "{what}:\n{}", got.text);
    let chunks = openai_chunks(&got.text, CLAUDE, &what);
    assert_eq!(
        sse_content(&got.text),
        ANTHROPIC_TOOL_TEXT,
        "{what}: the text before the tool call:\n{}",
        got.text
    );
    assert_eq!(
        finish_reasons(&chunks),
        ["tool_calls"],
        "{what}: exactly one finish_reason, tool_calls:\n{}",
        got.text
    );
    let calls = reassembled_tool_calls(&chunks);
    assert_eq!(calls.len(), 1, "{what}: one tool call:\n{}", got.text);
    assert_eq!(
        calls[0]["id"], ANTHROPIC_TOOL_USE_ID,
        "{what}: {}",
        got.text
    );
    assert_eq!(calls[0]["type"], "function", "{what}: {}", got.text);
    assert_eq!(
        calls[0]["function"]["name"], "get_weather",
        "{what}: {}",
        got.text
    );
    let arguments = calls[0]["function"]["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(arguments).ok(),
        Some(anthropic_tool_input()),
        "{what}: the argument deltas must reassemble to the tool_use input (got `{arguments}`):\n{}",
        got.text
    );
    n_events += 1;
    let events = t.events(n_events, "the streamed tool call's event").await;
    let e = &events[0];
    assert_eq!(e["streamed"], true, "{what}: {e}");
    assert_eq!(
        e["input_tokens"], ANTHROPIC_STREAM_INPUT_TOKENS,
        "{what}: {e}"
    );
    assert_eq!(
        e["output_tokens"], ANTHROPIC_STREAM_OUTPUT_TOKENS,
        "{what}: {e}"
    );
    assert_costs_something(e, &what);

    // ---- Anthropic's errors reach the caller in OpenAI's shape, with
    // Anthropic's status.
    for (status, stream) in [(429, false), (429, true), (400, false), (529, false)] {
        let what = format!("[{backend}] Anthropic answering {status} (stream: {stream})");
        let mut sent = chat_body(CLAUDE, &anthropic_failure_prompt(status));
        if stream {
            sent["stream"] = json!(true);
        }
        let before = t.claude.count();
        let r = chat(&t.gw.url, Some(&t.key), &sent).await;
        assert_eq!(
            t.claude.count(),
            before + 1,
            "{what}: the request reached Anthropic once"
        );
        assert_eq!(
            r.status, status,
            "{what}: the caller must get Anthropic's status: {r}"
        );
        assert!(
            content_type(&r.headers).starts_with("application/json"),
            "{what}: an error is a JSON body, not a stream: {:?}",
            r.headers
        );
        let error = &r.body["error"];
        assert!(
            error.is_object() && r.body.get("type").is_none(),
            "{what}: an OpenAI caller expects {{\"error\": {{\"message\", \"type\", …}}}}, got {r}"
        );
        assert_eq!(
            error["message"],
            anthropic_failure_message(status),
            "{what}: Anthropic's message must reach the caller: {r}"
        );
        assert!(
            error["type"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: error.type: {r}"
        );
        n_events += 1;
        let events = t.events(n_events, "the failed request's event").await;
        let e = &events[0];
        assert_eq!(e["verdict"], "error", "{what}: {e}");
        assert_eq!(e["upstream_status"], status, "{what}: {e}");
        assert_eq!(e["provider_target"], "anthropic", "{what}: {e}");
        assert_eq!(e["streamed"], stream, "{what}: {e}");
    }

    // ---- What Anthropic cannot do is refused, naming the field, and never
    // sent.
    let before = t.claude.count();
    for stream in [false, true] {
        let what = format!("[{backend}] n: 2 (stream: {stream})");
        let mut sent = chat_body(CLAUDE, "Two answers, please");
        sent["n"] = json!(2);
        if stream {
            sent["stream"] = json!(true);
        }
        let r = chat(&t.gw.url, Some(&t.key), &sent).await;
        assert_eq!(r.status, 400, "{what}: {r}");
        r.assert_error_shape(&what);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|word| word == "n"),
            "{what}: the 400 must name the field `n`: {r}"
        );
        assert_eq!(
            r.body["error"]["type"], "invalid_request_error",
            "{what}: {r}"
        );
        n_events += 1;
        let events = t.events(n_events, "the refused request's event").await;
        assert_eq!(events[0]["verdict"], "error", "{what}: {}", events[0]);
    }
    assert_eq!(
        t.claude.count(),
        before,
        "[{backend}] a request the translation refuses must not reach Anthropic"
    );
    assert_eq!(
        t.s.standin.count(),
        0,
        "[{backend}] no claude-* request may go to the OpenAI target"
    );

    // The provider key never shows in the logs.
    let logs = t.gw.stderr();
    assert!(
        !logs.contains(ANTHROPIC_KEY) && !logs.contains(&t.key),
        "[{backend}] a key appears in the gateway logs:\n{logs}"
    );
}
