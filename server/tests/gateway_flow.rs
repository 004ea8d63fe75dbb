//! End-to-end flows through real `kt serve` and `kt gateway run` processes,
//! on every available database backend, with an OpenAI stand-in in the test
//! process as the upstream provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt as _;
use serde_json::{Value, json};
use store::testing::TestDatabase;

/// The policy config of the tests: PII blocked, a model allowlist, a rate
/// limit, the stand-in as `openai`, and a `broken` target on a closed port
/// serving `broken-model`.
fn config(standin: &StandIn, max_requests_per_minute: u32) -> String {
    let base = &standin.base_url;
    let broken = closed_port();
    format!(
        "policies:
  - name: pii-protection
    type: pii_detection
    action: block
    enabled: true
  - name: model-allowlist
    type: model_filter
    allowed_models: [gpt-4o, gpt-4o-mini, broken-model]
    enabled: true
  - name: tenant-rate-limit
    type: rate_limit
    max_requests_per_minute: {max_requests_per_minute}
    action: block
    enabled: true
providers:
  targets:
    - id: openai
      provider:
        base_url: {base}
        secret_key_ref:
          env: {UPSTREAM_KEY_VAR}
    - id: broken
      provider:
        kind: openai
        base_url: http://127.0.0.1:{broken}/v1
        models: [broken-model]
        secret_key_ref:
          env: {UPSTREAM_KEY_VAR}
"
    )
}

impl Stack {
    /// Starts a gateway on `config(…)` written to `<stem>.yaml`.
    async fn gateway(&self, stem: &str, extra: &[&str]) -> KtProcess {
        self.gateway_with(stem, &config(&self.standin, 1000), extra)
            .await
    }

    async fn gateway_with(&self, stem: &str, config: &str, extra: &[&str]) -> KtProcess {
        let path = self.install.write_config(stem, config);
        self.install.gateway(&path, extra).await
    }
}

fn event_of<'a>(events: &'a [Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| pred(e)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one event for {what}, got {}:\n{}",
        found.len(),
        serde_json::to_string_pretty(events).unwrap()
    );
    found[0]
}

