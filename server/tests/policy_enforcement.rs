//! Policy enforcement through real `kt serve` and `kt gateway run` processes,
//! on every available database backend: the four policy types
//! (`pii_detection`, `model_filter`, `cost_limit`, `rate_limit`), what the
//! caller gets back, what the provider (the stand-in) receives, and what each
//! request's event records (`GET /v1/events`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

// ---------------------------------------------------------------------------
// Harness: a stack (kt serve, an org-admin token, the stand-in) and policy
// configs built from small snippets.

impl Stack {
    /// The newest event of gateway `name` once it has `n` events.
    async fn newest_event(&self, name: &str, n: usize) -> Value {
        self.gateway_events(name, n).await.remove(0)
    }

    /// Asserts that no event, and neither process's logs, contain `values`.
    async fn assert_values_never_stored(&self, gw: &KtProcess, values: &[&str]) {
        let all = serde_json::to_string(&self.admin.events("limit=1000").await).unwrap();
        for value in values {
            assert!(
                !all.contains(value),
                "[{}] the PII value `{value}` must never be stored in events: {all}",
                self.backend
            );
            for (label, logs) in [("gateway", gw.stderr()), ("serve", self.serve.stderr())] {
                assert!(
                    !logs.contains(value),
                    "[{}] the PII value `{value}` appears in the {label} logs:\n{logs}",
                    self.backend
                );
            }
        }
    }
}

fn pii(name: &str, action: &str) -> String {
    format!("  - name: {name}\n    type: pii_detection\n    action: {action}\n    enabled: true\n")
}

fn pii_disabled(name: &str, action: &str) -> String {
    format!("  - name: {name}\n    type: pii_detection\n    action: {action}\n    enabled: false\n")
}

/// `allowed` and `denied` are YAML flow lists (`["gpt-4o*"]`).
fn model_filter(name: &str, allowed: &str, denied: Option<&str>) -> String {
    let denied = denied.map_or(String::new(), |d| format!("    denied_models: {d}\n"));
    format!(
        "  - name: {name}\n    type: model_filter\n    allowed_models: {allowed}\n{denied}    enabled: true\n"
    )
}

fn cost_limit(name: &str, monthly_limit: &str, action: &str) -> String {
    format!(
        "  - name: {name}\n    type: cost_limit\n    monthly_limit: {monthly_limit}\n    action: {action}\n    enabled: true\n"
    )
}

fn rate_limit(name: &str, rpm: u32, tpm: Option<u32>) -> String {
    let tpm = tpm.map_or(String::new(), |t| {
        format!("    max_tokens_per_minute: {t}\n")
    });
    format!(
        "  - name: {name}\n    type: rate_limit\n    max_requests_per_minute: {rpm}\n{tpm}    action: block\n    enabled: true\n"
    )
}

// ---------------------------------------------------------------------------
// Requests, answers and events

/// A chat request with the given `messages`.
fn chat_messages(model: &str, messages: Value) -> Value {
    json!({"model": model, "messages": messages})
}

/// Asserts a 200 carrying the stand-in's answer.
fn assert_relayed(r: &Reply, what: &str) {
    assert_eq!(r.status, 200, "{what}: expected 200, got {r}");
    assert_eq!(
        r.body["choices"][0]["message"]["content"], STANDIN_CONTENT,
        "{what}: the caller must get the provider's answer: {r}"
    );
}

/// Asserts a refusal: `status`, `error.code`, `error.policy` and a message.
fn assert_refused(r: &Reply, status: u16, code: &str, policy: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: expected {status}, got {r}");
    assert_eq!(r.body["error"]["code"], code, "{what}: error.code: {r}");
    assert_eq!(
        r.body["error"]["policy"], policy,
        "{what}: error.policy: {r}"
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: a refusal must explain itself in error.message: {r}"
    );
}

/// Asserts a 409 policy violation (`type: policy_violation`, `code: input_blocked`).
fn assert_blocked(r: &Reply, policy: &str, what: &str) {
    assert_refused(r, 409, "input_blocked", policy, what);
    assert_eq!(
        r.body["error"]["type"], "policy_violation",
        "{what}: error.type: {r}"
    );
}

