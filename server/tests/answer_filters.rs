//! Answer filters through real `kt serve` and `kt gateway run` processes, on
//! every available database backend (SPEC §4–5), OpenAI format only:
//!
//! - `pii_detection` with `action: redact` and `restore: true`: the provider
//!   (the stand-in) sees typed markers, and the caller gets its own values
//!   back wherever the model repeated a marker, in whole and in streamed
//!   answers (markers cut across SSE chunks included).
//! - `scan_responses: true`: PII the model wrote is replaced by typed markers
//!   before the caller sees it, in whole and in streamed answers (values cut
//!   across SSE chunks included); without it, answers pass unchanged.
//! - Events record the PII entity types, never the values; neither do logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use store::testing::TestDatabase;

// ---------------------------------------------------------------------------
// Harness

impl Stack {
    /// Asserts that no event, neither process's logs, and no request the
    /// stand-in received contain `values`.
    async fn assert_values_never_stored(&self, gw: &KtProcess, values: &[&str]) {
        let all = serde_json::to_string(&self.admin.events("limit=1000").await).unwrap();
        let forwarded: Vec<Value> = self
            .standin
            .requests()
            .into_iter()
            .map(|r| r.body)
            .collect();
        let forwarded = serde_json::to_string(&forwarded).unwrap();
        for value in values {
            assert!(
                !all.contains(value),
                "[{}] the PII value `{value}` must never be stored in events: {all}",
                self.backend
            );
            assert!(
                !forwarded.contains(value),
                "[{}] the PII value `{value}` reached the provider: {forwarded}",
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

/// A `pii_detection` policy with `action`, and `restore` / `scan_responses`
/// written only when given.
fn pii(name: &str, action: &str, restore: Option<bool>, scan_responses: Option<bool>) -> String {
    let mut p = format!("  - name: {name}\n    type: pii_detection\n    action: {action}\n");
    if let Some(r) = restore {
        p.push_str(&format!("    restore: {r}\n"));
    }
    if let Some(s) = scan_responses {
        p.push_str(&format!("    scan_responses: {s}\n"));
    }
    p.push_str("    enabled: true\n");
    p
}

/// `POST {gateway}/v1/chat/completions` with `"stream": true` (and
/// `stream_options.include_usage` when `include_usage`): the status and the
/// raw SSE body.
async fn chat_stream(gateway: &str, key: &str, body: &Value, include_usage: bool) -> (u16, String) {
    let mut body = body.clone();
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    let response = http_client()
        .post(format!("{gateway}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The assistant's text of a non-streamed answer (asserting a 200).
fn answer_text(r: &Reply, what: &str) -> String {
    assert_eq!(r.status, 200, "{what}: expected 200, got {r}");
    r.body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no choices[0].message.content in {r}"))
        .to_owned()
}

/// Asserts a well-formed streamed answer (200, ends with `[DONE]`) and
/// returns its reassembled text.
fn streamed_text(status: u16, raw: &str, what: &str) -> String {
    assert_eq!(status, 200, "{what}: expected 200, got {status}:\n{raw}");
    assert!(
        raw.trim_end().ends_with("data: [DONE]"),
        "{what}: the stream must end with `data: [DONE]`:\n{raw}"
    );
    sse_content(raw)
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

/// The text of the last message the stand-in received (a string, or its
/// text parts joined).
fn forwarded_last_user_text(s: &Stack) -> String {
    let last = s
        .standin
        .requests()
        .pop()
        .expect("the stand-in received nothing");
    last_user_text(&last.body)
}

/// Whether some piece boundary falls strictly inside one of `needles` in the
/// text the `pieces` make up (i.e. a needle was cut across SSE chunks).
fn cut_inside(pieces: &[String], needles: &[String]) -> bool {
    let text = pieces.concat();
    let mut boundaries = Vec::new();
    let mut at = 0;
    for p in pieces {
        at += p.len();
        boundaries.push(at);
    }
    needles.iter().any(|needle| {
        text.match_indices(needle.as_str()).any(|(start, m)| {
            let end = start + m.len();
            boundaries.iter().any(|b| *b > start && *b < end)
        })
    })
}

/// The event's `pii_entities`, asserted to be a list of strings.
fn pii_entities(e: &Value, what: &str) -> Vec<String> {
    let list = e["pii_entities"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: `pii_entities` must be a list: {}", pretty(e)));
    list.iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| {
                    panic!("{what}: `pii_entities` must hold strings: {}", pretty(e))
                })
                .to_owned()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. restore: true puts the caller's values back into answers

#[tokio::test(flavor = "multi_thread")]
async fn restore_puts_the_callers_values_back_into_answers() {
    for db in store::testing::backends().await {
        restore(&db).await;
        db.cleanup().await;
    }
}

const CALLER_EMAIL: &str = "jane.roe@example.com";
const CALLER_PHONE: &str = "+1 415 555 0199";

async fn restore(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let gw = s
        .policy_gateway(
            "pii-restore",
            &[pii("pii-restore", "redact", Some(true), None)],
        )
        .await;
    // "Please write to [EMAIL_1] soon": cut every 5 bytes, the marker comes
    // out as " [EMA" + "IL_1]".
    let prompt = format!(
        "Please write to {CALLER_EMAIL} soon, or call {CALLER_PHONE} tonight. Again: {CALLER_EMAIL}"
    );
    let request = chat_body("gpt-4o", &prompt);

    // Non-streamed: the model repeats the markers; the caller gets the values.
    s.standin.set_answering(Answering::echo(5));
    let r = chat(&gw.url, Some(&eng.key), &request).await;
    let got = answer_text(&r, &format!("[{b}] restore, non-streamed"));
    let forwarded = forwarded_last_user_text(&s);
    let m = markers(&forwarded);
    assert!(
        m.len() == 3 && m[0].starts_with("[EMAIL_") && m[1].starts_with("[PHONE_") && m[0] == m[2],
        "[{b}] the provider must see [EMAIL_n], [PHONE_n], [EMAIL_n] instead of the values, got \
         {m:?} in `{forwarded}`"
    );
    assert_eq!(
        forwarded,
        format!(
            "Please write to {} soon, or call {} tonight. Again: {}",
            m[0], m[1], m[2]
        ),
        "[{b}] only the values may change in the forwarded prompt"
    );
    let sent = s.standin.answers().pop().unwrap();
    assert_eq!(
        sent.text(),
        forwarded,
        "[{b}] (harness) the stand-in must echo the forwarded text"
    );
    assert_eq!(
        got, prompt,
        "[{b}] restore, non-streamed: the model answered `{forwarded}`; the caller must get the \
         original values back wherever a marker was repeated"
    );

    // Streamed, the markers cut across SSE chunks at various places.
    let mut requests = 1;
    for (chunk_bytes, include_usage) in [(5, false), (3, true), (1, false), (7, false)] {
        let what = format!("[{b}] restore, streamed in {chunk_bytes}-byte chunks");
        s.standin.set_answering(Answering::echo(chunk_bytes));
        let (status, raw) = chat_stream(&gw.url, &eng.key, &request, include_usage).await;
        requests += 1;
        let got = streamed_text(status, &raw, &what);
        let sent = s.standin.answers().pop().unwrap();
        assert!(
            sent.streamed,
            "{what}: (harness) expected a streamed answer"
        );
        assert!(
            cut_inside(&sent.pieces, &m),
            "{what}: (harness) no marker was cut across chunks: {:?}",
            sent.pieces
        );
        if chunk_bytes == 5 {
            assert!(
                sent.pieces.iter().any(|p| p.ends_with("[EMA")),
                "{what}: (harness) expected a chunk ending in `[EMA`: {:?}",
                sent.pieces
            );
        }
        assert_eq!(
            got, prompt,
            "{what}: the model streamed {:?}; the caller must get the original values back",
            sent.pieces
        );
        assert!(
            markers(&got).is_empty(),
            "{what}: no marker may reach the caller: `{got}`"
        );
        if include_usage {
            assert!(
                raw.contains("\"prompt_tokens\""),
                "{what}: the client asked for usage and must get it:\n{raw}"
            );
        }
    }

    // One event per request: redact, with the entity types and no values.
    let events = s.gateway_events("pii-restore", requests).await;
    for e in &events {
        let what = format!("[{b}] restore event");
        assert_eq!(e["verdict"], "redact", "{what}: {}", pretty(e));
        assert_eq!(e["policy"], "pii-restore", "{what}: {}", pretty(e));
        assert_eq!(e["reason"], "pii_detected:email", "{what}: {}", pretty(e));
        assert_eq!(e["upstream_status"], 200, "{what}: {}", pretty(e));
        let entities = pii_entities(e, &what);
        assert!(
            entities.iter().any(|x| x == "email") && entities.iter().any(|x| x == "phone"),
            "{what}: pii_entities must name `email` and `phone`: {}",
            pretty(e)
        );
    }
    assert_eq!(
        events.iter().filter(|e| e["streamed"] == true).count(),
        requests - 1,
        "[{b}] streamed requests must be recorded as streamed: {}",
        pretty(&events)
    );
    s.assert_values_never_stored(&gw, &[CALLER_EMAIL, CALLER_PHONE])
        .await;
}

// ---------------------------------------------------------------------------
// 2. scan_responses: true redacts PII the model wrote

const LEAKED_EMAIL: &str = "leak.person@example.com";
const LEAKED_PHONE: &str = "+1 415 555 0134";
/// The model's answer, cut inside both values.
const LEAKY_PIECES: &[&str] = &[
    "Sure, contact leak.per",
    "son@exam",
    "ple.com now",
    " or call +1 415",
    " 555 0134 today.",
];
/// Parts of the leaked values that must not reach the caller either.
const LEAKED_FRAGMENTS: &[&str] = &["leak", "person@", "example.com", "415", "0134"];

fn leaky_answer() -> String {
    LEAKY_PIECES.concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_responses_redacts_pii_the_model_wrote() {
    for db in store::testing::backends().await {
        scan_responses(&db).await;
        db.cleanup().await;
    }
}

/// Asserts that `text` is the leaky answer with typed markers in place of
/// both values; returns the markers.
fn assert_leak_redacted(text: &str, what: &str) -> Vec<String> {
    for v in [LEAKED_EMAIL, LEAKED_PHONE]
        .iter()
        .chain(LEAKED_FRAGMENTS.iter())
    {
        assert!(
            !text.contains(v),
            "{what}: `{v}` (PII the model wrote) reached the caller: `{text}`"
        );
    }
    let m = markers(text);
    assert!(
        m.len() == 2 && m[0].starts_with("[EMAIL_") && m[1].starts_with("[PHONE_"),
        "{what}: expected an [EMAIL_n] and a [PHONE_n] marker in place of the values, got {m:?} \
         in `{text}`"
    );
    assert_eq!(
        text,
        format!("Sure, contact {} now or call {} today.", m[0], m[1]),
        "{what}: only the values may change in the answer"
    );
    m
}

async fn scan_responses(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let clean = chat_body("gpt-4o", "How do I reach support?");

    for action in ["redact", "block"] {
        let name = format!("scan-{action}");
        let gw = s
            .policy_gateway(&name, &[pii(&name, action, None, Some(true))])
            .await;
        let mut requests = 0;

        // Non-streamed.
        s.standin.set_answering(Answering::fixed(LEAKY_PIECES));
        let r = chat(&gw.url, Some(&eng.key), &clean).await;
        requests += 1;
        let what = format!("[{b}] scan_responses (action: {action}), non-streamed");
        let whole = answer_text(&r, &what);
        let raw = serde_json::to_string(&r.body).unwrap();
        assert!(
            !raw.contains(LEAKED_EMAIL) && !raw.contains(LEAKED_PHONE),
            "{what}: a value reached the caller: {raw}"
        );
        let m = assert_leak_redacted(&whole, &what);

        // Streamed: the values cut across chunks, in several ways.
        let cuts = [
            Answering::fixed(LEAKY_PIECES),
            Answering::fixed_sized(&leaky_answer(), 3),
            Answering::fixed_sized(&leaky_answer(), 1),
        ];
        for (i, answering) in cuts.into_iter().enumerate() {
            let what = format!("[{b}] scan_responses (action: {action}), streamed, cut #{i}");
            s.standin.set_answering(answering);
            let (status, raw) = chat_stream(&gw.url, &eng.key, &clean, i == 1).await;
            requests += 1;
            let sent = s.standin.answers().pop().unwrap();
            assert!(
                cut_inside(
                    &sent.pieces,
                    &[LEAKED_EMAIL.to_owned(), LEAKED_PHONE.to_owned()]
                ),
                "{what}: (harness) the values must be cut across chunks: {:?}",
                sent.pieces
            );
            for v in [LEAKED_EMAIL, LEAKED_PHONE]
                .iter()
                .chain(LEAKED_FRAGMENTS.iter())
            {
                assert!(
                    !raw.contains(v),
                    "{what}: `{v}` (PII the model wrote, streamed as {:?}) reached the caller:\n{raw}",
                    sent.pieces
                );
            }
            let text = streamed_text(status, &raw, &what);
            assert_leak_redacted(&text, &what);
            assert_eq!(
                text, whole,
                "{what}: the streamed answer must read exactly like the non-streamed one"
            );
            assert_eq!(
                markers(&text),
                m,
                "{what}: the same markers as in the non-streamed answer"
            );
        }

        // The request side is unchanged: a prompt with PII is still refused
        // (block) or redacted (redact).
        let before = s.standin.count();
        s.standin.set_answering(Answering::Canned);
        let r = chat(
            &gw.url,
            Some(&eng.key),
            &chat_body("gpt-4o", "Mail the report to jane.roe@example.com"),
        )
        .await;
        requests += 1;
        if action == "block" {
            assert_eq!(
                r.status, 409,
                "[{b}] scan_responses with action: block must still block PII in requests: {r}"
            );
            assert_eq!(
                s.standin.count(),
                before,
                "[{b}] a blocked request was forwarded"
            );
        } else {
            assert_eq!(r.status, 200, "[{b}] action: redact: {r}");
            assert_eq!(s.standin.count(), before + 1);
            assert!(
                !forwarded_last_user_text(&s).contains("jane.roe@example.com"),
                "[{b}] action: redact must still redact requests"
            );
        }

        let events = s.gateway_events(&name, requests).await;
        for e in &events {
            eprintln!(
                "[{b}] {name} event: verdict {} reason {} pii_entities {}",
                e["verdict"], e["reason"], e["pii_entities"]
            );
        }
        // Requests without PII whose answers had PII redacted are recorded
        // as redactions, naming the entity types (never the values).
        for e in &events[1..] {
            assert_eq!(e["verdict"], "redact", "[{b}] {name}: {}", pretty(e));
            let entities = pii_entities(e, &format!("[{b}] {name}"));
            assert!(
                entities.iter().any(|x| x == "email") && entities.iter().any(|x| x == "phone"),
                "[{b}] {name}: the answer's redacted entity types are recorded: {}",
                pretty(e)
            );
        }
        let newest = &events[0];
        assert_eq!(
            newest["reason"],
            "pii_detected:email",
            "[{b}] {name}: {}",
            pretty(newest)
        );
        assert!(
            pii_entities(newest, &format!("[{b}] {name}"))
                .iter()
                .any(|x| x == "email"),
            "[{b}] {name}: the event of a request with an e-mail must name `email`: {}",
            pretty(newest)
        );
        s.assert_values_never_stored(&gw, &[LEAKED_EMAIL, LEAKED_PHONE, "jane.roe@example.com"])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_and_scan_responses_together() {
    for db in store::testing::backends().await {
        restore_and_scan(&db).await;
        db.cleanup().await;
    }
}

async fn restore_and_scan(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let gw = s
        .policy_gateway(
            "restore-scan",
            &[pii("restore-scan", "redact", Some(true), Some(true))],
        )
        .await;
    let request = chat_body("gpt-4o", &format!("Reply to {CALLER_EMAIL} please"));
    // The model repeats the caller's marker and writes a new address.
    let pieces = ["Hi [EMA", "IL_1], ask leak.per", "son@example.com too."];

    s.standin.set_answering(Answering::fixed(&pieces));
    let r = chat(&gw.url, Some(&eng.key), &request).await;
    let forwarded = forwarded_last_user_text(&s);
    assert_eq!(
        forwarded, "Reply to [EMAIL_1] please",
        "[{b}] (precondition) the first e-mail of a request must become [EMAIL_1]"
    );
    let whole = answer_text(&r, &format!("[{b}] restore + scan_responses, non-streamed"));
    let mut results = vec![("non-streamed".to_owned(), whole)];
    for include_usage in [false, true] {
        let (status, raw) = chat_stream(&gw.url, &eng.key, &request, include_usage).await;
        let what =
            format!("[{b}] restore + scan_responses, streamed (include_usage: {include_usage})");
        assert!(
            !raw.contains(LEAKED_EMAIL) && !raw.contains("leak"),
            "{what}: PII the model wrote reached the caller:\n{raw}"
        );
        results.push((what.clone(), streamed_text(status, &raw, &what)));
    }
    for (what, text) in &results {
        let m = markers(text);
        assert!(
            m.len() == 1 && m[0].starts_with("[EMAIL_") && m[0] != "[EMAIL_1]",
            "[{b}] {what}: the leaked address must become a new [EMAIL_n] marker (not the \
             caller's [EMAIL_1]), got {m:?} in `{text}`"
        );
        assert_eq!(
            *text,
            format!("Hi {CALLER_EMAIL}, ask {} too.", m[0]),
            "[{b}] {what}: the caller's own value must come back and the leaked one must not"
        );
    }
    let events = s.gateway_events("restore-scan", 3).await;
    for e in &events {
        assert_eq!(e["verdict"], "redact", "[{b}] {}", pretty(e));
        assert!(
            pii_entities(e, &format!("[{b}] restore-scan"))
                .iter()
                .any(|x| x == "email"),
            "[{b}] restore + scan: pii_entities must name `email`: {}",
            pretty(e)
        );
    }
    s.assert_values_never_stored(&gw, &[CALLER_EMAIL, LEAKED_EMAIL])
        .await;
}

// ---------------------------------------------------------------------------
// 3. Control: without scan_responses, answers pass unchanged

#[tokio::test(flavor = "multi_thread")]
async fn without_scan_responses_answers_pass_unchanged() {
    for db in store::testing::backends().await {
        no_scan(&db).await;
        db.cleanup().await;
    }
}

async fn no_scan(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let clean = chat_body("gpt-4o", "How do I reach support?");
    let expected = leaky_answer();

    for (name, policy) in [
        (
            "no-scan-redact",
            pii("no-scan-redact", "redact", None, None),
        ),
        (
            "no-scan-block",
            pii("no-scan-block", "block", None, Some(false)),
        ),
        (
            "no-scan-restore",
            pii("no-scan-restore", "redact", Some(true), None),
        ),
    ] {
        let gw = s.policy_gateway(name, &[policy]).await;
        s.standin.set_answering(Answering::fixed(LEAKY_PIECES));
        let r = chat(&gw.url, Some(&eng.key), &clean).await;
        let what = format!("[{b}] {name}, non-streamed");
        assert_eq!(
            answer_text(&r, &what),
            expected,
            "{what}: without scan_responses the answer must pass unchanged"
        );
        for include_usage in [false, true] {
            let (status, raw) = chat_stream(&gw.url, &eng.key, &clean, include_usage).await;
            let what = format!("[{b}] {name}, streamed (include_usage: {include_usage})");
            assert_eq!(
                streamed_text(status, &raw, &what),
                expected,
                "{what}: without scan_responses the answer must pass unchanged"
            );
        }
        let events = s.gateway_events(name, 3).await;
        for e in &events {
            assert_eq!(e["verdict"], "allow", "[{b}] {name}: {}", pretty(e));
        }
    }
}