/// Checks the fields every event must have, with their types.
fn assert_event_shape(e: &Value) {
    for field in [
        "id",
        "created_at",
        "gateway_id",
        "gateway_name",
        "model",
        "verdict",
    ] {
        assert!(
            e[field].as_str().is_some_and(|s| !s.is_empty()),
            "event field `{field}` must be a non-empty string: {e}"
        );
    }
    for field in [
        "team_id",
        "token_id",
        "provider_target",
        "provider_kind",
        "reason",
        "policy",
        "upstream_status",
    ] {
        assert!(
            e.get(field).is_some(),
            "event lacks the field `{field}`: {e}"
        );
    }
    for field in ["input_tokens", "output_tokens", "latency_ms"] {
        assert!(
            e[field].as_i64().is_some_and(|n| n >= 0),
            "event field `{field}` must be a non-negative integer: {e}"
        );
    }
    assert!(
        e["cost_usd"].is_number(),
        "event field `cost_usd` must be a number: {e}"
    );
    assert!(e["streamed"].is_boolean(), "event `streamed`: {e}");
    assert!(e["demo"].is_boolean(), "event `demo`: {e}");
    let at = parse_rfc3339(e["created_at"].as_str().unwrap());
    let age = time::OffsetDateTime::now_utc() - at;
    assert!(
        age > time::Duration::seconds(-5) && age < time::Duration::minutes(5),
        "event created_at {at} is not about now: {e}"
    );
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_relayed_and_metered() {
    for db in store::testing::backends().await {
        relayed_and_metered(&db).await;
        db.cleanup().await;
    }
}

async fn relayed_and_metered(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey {
        team_id,
        key_id,
        key,
        ..
    } = s.team_with_key("Engineering", "eng").await;
    // No --name: the gateway is named after the config file's stem.
    let gw = s.gateway("team-eng", &[]).await;

    // /health
    let h = Api::new(&gw.url, None).get("/health").await;
    assert_eq!(h.status, 200, "[{}] gateway /health: {h}", s.backend);
    assert!(h.body["status"].is_string(), "/health status: {h}");
    assert!(
        h.body["version"].as_str().is_some_and(|v| !v.is_empty()),
        "/health version: {h}"
    );
    assert!(
        h.body["config_hash"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "/health config_hash: {h}"
    );
    assert!(
        h.body["uptime_seconds"].is_number(),
        "/health uptime_seconds: {h}"
    );

    // Non-streamed request.
    let r = chat(&gw.url, Some(&key), &chat_body("gpt-4o", "Say hello")).await;
    assert_eq!(r.status, 200, "[{}] non-streamed request: {r}", s.backend);
    assert_eq!(
        r.body["choices"][0]["message"]["content"], STANDIN_CONTENT,
        "the caller must get the provider's answer: {r}"
    );
    let seen = s.standin.requests();
    assert_eq!(
        seen.len(),
        1,
        "the stand-in should have received exactly one request"
    );
    let forwarded = &seen[0];
    assert_eq!(
        forwarded.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str()),
        "the gateway must send the provider key from ${UPSTREAM_KEY_VAR} upstream"
    );
    for (name, value) in &forwarded.headers {
        assert!(
            !value.to_str().unwrap_or_default().contains(&key),
            "the caller's gateway key leaked upstream in header `{name}`"
        );
    }
    assert_eq!(forwarded.body["model"], "gpt-4o");
    assert_eq!(forwarded.body["messages"][0]["content"], "Say hello");

    let events = s
        .admin
        .wait_for_events(
            &format!("team_id={team_id}&limit=100"),
            "the non-streamed request's event",
            |evs| evs.iter().any(|e| e["streamed"] == false),
        )
        .await;
    let e = event_of(&events, "the non-streamed request", |e| {
        e["streamed"] == false
    });
    assert_event_shape(e);
    assert_eq!(e["team_id"], team_id.as_str(), "event team: {e}");
    assert_eq!(e["token_id"], key_id.as_str(), "event key id: {e}");
    assert_eq!(e["gateway_name"], "team-eng", "event gateway: {e}");
    assert_eq!(e["model"], "gpt-4o", "event model: {e}");
    assert_eq!(e["provider_target"], "openai", "event target: {e}");
    assert_eq!(e["provider_kind"], "openai", "event provider kind: {e}");
    assert_eq!(e["verdict"], "allow", "event verdict: {e}");
    assert_eq!(
        e["input_tokens"], STANDIN_PROMPT_TOKENS,
        "event tokens: {e}"
    );
    assert_eq!(
        e["output_tokens"], STANDIN_COMPLETION_TOKENS,
        "event tokens: {e}"
    );
    assert!(
        e["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "a priced request must cost more than $0: {e}"
    );
    assert_eq!(e["upstream_status"], 200, "event upstream status: {e}");
    assert_eq!(e["demo"], false, "event demo: {e}");

    // Streamed request: relayed chunk by chunk.
    let started = Instant::now();
    let response = http_client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&json!({
            "model": "gpt-4o",
            "stream": true,
            "messages": [{"role": "user", "content": "Stream hello"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "[{}] streamed request",
        s.backend
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "a streamed answer must be text/event-stream, got `{content_type}`"
    );
    let mut chunks: Vec<(Duration, Vec<u8>)> = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        chunks.push((started.elapsed(), chunk.to_vec()));
    }
    let text = String::from_utf8(chunks.iter().flat_map(|(_, c)| c.clone()).collect()).unwrap();
    eprintln!(
        "streamed answer: {} chunks over {:?}",
        chunks.len(),
        chunks.last().map(|c| c.0).unwrap_or_default()
            - chunks.first().map(|c| c.0).unwrap_or_default()
    );
    assert!(
        chunks.len() > 1,
        "the streamed answer arrived in {} chunk(s); it must be relayed chunk by chunk:\n{text}",
        chunks.len()
    );
    let spread = chunks.last().unwrap().0 - chunks[0].0;
    assert!(
        spread >= STREAM_FRAME_DELAY * 3,
        "the first chunk arrived only {spread:?} before the last: the gateway buffered the stream \
         (the stand-in spreads it over {:?})",
        STREAM_FRAME_DELAY * (STREAM_PIECES.len() as u32 + 2)
    );
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "a streamed answer must end with `data: [DONE]`:\n{text}"
    );
    assert_eq!(
        sse_content(&text),
        STREAM_PIECES.concat(),
        "the streamed content must reach the caller unchanged:\n{text}"
    );
    assert!(
        !text.contains("\"choices\":[]"),
        "the client did not ask for usage, so the usage-only chunk the gateway requested must not reach it:\n{text}"
    );
    let seen = s.standin.requests();
    assert_eq!(seen.len(), 2, "the stand-in should have two requests now");
    let forwarded = &seen[1];
    assert_eq!(forwarded.body["stream"], true, "{:?}", forwarded.body);
    assert_eq!(
        forwarded.body["stream_options"]["include_usage"], true,
        "the gateway must ask for usage on streamed requests (stream_options.include_usage): {}",
        forwarded.body
    );
    assert_eq!(
        forwarded.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );

    let events = s
        .admin
        .wait_for_events(
            &format!("team_id={team_id}&limit=100"),
            "the streamed request's event",
            |evs| evs.iter().any(|e| e["streamed"] == true),
        )
        .await;
    assert_eq!(
        events.len(),
        2,
        "two requests, two events: {}",
        serde_json::to_string_pretty(&events).unwrap()
    );
    let e = event_of(&events, "the streamed request", |e| e["streamed"] == true);
    assert_event_shape(e);
    assert_eq!(
        events[0]["id"], e["id"],
        "events are listed newest first: {events:?}"
    );
    assert_eq!(e["team_id"], team_id.as_str(), "event team: {e}");
    assert_eq!(e["model"], "gpt-4o", "event model: {e}");
    assert_eq!(e["verdict"], "allow", "event verdict: {e}");
    assert_eq!(
        e["input_tokens"], STREAM_PROMPT_TOKENS,
        "streamed usage must come from the provider's final chunk: {e}"
    );
    assert_eq!(
        e["output_tokens"], STREAM_COMPLETION_TOKENS,
        "streamed usage must come from the provider's final chunk: {e}"
    );
    assert!(
        e["cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        "a streamed request must never cost $0: {e}"
    );

    // /metrics counts the two requests.
    let m = http_client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(m.status().as_u16(), 200, "gateway /metrics");
    let metrics = m.text().await.unwrap();
    let requests: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("kt_gateway_requests") && !l.contains("_created"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        requests >= 2.0,
        "/metrics should count the 2 requests in kt_gateway_requests*, got {requests}:\n{metrics}"
    );
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn refusals_and_failures_answer_the_right_status_and_are_recorded() {
    for db in store::testing::backends().await {
        refusals(&db).await;
        db.cleanup().await;
    }
}

async fn refusals(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey {
        team_id,
        key_id,
        key,
        ..
    } = s.team_with_key("Engineering", "eng").await;
    let gw = s.gateway("team-eng", &[]).await;
    let team_q = format!("team_id={team_id}&limit=100");

    // A model outside the allowlist.
    let r = chat(&gw.url, Some(&key), &chat_body("gpt-3.5-turbo", "hi")).await;
    assert_eq!(r.status, 409, "[{}] blocked model: {r}", s.backend);
    assert_eq!(r.body["error"]["type"], "policy_violation", "{r}");
    assert_eq!(r.body["error"]["code"], "input_blocked", "{r}");
    assert_eq!(r.body["error"]["policy"], "model-allowlist", "{r}");
    assert_eq!(
        s.standin.count(),
        0,
        "a blocked request must not reach the provider"
    );
    let events = s
        .admin
        .wait_for_events(&team_q, "the blocked model's event", |evs| {
            evs.iter().any(|e| e["model"] == "gpt-3.5-turbo")
        })
        .await;
    let e = event_of(&events, "the blocked model", |e| {
        e["model"] == "gpt-3.5-turbo"
    });
    assert_event_shape(e);
    assert_eq!(e["verdict"], "block", "{e}");
    assert_eq!(e["policy"], "model-allowlist", "{e}");
    assert!(
        e["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "a block must say why: {e}"
    );
    assert_eq!(e["token_id"], key_id.as_str(), "{e}");

    // PII in the prompt.
    let email = "jane.doe@example.com";
    let r = chat(
        &gw.url,
        Some(&key),
        &chat_body(
            "gpt-4o",
            &format!("Please forward the report to {email} today"),
        ),
    )
    .await;
    assert_eq!(r.status, 409, "[{}] PII in the prompt: {r}", s.backend);
    assert_eq!(r.body["error"]["type"], "policy_violation", "{r}");
    assert_eq!(r.body["error"]["code"], "input_blocked", "{r}");
    assert_eq!(r.body["error"]["policy"], "pii-protection", "{r}");
    assert_eq!(
        s.standin.count(),
        0,
        "a request blocked for PII must not reach the provider"
    );
    let events = s
        .admin
        .wait_for_events(&team_q, "the PII block's event", |evs| {
            evs.iter().any(|e| e["policy"] == "pii-protection")
        })
        .await;
    let e = event_of(&events, "the PII block", |e| {
        e["policy"] == "pii-protection"
    });
    assert_eq!(e["verdict"], "block", "{e}");
    assert_eq!(e["model"], "gpt-4o", "{e}");
    let all = serde_json::to_string(&events).unwrap();
    assert!(
        !all.contains(email),
        "the PII value must never be stored in events: {all}"
    );

    // Upstream unreachable.
    let r = chat(&gw.url, Some(&key), &chat_body("broken-model", "hi")).await;
    assert_eq!(
        r.status, 502,
        "[{}] unreachable upstream must answer 502: {r}",
        s.backend
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a 502 must explain itself: {r}"
    );
    let events = s
        .admin
        .wait_for_events(&team_q, "the upstream failure's event", |evs| {
            evs.iter().any(|e| e["model"] == "broken-model")
        })
        .await;
    let e = event_of(&events, "the upstream failure", |e| {
        e["model"] == "broken-model"
    });
    assert_event_shape(e);
    assert_eq!(e["verdict"], "error", "{e}");
    assert_eq!(e["provider_target"], "broken", "{e}");
    assert_eq!(e["team_id"], team_id.as_str(), "{e}");
    assert_eq!(events.len(), 3, "three requests, three events: {events:?}");

    // Missing, malformed and unknown keys.
    let before = s.admin.events("limit=1000").await.len();
    let r = chat(&gw.url, None, &chat_body("gpt-4o", "hi")).await;
    assert_eq!(r.status, 401, "[{}] no key: {r}", s.backend);
    r.assert_error_shape("no key");
    let r = chat(&gw.url, Some("sk-not-a-kt-key"), &chat_body("gpt-4o", "hi")).await;
    assert_eq!(r.status, 401, "[{}] foreign key: {r}", s.backend);
    r.assert_error_shape("foreign key");
    let bogus = "kt_gk_0000000000000000000000000000000000000000";
    let r = chat(&gw.url, Some(bogus), &chat_body("gpt-4o", "hi")).await;
    assert_eq!(r.status, 401, "[{}] unknown key: {r}", s.backend);
    r.assert_error_shape("unknown key");
    assert_eq!(
        s.standin.count(),
        0,
        "unauthenticated requests must not reach the provider"
    );
    let after = s
        .admin
        .wait_for_events(
            "limit=1000",
            "the 3 unauthenticated requests' events",
            |evs| evs.len() >= before + 3,
        )
        .await;
    assert_eq!(
        after.len(),
        before + 3,
        "every request, allowed or not, becomes exactly one event"
    );

    // No secret in the logs.
    for (label, logs) in [("gateway", gw.stderr()), ("serve", s.serve.stderr())] {
        for (what, secret) in [
            ("the gateway key", key.as_str()),
            ("the provider key", UPSTREAM_KEY),
            ("the PII value", email),
        ] {
            assert!(
                !logs.contains(secret),
                "{what} appears in the {label} logs:\n{logs}"
            );
        }
    }
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn revoked_keys_stop_working_and_new_keys_start_working() {
    for db in store::testing::backends().await {
        key_lifecycle(&db).await;
        db.cleanup().await;
    }
}

async fn key_lifecycle(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey {
        team_id,
        key_id,
        key,
        ..
    } = s.team_with_key("Engineering", "eng").await;
    let gw = s.gateway("team-eng", &[]).await;
    let body = chat_body("gpt-4o", "hi");

    let r = chat(&gw.url, Some(&key), &body).await;
    assert_eq!(r.status, 200, "[{}] valid key: {r}", s.backend);

    // A key created while the gateway runs starts working within seconds.
    let second = s
        .admin
        .create_token("eng-second", "gateway", Some(&team_id))
        .await;
    let second_key = second["token"].as_str().unwrap().to_owned();
    let created = Instant::now();
    loop {
        let r = chat(&gw.url, Some(&second_key), &body).await;
        if r.status == 200 {
            eprintln!("new key accepted after {:?}", created.elapsed());
            break;
        }
        assert_eq!(r.status, 401, "new key before it is known: {r}");
        assert!(
            created.elapsed() < Duration::from_secs(7),
            "[{}] a key created {:?} ago is still refused: {r}",
            s.backend,
            created.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Revocation.
    let r = s.admin.delete(&format!("/v1/tokens/{key_id}")).await;
    assert_eq!(
        r.status, 200,
        "[{}] DELETE /v1/tokens/{{id}}: {r}",
        s.backend
    );
    let revoked = Instant::now();
    loop {
        let r = chat(&gw.url, Some(&key), &body).await;
        if r.status == 401 {
            eprintln!("revoked key refused after {:?}", revoked.elapsed());
            r.assert_error_shape("revoked key");
            break;
        }
        assert_eq!(r.status, 200, "revoked key, before the refresh: {r}");
        assert!(
            revoked.elapsed() < Duration::from_secs(7),
            "[{}] a key revoked {:?} ago still works (expected 401 within ~6 s)",
            s.backend,
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Only the revoked key is affected.
    let r = chat(&gw.url, Some(&second_key), &body).await;
    assert_eq!(r.status, 200, "the other key must keep working: {r}");
    // Revocation holds.
    let r = chat(&gw.url, Some(&key), &body).await;
    assert_eq!(r.status, 401, "the revoked key must stay refused: {r}");
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn events_api_filters() {
    for db in store::testing::backends().await {
        event_filters(&db).await;
        db.cleanup().await;
    }
}

async fn event_filters(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey {
        team_id: eng_id,
        key: eng_key,
        ..
    } = s.team_with_key("Engineering", "eng").await;
    let TeamKey {
        team_id: data_id,
        key: data_key,
        ..
    } = s.team_with_key("Data", "data").await;
    let gw1 = s.gateway("team-eng", &[]).await;
    let gw2 = s.gateway("shared", &["--name", "second-gw"]).await;

    let ok = chat_body("gpt-4o", "hi");
    for _ in 0..2 {
        let r = chat(&gw1.url, Some(&eng_key), &ok).await;
        assert_eq!(r.status, 200, "{r}");
    }
    let r = chat(&gw2.url, Some(&data_key), &ok).await;
    assert_eq!(r.status, 200, "{r}");
    s.admin
        .wait_for_events("limit=100", "3 events", |e| e.len() >= 3)
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = now_rfc3339();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = chat(&gw1.url, Some(&eng_key), &chat_body("gpt-3.5-turbo", "hi")).await;
    assert_eq!(r.status, 409, "{r}");
    let all = s
        .admin
        .wait_for_events("limit=100", "4 events", |e| e.len() >= 4)
        .await;
    assert_eq!(all.len(), 4, "4 requests, 4 events: {all:?}");
    let times: Vec<_> = all
        .iter()
        .map(|e| parse_rfc3339(e["created_at"].as_str().unwrap()))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "events must be listed newest first: {times:?}"
    );
    let ids = |evs: &[Value]| -> Vec<String> {
        evs.iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };

    // team_id
    let eng = s.admin.events(&format!("team_id={eng_id}")).await;
    assert_eq!(eng.len(), 3, "team_id filter (eng): {eng:?}");
    assert!(
        eng.iter().all(|e| e["team_id"] == eng_id.as_str()),
        "{eng:?}"
    );
    let data = s.admin.events(&format!("team_id={data_id}")).await;
    assert_eq!(data.len(), 1, "team_id filter (data): {data:?}");
    assert_eq!(data[0]["team_id"], data_id.as_str());

    // gateway_id, by name and by id
    let by_name = s.admin.events("gateway_id=team-eng").await;
    assert_eq!(by_name.len(), 3, "gateway_id=<name> filter: {by_name:?}");
    assert!(by_name.iter().all(|e| e["gateway_name"] == "team-eng"));
    let second = s.admin.events("gateway_id=second-gw").await;
    assert_eq!(second.len(), 1, "gateway_id=<name> filter: {second:?}");
    let gw2_id = second[0]["gateway_id"].as_str().unwrap().to_owned();
    let by_id = s.admin.events(&format!("gateway_id={gw2_id}")).await;
    assert_eq!(ids(&by_id), ids(&second), "gateway_id=<id> filter");
    let none = s.admin.events("gateway_id=no-such-gateway").await;
    assert!(none.is_empty(), "unknown gateway: {none:?}");

    // verdict
    let blocked = s.admin.events("verdict=block").await;
    assert_eq!(blocked.len(), 1, "verdict=block: {blocked:?}");
    assert_eq!(blocked[0]["model"], "gpt-3.5-turbo");
    let allowed = s.admin.events("verdict=allow").await;
    assert_eq!(allowed.len(), 3, "verdict=allow: {allowed:?}");
    assert!(allowed.iter().all(|e| e["verdict"] == "allow"));

    // combined
    let combined = s
        .admin
        .events(&format!(
            "team_id={eng_id}&verdict=allow&gateway_id=team-eng"
        ))
        .await;
    assert_eq!(combined.len(), 2, "combined filters: {combined:?}");

    // limit: the newest N
    let two = s.admin.events("limit=2").await;
    assert_eq!(ids(&two), ids(&all[..2]), "limit=2 gives the 2 newest");
    let one = s.admin.events("limit=1").await;
    assert_eq!(ids(&one), ids(&all[..1]), "limit=1 gives the newest");

    // since
    assert_eq!(s.admin.events("since=5m").await.len(), 4, "since=5m");
    assert_eq!(s.admin.events("since=30d").await.len(), 4, "since=30d");
    let after = s.admin.events(&format!("since={between}")).await;
    assert_eq!(
        after.len(),
        1,
        "since={between} must keep only the last request: {after:?}"
    );
    assert_eq!(after[0]["verdict"], "block");
    let future = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let later = s.admin.events(&format!("since={future}")).await;
    assert!(later.is_empty(), "since=<future>: {later:?}");

    // Bad filter values are refused, not ignored.
    let r = s.admin.get("/v1/events?since=yesterday-ish").await;
    assert!(
        r.status == 400 || r.status == 422,
        "since=<garbage> must be refused with 400/422: {r}"
    );
    r.assert_error_shape("since=<garbage>");
    drop((gw1, gw2));
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fleet_view_lists_running_gateways() {
    for db in store::testing::backends().await {
        fleet(&db).await;
        db.cleanup().await;
    }
}

async fn fleet(db: &TestDatabase) {
    let s = start_stack(db).await;
    let gw = s.gateway("team-eng", &[]).await;
    let health = Api::new(&gw.url, None).get("/health").await;
    assert_eq!(health.status, 200, "{health}");

    let r = s.admin.get("/v1/gateways").await;
    assert_eq!(r.status, 200, "[{}] GET /v1/gateways: {r}", s.backend);
    let gateways = r.data();
    let g = gateways
        .iter()
        .find(|g| g["name"] == "team-eng")
        .unwrap_or_else(|| {
            panic!(
                "the running gateway `team-eng` (named after its config file) is not listed: {r}"
            )
        });
    assert!(
        g["id"].as_str().is_some_and(|s| !s.is_empty()),
        "gateway id: {g}"
    );
    assert_eq!(g["status"], "healthy", "a running gateway is healthy: {g}");
    assert_eq!(g["address"], gw.url.as_str(), "gateway address: {g}");
    assert_eq!(
        g["version"], health.body["version"],
        "fleet version vs /health: {g}"
    );
    assert_eq!(
        g["config_hash"], health.body["config_hash"],
        "fleet config hash vs /health: {g}"
    );
    assert_eq!(g["demo"], false, "no demo target in this config: {g}");
    assert!(
        g["last_seen"].is_string() || g["last_seen"].is_number(),
        "last_seen: {g}"
    );
    if let Some(t) = g["last_seen"].as_str() {
        parse_rfc3339(t);
    }
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn team_scoped_tokens_see_only_their_team() {
    for db in store::testing::backends().await {
        tenant_isolation(&db).await;
        db.cleanup().await;
    }
}

async fn tenant_isolation(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey {
        team_id: eng_id,
        key_id: eng_key_id,
        key: eng_key,
        ..
    } = s.team_with_key("Engineering", "eng").await;
    let TeamKey {
        team_id: data_id,
        key_id: data_key_id,
        key: data_key,
        ..
    } = s.team_with_key("Data", "data").await;
    let data_token = s
        .admin
        .create_token("data-lead", "access", Some(&data_id))
        .await;
    assert_eq!(data_token["team_id"], data_id.as_str());
    let data_api = s.admin.with_token(data_token["token"].as_str());
    let gw = s.gateway("team-eng", &[]).await;

    for key in [&eng_key, &data_key] {
        let r = chat(&gw.url, Some(key), &chat_body("gpt-4o", "hi")).await;
        assert_eq!(r.status, 200, "{r}");
    }
    // The org admin sees both teams' events (so the checks below are not vacuous).
    s.admin
        .wait_for_events("limit=100", "both teams' events", |evs| {
            evs.iter().any(|e| e["team_id"] == eng_id.as_str())
                && evs.iter().any(|e| e["team_id"] == data_id.as_str())
        })
        .await;

    // Events
    let events = data_api.events("limit=100").await;
    assert!(
        !events.is_empty(),
        "[{}] a team token must see its own team's events",
        s.backend
    );
    assert!(
        events.iter().all(|e| e["team_id"] == data_id.as_str()),
        "[{}] the data team's token sees another team's events: {events:?}",
        s.backend
    );
    let r = data_api.get(&format!("/v1/events?team_id={eng_id}")).await;
    assert!(
        r.status == 404 || (r.status == 200 && r.data().is_empty()),
        "[{}] asking for another team's events must answer 404 or nothing: {r}",
        s.backend
    );

    // Teams
    let r = data_api.get("/v1/teams").await;
    assert_eq!(r.status, 200, "{r}");
    let teams = r.data();
    assert_eq!(teams.len(), 1, "a team token sees only its team: {r}");
    assert_eq!(teams[0]["id"], data_id.as_str(), "{r}");
    let r = data_api
        .post("/v1/teams", &json!({"name": "Sneaky", "slug": "sneaky"}))
        .await;
    assert!(
        r.status == 403 || r.status == 404,
        "a team token must not create teams (403/404): {r}"
    );

    // Tokens
    let r = data_api.get("/v1/tokens").await;
    assert_eq!(r.status, 200, "{r}");
    let tokens = r.data();
    assert!(
        tokens.iter().any(|t| t["id"] == data_key_id.as_str()),
        "a team token must see its own team's keys: {r}"
    );
    assert!(
        tokens.iter().all(|t| t["team_id"] == data_id.as_str()),
        "[{}] a team token sees other teams' or org tokens: {r}",
        s.backend
    );
    // Revoking another team's key: 404, as if it did not exist, and the key keeps working.
    let r = data_api.delete(&format!("/v1/tokens/{eng_key_id}")).await;
    assert_eq!(
        r.status, 404,
        "[{}] revoking another team's key must answer 404: {r}",
        s.backend
    );
    let r = s.admin.get("/v1/tokens").await;
    let eng_row = r
        .data()
        .into_iter()
        .find(|t| t["id"] == eng_key_id.as_str())
        .unwrap_or_else(|| panic!("the admin must see the eng key: {r}"));
    assert!(
        eng_row["revoked_at"].is_null(),
        "the eng key must not be revoked by another team: {eng_row}"
    );
    tokio::time::sleep(Duration::from_millis(5500)).await; // one key-cache refresh
    let r = chat(&gw.url, Some(&eng_key), &chat_body("gpt-4o", "hi")).await;
    assert_eq!(
        r.status, 200,
        "the eng key must keep working after another team tried to revoke it: {r}"
    );
    // Creating a key for another team: same answer as for a team that does not exist.
    let other = data_api
        .post(
            "/v1/tokens",
            &json!({"name": "x", "token_type": "gateway", "team_id": eng_id}),
        )
        .await;
    let missing = data_api
        .post(
            "/v1/tokens",
            &json!({"name": "x", "token_type": "gateway", "team_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!(
        other.status, 404,
        "[{}] creating a key for another team must answer 404: {other}",
        s.backend
    );
    assert_eq!(
        other.status, missing.status,
        "another team must look like a team that does not exist: {other} vs {missing}"
    );
    // A gateway key is not an API token.
    let r = s.admin.with_token(Some(&eng_key)).get("/v1/teams").await;
    assert!(
        r.status == 401 || r.status == 403,
        "a gateway key must not open the API: {r}"
    );
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn team_restricted_gateway_refuses_other_teams() {
    for db in store::testing::backends().await {
        team_restriction(&db).await;
        db.cleanup().await;
    }
}

async fn team_restriction(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey { key: eng_key, .. } = s.team_with_key("Engineering", "eng").await;
    let TeamKey { key: data_key, .. } = s.team_with_key("Data", "data").await;
    let gw = s
        .gateway("team-eng", &["--team", "eng", "--name", "eng-only"])
        .await;

    let r = chat(&gw.url, Some(&data_key), &chat_body("gpt-4o", "hi")).await;
    assert_eq!(
        r.status, 403,
        "[{}] a gateway started with --team eng must refuse the data team's key: {r}",
        s.backend
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "403 must explain itself: {r}"
    );
    assert_eq!(
        s.standin.count(),
        0,
        "a refused request must not reach the provider"
    );
    let r = chat(&gw.url, Some(&eng_key), &chat_body("gpt-4o", "hi")).await;
    assert_eq!(r.status, 200, "[{}] the eng key: {r}", s.backend);
    assert_eq!(s.standin.count(), 1);

    // An unknown team slug is a start-up error, not a gateway serving nobody.
    let path = s
        .install
        .write_config("team-nope", &config(&s.standin, 1000));
    let mut cmd = s.install.command(&[
        "gateway",
        "run",
        "--policy-config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--team",
        "no-such-team",
    ]);
    cmd.env(UPSTREAM_KEY_VAR, UPSTREAM_KEY);
    let out = run_command_within(cmd, None, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| {
            panic!("`kt gateway run --team no-such-team` must refuse to start: {e}")
        });
    assert!(
        !out.status.success() && out.stderr.contains("no-such-team"),
        "`kt gateway run --team no-such-team` must fail naming the team:\n{out}"
    );
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_answers_429_with_retry_after() {
    for db in store::testing::backends().await {
        rate_limit(&db).await;
        db.cleanup().await;
    }
}

async fn rate_limit(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey { team_id, key, .. } = s.team_with_key("Engineering", "eng").await;
    let gw = s
        .gateway_with("team-eng", &config(&s.standin, 2), &[])
        .await;
    let body = chat_body("gpt-4o", "hi");
    for i in 0..2 {
        let r = chat(&gw.url, Some(&key), &body).await;
        assert_eq!(r.status, 200, "request {i} within the limit: {r}");
    }
    let r = chat(&gw.url, Some(&key), &body).await;
    assert_eq!(
        r.status, 429,
        "[{}] the third request in a minute with max_requests_per_minute: 2: {r}",
        s.backend
    );
    let retry = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry.is_some_and(|s| (1..=60).contains(&s)),
        "429 needs a Retry-After of 1..=60 seconds, got {:?}",
        r.headers.get("retry-after")
    );
    assert_eq!(
        s.standin.count(),
        2,
        "a rate-limited request must not reach the provider"
    );
    let events = s
        .admin
        .wait_for_events(
            &format!("team_id={team_id}&verdict=block"),
            "the rate-limited request's event",
            |evs| !evs.is_empty(),
        )
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["policy"], "tenant-rate-limit", "{}", events[0]);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn api_authentication_teams_and_tokens() {
    for db in store::testing::backends().await {
        api_basics(&db).await;
        db.cleanup().await;
    }
}

async fn api_basics(db: &TestDatabase) {
    let s = start_stack(db).await;
    let anonymous = s.admin.with_token(None);

    for probe in ["/healthz", "/readyz"] {
        let r = anonymous.get(probe).await;
        assert_eq!(r.status, 200, "[{}] {probe}: {r}", s.backend);
    }

    for path in ["/v1/teams", "/v1/tokens", "/v1/events", "/v1/gateways"] {
        let r = anonymous.get(path).await;
        assert_eq!(r.status, 401, "[{}] {path} without a token: {r}", s.backend);
        r.assert_error_shape(&format!("{path} without a token"));
        let r = s
            .admin
            .with_token(Some("kt_ak_notavalidtoken0000000000000000000000000"))
            .get(path)
            .await;
        assert_eq!(
            r.status, 401,
            "[{}] {path} with a bogus token: {r}",
            s.backend
        );
    }

    // Teams
    let team = s.admin.create_team("Engineering", "eng").await;
    assert!(team["created_at"].is_string(), "created_at: {team}");
    parse_rfc3339(team["created_at"].as_str().unwrap());
    let r = s
        .admin
        .post("/v1/teams", &json!({"name": "Eng again", "slug": "eng"}))
        .await;
    assert_eq!(r.status, 409, "[{}] duplicate slug: {r}", s.backend);
    r.assert_error_shape("duplicate slug");
    for bad in ["Not A Slug", "", "1eng", "eng_x"] {
        let r = s
            .admin
            .post("/v1/teams", &json!({"name": "Bad", "slug": bad}))
            .await;
        assert!(
            r.status == 400 || r.status == 422,
            "[{}] slug {bad:?} must be refused with 400/422: {r}",
            s.backend
        );
        r.assert_error_shape("bad slug");
    }
    let r = s.admin.post("/v1/teams", &json!({"name": "No slug"})).await;
    assert!(
        r.status == 400 || r.status == 422,
        "a team without a slug must be refused: {r}"
    );
    let r = s.admin.get("/v1/teams").await;
    assert_eq!(r.status, 200, "{r}");
    let teams = r.data();
    assert_eq!(teams.len(), 1, "only the one valid team exists: {r}");
    assert_eq!(teams[0]["slug"], "eng");
    let team_id = team["id"].as_str().unwrap();

    // Tokens: the secret is shown once, never listed.
    let gk = s
        .admin
        .create_token("eng-app", "gateway", Some(team_id))
        .await;
    let ak = s
        .admin
        .create_token("eng-lead", "access", Some(team_id))
        .await;
    let gk_secret = gk["token"].as_str().unwrap();
    let ak_secret = ak["token"].as_str().unwrap();
    for t in [&gk, &ak] {
        let prefix = t["prefix"].as_str().unwrap_or_default();
        assert!(
            !prefix.is_empty() && t["token"].as_str().unwrap().starts_with(prefix),
            "`prefix` must be the start of the token: {t}"
        );
    }
    let r = s.admin.get("/v1/tokens").await;
    assert_eq!(r.status, 200, "{r}");
    let listed = serde_json::to_string(&r.body).unwrap();
    assert!(
        !listed.contains(gk_secret) && !listed.contains(ak_secret),
        "GET /v1/tokens must never contain a token's secret: {listed}"
    );
    let rows = r.data();
    for t in [&gk, &ak] {
        assert!(
            rows.iter().any(|row| row["id"] == t["id"]),
            "token {} is not listed: {r}",
            t["id"]
        );
    }
    assert!(
        rows.iter()
            .all(|row| row.get("token").is_none_or(Value::is_null)),
        "listed tokens must not carry `token`: {r}"
    );
    let r = s
        .admin
        .post(
            "/v1/tokens",
            &json!({"name": "x", "token_type": "superuser", "team_id": team_id}),
        )
        .await;
    assert!(
        r.status == 400 || r.status == 422,
        "an unknown token_type must be refused: {r}"
    );

    // An access token works until revoked.
    let lead = s.admin.with_token(Some(ak_secret));
    assert_eq!(lead.get("/v1/teams").await.status, 200);
    let r = s
        .admin
        .delete(&format!("/v1/tokens/{}", ak["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200, "DELETE /v1/tokens/{{id}}: {r}");
    let r = lead.get("/v1/teams").await;
    assert_eq!(r.status, 401, "a revoked access token must be refused: {r}");
    let r = s.admin.delete("/v1/tokens/no-such-token").await;
    assert_eq!(r.status, 404, "revoking an unknown token: {r}");
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_and_interrupted_requests_are_all_metered() {
    for db in store::testing::backends().await {
        concurrent_and_interrupted(&db).await;
        db.cleanup().await;
    }
}

async fn concurrent_and_interrupted(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey { team_id, key, .. } = s.team_with_key("Engineering", "eng").await;
    let gw = s.gateway("team-eng", &[]).await;
    let team_q = format!("team_id={team_id}&limit=1000");

    // Many requests at once, streamed and not.
    const PLAIN: usize = 20;
    const STREAMED: usize = 4;
    let plain = (0..PLAIN).map(|i| {
        let url = gw.url.clone();
        let key = key.clone();
        async move {
            chat(
                &url,
                Some(&key),
                &chat_body("gpt-4o", &format!("request {i}")),
            )
            .await
        }
    });
    let streamed = (0..STREAMED).map(|i| {
        let url = gw.url.clone();
        let key = key.clone();
        async move {
            let body = json!({"model": "gpt-4o", "stream": true,
                "messages": [{"role": "user", "content": format!("stream {i}")}]});
            let r = http_client()
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    let (plain, streamed) = tokio::join!(
        futures::future::join_all(plain),
        futures::future::join_all(streamed)
    );
    for r in &plain {
        assert_eq!(r.status, 200, "[{}] concurrent request: {r}", s.backend);
    }
    for (status, text) in &streamed {
        assert_eq!(*status, 200, "[{}] concurrent stream: {text}", s.backend);
        assert_eq!(sse_content(text), STREAM_PIECES.concat(), "{text}");
    }
    let events = s
        .admin
        .wait_for_events(&team_q, "one event per concurrent request", |evs| {
            evs.len() >= PLAIN + STREAMED
        })
        .await;
    assert_eq!(
        events.len(),
        PLAIN + STREAMED,
        "[{}] {} concurrent requests must give as many events",
        s.backend,
        PLAIN + STREAMED
    );
    let sum = |field: &str| -> i64 { events.iter().map(|e| e[field].as_i64().unwrap()).sum() };
    assert_eq!(
        sum("input_tokens"),
        PLAIN as i64 * STANDIN_PROMPT_TOKENS + STREAMED as i64 * STREAM_PROMPT_TOKENS,
        "input tokens of the concurrent requests"
    );
    assert_eq!(
        sum("output_tokens"),
        PLAIN as i64 * STANDIN_COMPLETION_TOKENS + STREAMED as i64 * STREAM_COMPLETION_TOKENS,
        "output tokens of the concurrent requests"
    );
    assert!(
        events
            .iter()
            .all(|e| e["cost_usd"].as_f64().is_some_and(|c| c > 0.0)),
        "every request costs something: {events:?}"
    );

    // A caller that hangs up in the middle of a stream still leaves an event.
    let before = events.len();
    let response = http_client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "stream": true,
            "messages": [{"role": "user", "content": "I will hang up"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await;
    assert!(first.is_some_and(|c| c.is_ok()), "no first chunk");
    drop(body);
    let events = s
        .admin
        .wait_for_events(&team_q, "the interrupted stream's event", |evs| {
            evs.len() > before
        })
        .await;
    assert_eq!(
        events.len(),
        before + 1,
        "an interrupted stream gives exactly one event"
    );
    assert_eq!(events[0]["streamed"], true, "{}", events[0]);
    assert_eq!(events[0]["team_id"], team_id.as_str(), "{}", events[0]);
}

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn gateway_shutdown_finishes_streams_and_writes_every_event() {
    for db in store::testing::backends().await {
        graceful_shutdown(&db).await;
        db.cleanup().await;
    }
}

async fn graceful_shutdown(db: &TestDatabase) {
    let s = start_stack(db).await;
    let TeamKey { team_id, key, .. } = s.team_with_key("Engineering", "eng").await;
    let mut gw = s.gateway("team-eng", &[]).await;

    // A stream in flight when the gateway is told to stop.
    let response = http_client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "stream": true,
            "messages": [{"role": "user", "content": "long answer"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    // Requests answered just before the stop: their events may still be queued.
    for i in 0..5 {
        let r = chat(
            &gw.url,
            Some(&key),
            &chat_body("gpt-4o", &format!("last {i}")),
        )
        .await;
        assert_eq!(r.status, 200, "{r}");
    }
    let reader = tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => text.push_str(&String::from_utf8_lossy(&c)),
                Err(e) => return Err(format!("{e} after {text:?}")),
            }
        }
        Ok(text)
    });
    let status = gw.terminate(Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "[{}] the gateway must exit cleanly on SIGTERM, got {status}\n{}",
        s.backend,
        gw.stderr()
    );
    let text = reader.await.unwrap().unwrap_or_else(|e| {
        panic!(
            "[{}] a stream in flight was cut by the shutdown: {e}",
            s.backend
        )
    });
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "the in-flight stream must be finished before the gateway exits:\n{text}"
    );
    let events = s
        .admin
        .wait_for_events(
            &format!("team_id={team_id}&limit=100"),
            "the 6 events of the requests served before the shutdown",
            |evs| evs.len() >= 6,
        )
        .await;
    assert_eq!(events.len(), 6, "{events:?}");
    let streamed = event_of(&events, "the in-flight stream", |e| e["streamed"] == true);
    assert_eq!(
        streamed["input_tokens"], STREAM_PROMPT_TOKENS,
        "the in-flight stream's usage: {streamed}"
    );
}