/// Asserts an event's verdict, policy and reason.
fn assert_event(e: &Value, verdict: &str, policy: &str, reason: &str, what: &str) {
    assert_eq!(
        e["verdict"],
        verdict,
        "{what}: event verdict: {}",
        pretty(e)
    );
    assert_eq!(e["policy"], policy, "{what}: event policy: {}", pretty(e));
    assert_eq!(e["reason"], reason, "{what}: event reason: {}", pretty(e));
}

/// The `Retry-After` header in seconds, asserted to be within 1..=60.
fn retry_after(r: &Reply, what: &str) -> u64 {
    let raw = r.headers.get("retry-after");
    let secs = raw
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(
        secs.is_some_and(|s| (1..=60).contains(&s)),
        "{what}: a 429 needs a Retry-After of 1..=60 seconds, got {raw:?} ({r})"
    );
    secs.unwrap()
}

/// The typed markers (`[EMAIL_1]`, `[CREDIT_CARD_2]`, …) in `text`, in order.
fn markers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open..];
        let Some(close) = rest.find(']') else { break };
        let inner = &rest[1..close];
        let typed = inner.rsplit_once('_').is_some_and(|(label, n)| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
        });
        if typed {
            found.push(rest[..=close].to_owned());
            rest = &rest[close + 1..];
        } else {
            rest = &rest[1..];
        }
    }
    found
}

/// The text of the `i`-th forwarded message (a string, or its text parts joined).
fn forwarded_text(body: &Value, i: usize) -> String {
    let content = &body["messages"][i]["content"];
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        other => panic!("forwarded message {i} has no text content: {other}"),
    }
}

/// Cost of one stand-in answer on gpt-4o in USD: 1234 × $2.50/M + 567 × $10/M.
const STANDIN_COST_GPT_4O: f64 = 0.008_755;

// ---------------------------------------------------------------------------
// 1. pii_detection, action: block

#[tokio::test(flavor = "multi_thread")]
async fn pii_block_refuses_409_and_never_reaches_the_provider() {
    for db in store::testing::backends().await {
        pii_block(&db).await;
        db.cleanup().await;
    }
}

async fn pii_block(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let gw = s
        .policy_gateway("pii-block", &[pii("pii-protection", "block")])
        .await;
    let b = s.backend;

    // A clean request goes through (so the refusals below are not vacuous).
    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "Say hello")).await;
    assert_relayed(&r, &format!("[{b}] a request without PII"));
    let e = s.newest_event("pii-block", 1).await;
    assert_eq!(e["verdict"], "allow", "[{b}] clean request: {e}");

    // E-mail in a plain user message.
    let r = chat(
        &gw.url,
        Some(&eng.key),
        &chat_body(
            "gpt-4o",
            "Please forward the report to jane.doe@example.com today",
        ),
    )
    .await;
    assert_blocked(&r, "pii-protection", &format!("[{b}] e-mail in the prompt"));
    let e = s.newest_event("pii-block", 2).await;
    assert_event(
        &e,
        "block",
        "pii-protection",
        "pii_detected:email",
        "e-mail in the prompt",
    );
    assert_eq!(e["model"], "gpt-4o", "{e}");
    assert_eq!(e["team_id"], eng.team_id.as_str(), "{e}");

    // E-mail inside an OpenAI content-part array (in the second part).
    let r = chat(
        &gw.url,
        Some(&eng.key),
        &chat_messages(
            "gpt-4o",
            json!([{"role": "user", "content": [
                {"type": "text", "text": "Here is a note."},
                {"type": "text", "text": "Send it to bob@example.com tomorrow"}
            ]}]),
        ),
    )
    .await;
    assert_blocked(
        &r,
        "pii-protection",
        &format!("[{b}] e-mail in a content part"),
    );
    let e = s.newest_event("pii-block", 3).await;
    assert_event(
        &e,
        "block",
        "pii-protection",
        "pii_detected:email",
        "e-mail in a content part",
    );

    // E-mail in the system message, with a clean user message.
    let r = chat(
        &gw.url,
        Some(&eng.key),
        &chat_messages(
            "gpt-4o",
            json!([
                {"role": "system", "content": "The user's address is carol@example.net"},
                {"role": "user", "content": "Write a short greeting"}
            ]),
        ),
    )
    .await;
    assert_blocked(
        &r,
        "pii-protection",
        &format!("[{b}] e-mail in the system message"),
    );
    let e = s.newest_event("pii-block", 4).await;
    assert_event(
        &e,
        "block",
        "pii-protection",
        "pii_detected:email",
        "e-mail in the system message",
    );

    // Another entity: the reason names it.
    let r = chat(
        &gw.url,
        Some(&eng.key),
        &chat_body(
            "gpt-4o",
            "Charge the card 4111 1111 1111 1111 for the order",
        ),
    )
    .await;
    assert_blocked(&r, "pii-protection", &format!("[{b}] card number"));
    let e = s.newest_event("pii-block", 5).await;
    assert_event(
        &e,
        "block",
        "pii-protection",
        "pii_detected:credit_card",
        "card number",
    );

    assert_eq!(
        s.standin.count(),
        1,
        "[{b}] only the clean request may reach the provider"
    );
    s.assert_values_never_stored(
        &gw,
        &[
            "jane.doe@example.com",
            "bob@example.com",
            "carol@example.net",
            "4111 1111 1111 1111",
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------
// 2. pii_detection, action: redact

#[tokio::test(flavor = "multi_thread")]
async fn pii_redact_forwards_typed_markers_instead_of_values() {
    for db in store::testing::backends().await {
        pii_redact(&db).await;
        db.cleanup().await;
    }
}

async fn pii_redact(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let gw = s
        .policy_gateway("pii-redact", &[pii("pii-redaction", "redact")])
        .await;
    let b = s.backend;

    // One value twice and another once, in one message.
    let r = chat(
        &gw.url,
        Some(&eng.key),
        &chat_body(
            "gpt-4o",
            "Contact bob@example.com or bob@example.com, cc alice@example.org please",
        ),
    )
    .await;
    assert_relayed(&r, &format!("[{b}] redacted request"));
    let seen = s.standin.requests();
    assert_eq!(
        seen.len(),
        1,
        "[{b}] the redacted request must be forwarded"
    );
    let forwarded = serde_json::to_string(&seen[0].body).unwrap();
    for value in ["bob@example.com", "alice@example.org"] {
        assert!(
            !forwarded.contains(value),
            "[{b}] the provider received the value `{value}`: {forwarded}"
        );
    }
    let text = forwarded_text(&seen[0].body, 0);
    let m = markers(&text);
    assert_eq!(
        m.len(),
        3,
        "[{b}] expected three typed markers in the forwarded prompt, got {m:?}: `{text}`"
    );
    assert!(
        m.iter().all(|m| m.starts_with("[EMAIL_")),
        "[{b}] e-mails must become [EMAIL_n] markers: `{text}`"
    );
    assert_eq!(
        m[0], m[1],
        "[{b}] the same value twice in one request must get the same marker: `{text}`"
    );
    assert_ne!(
        m[0], m[2],
        "[{b}] different values must get different markers: `{text}`"
    );
    assert_eq!(
        text,
        format!("Contact {} or {}, cc {} please", m[0], m[1], m[2]),
        "[{b}] only the values may change in the forwarded prompt"
    );
    let e = s.newest_event("pii-redact", 1).await;
    assert_event(
        &e,
        "redact",
        "pii-redaction",
        "pii_detected:email",
        "redacted request",
    );
    assert_eq!(e["upstream_status"], 200, "{e}");

    // The same value in the system message and in a content part.
    let r = chat(
        &gw.url,
        Some(&eng.key),
        &chat_messages(
            "gpt-4o",
            json!([
                {"role": "system", "content": "Reply to dave@example.com only"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Summarise this for dave@example.com"}
                ]}
            ]),
        ),
    )
    .await;
    assert_relayed(
        &r,
        &format!("[{b}] redacted system message and content part"),
    );
    let seen = s.standin.requests();
    assert_eq!(
        seen.len(),
        2,
        "[{b}] the second redacted request must be forwarded"
    );
    let forwarded = serde_json::to_string(&seen[1].body).unwrap();
    assert!(
        !forwarded.contains("dave@example.com"),
        "[{b}] the provider received the value from a system message or content part: {forwarded}"
    );
    let system = forwarded_text(&seen[1].body, 0);
    let user = forwarded_text(&seen[1].body, 1);
    assert!(
        seen[1].body["messages"][1]["content"].is_array(),
        "[{b}] the content-part array must be forwarded as an array: {forwarded}"
    );
    let (ms, mu) = (markers(&system), markers(&user));
    assert!(
        ms.len() == 1 && mu.len() == 1 && ms[0].starts_with("[EMAIL_"),
        "[{b}] one [EMAIL_n] marker expected in each message: system `{system}`, user `{user}`"
    );
    assert_eq!(
        ms[0], mu[0],
        "[{b}] the same value in two messages of one request must get the same marker"
    );
    assert_eq!(system, format!("Reply to {} only", ms[0]));
    assert_eq!(user, format!("Summarise this for {}", mu[0]));
    let e = s.newest_event("pii-redact", 2).await;
    assert_event(
        &e,
        "redact",
        "pii-redaction",
        "pii_detected:email",
        "redacted system message",
    );
    s.assert_values_never_stored(
        &gw,
        &["bob@example.com", "alice@example.org", "dave@example.com"],
    )
    .await;
}

// ---------------------------------------------------------------------------
// 3–4. pii_detection, action: warn and action: escalate

#[tokio::test(flavor = "multi_thread")]
async fn pii_warn_forwards_and_escalate_holds() {
    for db in store::testing::backends().await {
        pii_warn_and_escalate(&db).await;
        db.cleanup().await;
    }
}

async fn pii_warn_and_escalate(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;
    let prompt = "Please forward the report to jane.doe@example.com today";

    // warn: forwarded unchanged, recorded as a warning.
    let warn_gw = s
        .policy_gateway("pii-warn", &[pii("pii-watch", "warn")])
        .await;
    let r = chat(&warn_gw.url, Some(&eng.key), &chat_body("gpt-4o", prompt)).await;
    assert_relayed(&r, &format!("[{b}] PII with action: warn"));
    let seen = s.standin.requests();
    assert_eq!(seen.len(), 1, "[{b}] a warned request must be forwarded");
    assert_eq!(
        seen[0].body["messages"][0]["content"], prompt,
        "[{b}] action: warn must forward the original text"
    );
    let e = s.newest_event("pii-warn", 1).await;
    assert_event(
        &e,
        "warn",
        "pii-watch",
        "pii_detected:email",
        "action: warn",
    );
    assert_eq!(e["upstream_status"], 200, "{e}");
    assert_eq!(
        e["input_tokens"], STANDIN_PROMPT_TOKENS,
        "a warned request is metered like any other: {e}"
    );

    // escalate: held (409, escalation_required), never forwarded.
    let esc_gw = s
        .policy_gateway("pii-escalate", &[pii("pii-review", "escalate")])
        .await;
    let r = chat(&esc_gw.url, Some(&eng.key), &chat_body("gpt-4o", prompt)).await;
    assert_refused(
        &r,
        409,
        "escalation_required",
        "pii-review",
        &format!("[{b}] PII with action: escalate"),
    );
    assert_eq!(
        s.standin.count(),
        1,
        "[{b}] an escalated request must not reach the provider"
    );
    let e = s.newest_event("pii-escalate", 1).await;
    assert_event(
        &e,
        "escalate",
        "pii-review",
        "pii_detected:email",
        "action: escalate",
    );
    s.assert_values_never_stored(&esc_gw, &["jane.doe@example.com"])
        .await;
    s.assert_values_never_stored(&warn_gw, &["jane.doe@example.com"])
        .await;
}

// ---------------------------------------------------------------------------
// 5–6. enabled: false, and evaluation order

#[tokio::test(flavor = "multi_thread")]
async fn disabled_policies_are_skipped_and_the_first_block_decides() {
    for db in store::testing::backends().await {
        enabled_and_order(&db).await;
        db.cleanup().await;
    }
}

async fn enabled_and_order(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;
    let prompt = chat_body("gpt-4o", "Mail the summary to jane.doe@example.com");

    // A disabled block policy before a model filter that allows the model.
    let gw = s
        .policy_gateway(
            "disabled",
            &[
                pii_disabled("pii-off", "block"),
                model_filter("models", "[gpt-4o]", None),
            ],
        )
        .await;
    let r = chat(&gw.url, Some(&eng.key), &prompt).await;
    assert_relayed(&r, &format!("[{b}] a disabled block policy"));
    assert_eq!(s.standin.count(), 1);
    let e = s.newest_event("disabled", 1).await;
    assert_eq!(
        e["verdict"],
        "allow",
        "[{b}] disabled policy: {}",
        pretty(&e)
    );
    assert_ne!(
        e["policy"],
        "pii-off",
        "[{b}] disabled policy: {}",
        pretty(&e)
    );

    // warn, then block: the block wins and is named.
    let gw = s
        .policy_gateway(
            "warn-then-block",
            &[pii("pii-warn", "warn"), pii("pii-block", "block")],
        )
        .await;
    let r = chat(&gw.url, Some(&eng.key), &prompt).await;
    assert_blocked(&r, "pii-block", &format!("[{b}] warn, then block"));
    let e = s.newest_event("warn-then-block", 1).await;
    assert_event(
        &e,
        "block",
        "pii-block",
        "pii_detected:email",
        "warn, then block",
    );

    // block, then block: the first one is reported.
    let gw = s
        .policy_gateway(
            "block-then-block",
            &[pii("pii-first", "block"), pii("pii-second", "block")],
        )
        .await;
    let r = chat(&gw.url, Some(&eng.key), &prompt).await;
    assert_blocked(&r, "pii-first", &format!("[{b}] block, then block"));
    let e = s.newest_event("block-then-block", 1).await;
    assert_event(
        &e,
        "block",
        "pii-first",
        "pii_detected:email",
        "block, then block",
    );

    assert_eq!(
        s.standin.count(),
        1,
        "[{b}] blocked requests must not reach the provider"
    );
}

// ---------------------------------------------------------------------------
// 7. model_filter: globs and denials

#[tokio::test(flavor = "multi_thread")]
async fn model_filter_globs_allow_and_denials_win() {
    for db in store::testing::backends().await {
        model_filters(&db).await;
        db.cleanup().await;
    }
}

async fn model_filters(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;

    // allowed_models: ["gpt-4o*"]
    let gw = s
        .policy_gateway("glob", &[model_filter("models", r#"["gpt-4o*"]"#, None)])
        .await;
    for model in ["gpt-4o-mini", "gpt-4o"] {
        let r = chat(&gw.url, Some(&eng.key), &chat_body(model, "hi")).await;
        assert_relayed(
            &r,
            &format!("[{b}] `{model}` under allowed_models [gpt-4o*]"),
        );
        let last = s.standin.requests().pop().unwrap();
        assert_eq!(
            last.body["model"], model,
            "the model must be forwarded as asked"
        );
    }
    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-3.5-turbo", "hi")).await;
    assert_blocked(
        &r,
        "models",
        &format!("[{b}] gpt-3.5-turbo outside the glob"),
    );
    let e = s.newest_event("glob", 3).await;
    assert_event(
        &e,
        "block",
        "models",
        "model_not_allowed",
        "model outside the glob",
    );
    assert_eq!(e["model"], "gpt-3.5-turbo", "{e}");
    assert_eq!(s.standin.count(), 2);

    // denied_models: [gpt-4o-mini] wins over the glob.
    let gw = s
        .policy_gateway(
            "glob-deny",
            &[model_filter(
                "models-no-mini",
                r#"["gpt-4o*"]"#,
                Some("[gpt-4o-mini]"),
            )],
        )
        .await;
    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o-mini", "hi")).await;
    assert_blocked(
        &r,
        "models-no-mini",
        &format!("[{b}] gpt-4o-mini denied although the glob allows it"),
    );
    let e = s.newest_event("glob-deny", 1).await;
    assert_event(
        &e,
        "block",
        "models-no-mini",
        "model_not_allowed",
        "denied model",
    );
    assert_eq!(e["model"], "gpt-4o-mini", "{e}");
    assert_eq!(
        s.standin.count(),
        2,
        "[{b}] a denied model must not reach the provider"
    );
    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hi")).await;
    assert_relayed(
        &r,
        &format!("[{b}] gpt-4o is still allowed next to the denial"),
    );
}

// ---------------------------------------------------------------------------
// 8. cost_limit

/// A request capped at 100 output tokens: the gateway reserves a request's
/// worst case (prompt estimate + max_tokens at the output price) against the
/// budget before forwarding it, so small caps need small `max_tokens`.
fn capped_body(model: &str, text: &str) -> Value {
    let mut body = chat_body(model, text);
    body["max_tokens"] = json!(100);
    body
}

/// Sends requests on gpt-4o until one is answered 402 (waiting up to ~6 s
/// after the second success for the spend to be counted). Returns the number
/// of successes and the 402. Fails if more than 3 requests succeed.
async fn spend_until_refused(s: &Stack, gw: &KtProcess, key: &str) -> (usize, Reply) {
    let mut ok = 0;
    let mut deadline: Option<Instant> = None;
    loop {
        let r = chat(
            &gw.url,
            Some(key),
            &capped_body("gpt-4o", "Spend some money"),
        )
        .await;
        match r.status {
            200 => {
                ok += 1;
                assert!(
                    ok <= 3,
                    "[{}] monthly_limit 0.01 with ≈$0.0088 per request: request {ok} still succeeded \
                     (the cap must refuse once spend reaches $0.01, i.e. from the third request on)",
                    s.backend
                );
                if ok == 2 {
                    deadline = Some(Instant::now() + Duration::from_secs(6));
                }
            }
            402 => return (ok, r),
            _ => panic!(
                "[{}] spending towards the cap: expected 200 or 402, got {r}",
                s.backend
            ),
        }
        if let Some(deadline) = deadline {
            assert!(
                Instant::now() < deadline,
                "[{}] no 402 within 6 s of spending ≥ $0.01 ({ok} requests succeeded)",
                s.backend
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_limit_block_answers_402_once_the_budget_is_spent() {
    for db in store::testing::backends().await {
        cost_block(&db).await;
        db.cleanup().await;
    }
}

async fn cost_block(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;
    let gw = s
        .policy_gateway("cost-block", &[cost_limit("cost-cap", "0.01", "block")])
        .await;

    let (ok, r) = spend_until_refused(&s, &gw, &eng.key).await;
    eprintln!("[{b}] cost cap: {ok} request(s) succeeded before the 402");
    assert!(
        ok >= 2,
        "[{b}] the first two requests (≈$0.0175 in total, the first ≈$0.0088 < $0.01) must succeed; \
         only {ok} did before: {r}"
    );
    assert_refused(
        &r,
        402,
        "budget_exceeded",
        "cost-cap",
        &format!("[{b}] budget spent"),
    );
    assert_eq!(
        s.standin.count(),
        ok,
        "[{b}] a request refused for budget must not reach the provider"
    );

    // The cap holds.
    let again = chat(&gw.url, Some(&eng.key), &capped_body("gpt-4o", "More")).await;
    assert_refused(
        &again,
        402,
        "budget_exceeded",
        "cost-cap",
        &format!("[{b}] budget still spent"),
    );
    assert_eq!(s.standin.count(), ok);

    let events = s.gateway_events("cost-block", ok + 2).await;
    let allowed: Vec<&Value> = events.iter().filter(|e| e["verdict"] == "allow").collect();
    let blocked: Vec<&Value> = events.iter().filter(|e| e["verdict"] == "block").collect();
    assert_eq!(allowed.len(), ok, "[{b}] events: {}", pretty(&events));
    assert_eq!(blocked.len(), 2, "[{b}] events: {}", pretty(&events));
    for e in &allowed {
        let cost = e["cost_usd"].as_f64().unwrap_or(-1.0);
        assert!(
            (cost - STANDIN_COST_GPT_4O).abs() < 1e-6,
            "[{b}] 1234 + 567 tokens on gpt-4o cost ${STANDIN_COST_GPT_4O}: {e}"
        );
    }
    for e in &blocked {
        assert_event(e, "block", "cost-cap", "budget_exceeded", "budget spent");
        assert_eq!(e["team_id"], eng.team_id.as_str(), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_limit_reserves_the_worst_case_so_concurrency_cannot_overspend() {
    for db in store::testing::backends().await {
        cost_concurrency(&db).await;
        db.cleanup().await;
    }
}

async fn cost_concurrency(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;
    // $0.05 cap; each request asks for at most 1000 output tokens, so the
    // gateway reserves ≈$0.0100 (1000 × $10/Mtok plus the prompt estimate),
    // more than it really costs ($0.008755: the stand-in reports 1234 + 567
    // tokens). Reservations therefore bound the spend exactly: at most
    // floor(0.05 / 0.008755) = 5 requests can ever be admitted, however many
    // arrive at once.
    let gw = s
        .policy_gateway("cost-race", &[cost_limit("cost-cap", "0.05", "block")])
        .await;
    // Uncapped, a request may cost ≈$0.041 (4096 output tokens): refused up
    // front under a $0.01 cap even with nothing spent.
    let small = s
        .policy_gateway("cost-small", &[cost_limit("cost-cap", "0.01", "block")])
        .await;
    let r = chat(&small.url, Some(&eng.key), &chat_body("gpt-4o", "hi")).await;
    assert_refused(
        &r,
        402,
        "budget_exceeded",
        "cost-cap",
        &format!("[{b}] worst case over the cap"),
    );
    assert_eq!(
        s.standin.count(),
        0,
        "[{b}] refused before reaching the provider"
    );

    let mut body = chat_body("gpt-4o", "race");
    body["max_tokens"] = json!(1000);
    let answers =
        futures::future::join_all((0..30).map(|_| chat(&gw.url, Some(&eng.key), &body))).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let refused = answers.iter().filter(|r| r.status == 402).count();
    eprintln!("[{b}] 30 concurrent requests under a $0.05 cap: {ok} answered, {refused} refused");
    assert_eq!(
        ok + refused,
        30,
        "[{b}] every request is answered 200 or 402"
    );
    assert!(ok >= 4, "[{b}] the cap admits what fits ({ok} admitted)");
    let spent = ok as f64 * 0.008755;
    assert!(
        spent <= 0.05,
        "[{b}] {ok} requests were admitted: spend ${spent:.6} passed the $0.05 cap"
    );
    assert_eq!(
        s.standin.count(),
        ok,
        "[{b}] refused requests never reach the provider"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_limit_warn_lets_requests_through_and_records_warnings() {
    for db in store::testing::backends().await {
        cost_warn(&db).await;
        db.cleanup().await;
    }
}

async fn cost_warn(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;
    let gw = s
        .policy_gateway("cost-warn", &[cost_limit("cost-watch", "0.01", "warn")])
        .await;

    // Keep spending past the cap until a warning shows up (6 s at most after
    // the spend reaches $0.01, i.e. after the second request).
    let mut sent = 0;
    let mut deadline = None;
    let events = loop {
        let r = chat(&gw.url, Some(&eng.key), &capped_body("gpt-4o", "Spend")).await;
        sent += 1;
        assert_relayed(
            &r,
            &format!("[{b}] request {sent} under cost_limit action: warn"),
        );
        if sent == 2 {
            deadline = Some(Instant::now() + Duration::from_secs(6));
        }
        if sent >= 4 {
            let events = s.gateway_events("cost-warn", sent).await;
            if events.iter().filter(|e| e["verdict"] == "warn").count() >= 2 {
                break events;
            }
        }
        if let Some(deadline) = deadline {
            assert!(
                Instant::now() < deadline,
                "[{b}] {sent} requests, ≈${:.4} spent on a $0.01 cap with action: warn, \
                 but fewer than two events carry verdict `warn`:\n{}",
                sent as f64 * STANDIN_COST_GPT_4O,
                pretty(&s.admin.events("gateway_id=cost-warn&limit=1000").await)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    assert_eq!(
        s.standin.count(),
        sent,
        "[{b}] every request must reach the provider"
    );
    let oldest = events.last().unwrap();
    assert_eq!(
        oldest["verdict"], "allow",
        "[{b}] the first request is under the cap: {oldest}"
    );
    for e in events.iter().filter(|e| e["verdict"] != "allow") {
        assert_event(
            e,
            "warn",
            "cost-watch",
            "budget_exceeded",
            "cost cap, action: warn",
        );
        assert_eq!(e["upstream_status"], 200, "{e}");
    }
}

// ---------------------------------------------------------------------------
// 9. rate_limit

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_refuses_429_past_requests_per_minute() {
    for db in store::testing::backends().await {
        requests_per_minute(&db).await;
        db.cleanup().await;
    }
}

async fn requests_per_minute(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;
    let gw = s
        .policy_gateway("rpm", &[rate_limit("rpm-2", 2, None)])
        .await;

    for i in 1..=2 {
        let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hi")).await;
        assert_relayed(&r, &format!("[{b}] request {i} of 2 allowed per minute"));
    }
    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hi")).await;
    assert_refused(
        &r,
        429,
        "rate_limit_exceeded",
        "rpm-2",
        &format!("[{b}] third request with max_requests_per_minute: 2"),
    );
    retry_after(&r, &format!("[{b}] requests per minute"));
    assert_eq!(
        s.standin.count(),
        2,
        "[{b}] a rate-limited request must not reach the provider"
    );
    let e = s.newest_event("rpm", 3).await;
    assert_event(&e, "block", "rpm-2", "rate_limited", "requests per minute");
    assert_eq!(e["team_id"], eng.team_id.as_str(), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_refuses_429_past_tokens_per_minute() {
    for db in store::testing::backends().await {
        tokens_per_minute(&db).await;
        db.cleanup().await;
    }
}

async fn tokens_per_minute(db: &TestDatabase) {
    let s = start_stack(db).await;
    let eng = s.team_with_key("Engineering", "eng").await;
    let b = s.backend;
    let gw = s
        .policy_gateway("tpm", &[rate_limit("tpm-1000", 1000, Some(1000))])
        .await;

    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hi")).await;
    assert_relayed(
        &r,
        &format!("[{b}] first request under max_tokens_per_minute"),
    );
    let r = chat(&gw.url, Some(&eng.key), &chat_body("gpt-4o", "hi")).await;
    assert_refused(
        &r,
        429,
        "rate_limit_exceeded",
        "tpm-1000",
        &format!(
            "[{b}] a request after one that used {} tokens, with max_tokens_per_minute: 1000",
            STANDIN_PROMPT_TOKENS + STANDIN_COMPLETION_TOKENS
        ),
    );
    retry_after(&r, &format!("[{b}] tokens per minute"));
    assert_eq!(s.standin.count(), 1);
    let e = s.newest_event("tpm", 2).await;
    assert_event(&e, "block", "tpm-1000", "rate_limited", "tokens per minute");
}

// ---------------------------------------------------------------------------
// 10. Limits are per team

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_per_team() {
    for db in store::testing::backends().await {
        per_team(&db).await;
        db.cleanup().await;
    }
}

async fn per_team(db: &TestDatabase) {
    let s = start_stack(db).await;
    let a = s.team_with_key("Team A", "team-a").await;
    let t_b = s.team_with_key("Team B", "team-b").await;
    let b = s.backend;

    // Budget: A spends its cap; B's first request on the same gateway passes.
    let gw = s
        .policy_gateway("shared-cost", &[cost_limit("cost-cap", "0.01", "block")])
        .await;
    let (ok, r) = spend_until_refused(&s, &gw, &a.key).await;
    assert_refused(
        &r,
        402,
        "budget_exceeded",
        "cost-cap",
        &format!("[{b}] team A's budget"),
    );
    let r = chat(&gw.url, Some(&t_b.key), &capped_body("gpt-4o", "hi")).await;
    assert_relayed(
        &r,
        &format!("[{b}] team B after team A spent its own budget"),
    );
    assert_eq!(s.standin.count(), ok + 1);

    // Rate: A hits its limit; B still gets its own two requests.
    let gw = s
        .policy_gateway("shared-rpm", &[rate_limit("rpm-2", 2, None)])
        .await;
    for i in 1..=2 {
        let r = chat(&gw.url, Some(&a.key), &chat_body("gpt-4o", "hi")).await;
        assert_relayed(&r, &format!("[{b}] team A request {i}"));
    }
    let r = chat(&gw.url, Some(&a.key), &chat_body("gpt-4o", "hi")).await;
    assert_refused(
        &r,
        429,
        "rate_limit_exceeded",
        "rpm-2",
        &format!("[{b}] team A's third"),
    );
    for i in 1..=2 {
        let r = chat(&gw.url, Some(&t_b.key), &chat_body("gpt-4o", "hi")).await;
        assert_relayed(
            &r,
            &format!("[{b}] team B request {i} after team A hit its rate limit"),
        );
    }
    let r = chat(&gw.url, Some(&t_b.key), &chat_body("gpt-4o", "hi")).await;
    assert_refused(
        &r,
        429,
        "rate_limit_exceeded",
        "rpm-2",
        &format!("[{b}] team B's third"),
    );

    let events = s.gateway_events("shared-rpm", 6).await;
    for (team, name) in [(&a, "A"), (&t_b, "B")] {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e["team_id"] == team.team_id.as_str())
            .collect();
        assert_eq!(
            mine.len(),
            3,
            "[{b}] team {name}'s events: {}",
            pretty(&events)
        );
        assert_eq!(
            mine.iter().filter(|e| e["verdict"] == "allow").count(),
            2,
            "[{b}] team {name}: {}",
            pretty(&mine)
        );
        let blocked: Vec<&&Value> = mine.iter().filter(|e| e["verdict"] == "block").collect();
        assert_eq!(blocked.len(), 1, "[{b}] team {name}: {}", pretty(&mine));
        assert_event(
            blocked[0],
            "block",
            "rpm-2",
            "rate_limited",
            "per-team rate limit",
        );
    }
}
