//! The built-in demo provider (`provider.kind: demo`): answers locally in
//! OpenAI's wire format, streaming included, with plausible usage, so a
//! newcomer sees the whole product work without a vendor key. Its answers say
//! plainly that they come from the demo provider, and its events are labelled
//! as demo traffic.

use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::{Value, json};

use super::Answer;

/// Pause between streamed words, so streaming is visible.
const WORD_DELAY: Duration = Duration::from_millis(15);

const ANSWER: &str = "Hello from kt's built-in demo provider! This answer was generated \
    locally; no vendor was called. Your request passed your team's policies and was recorded \
    as an event with its tokens and cost, so it shows up on the console's Dashboard.";

/// Rough token count: about four characters per token, at least one.
fn estimate_tokens(text: &str) -> i64 {
    i64::try_from(text.chars().count().div_ceil(4))
        .unwrap_or(i64::MAX)
        .max(1)
}

fn prompt_tokens(body: &Value) -> i64 {
    let messages = body.get("messages").and_then(Value::as_array);
    messages.map_or(1, |messages| {
        messages
            .iter()
            .map(|m| {
                4 + crate::proxy::message_texts(m)
                    .map(estimate_tokens)
                    .sum::<i64>()
            })
            .sum::<i64>()
            .max(1)
    })
}

pub fn chat(body: &Value, stream: bool) -> Answer {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("demo");
    let id = format!("chatcmpl-demo-{}", uuid::Uuid::new_v4().simple());
    let created = store::now_ms() / 1000;
    let usage = json!({
        "prompt_tokens": prompt_tokens(body),
        "completion_tokens": estimate_tokens(ANSWER),
        "total_tokens": prompt_tokens(body) + estimate_tokens(ANSWER),
    });
    if !stream {
        let answer = json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "kt-demo",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop",
            }],
            "usage": usage,
        });
        return Answer::Complete {
            status: StatusCode::OK,
            body: Bytes::from(answer.to_string()),
        };
    }
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let choices = if delta.is_null() {
            json!([])
        } else {
            json!([{"index": 0, "delta": delta, "finish_reason": finish}])
        };
        let value = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices, "usage": usage,
        });
        Bytes::from(format!("data: {value}\n\n"))
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
        Value::Null,
    )];
    let words: Vec<&str> = ANSWER.split_inclusive(' ').collect();
    events.extend(
        words
            .iter()
            .map(|w| chunk(json!({"content": w}), Value::Null, Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop"), Value::Null));
    events.push(chunk(Value::Null, Value::Null, usage));
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let stream = futures::stream::unfold(events.into_iter().enumerate(), |mut it| async move {
        let (i, event) = it.next()?;
        if i > 0 {
            tokio::time::sleep(WORD_DELAY).await;
        }
        Some((Ok(event), it))
    });
    Answer::Stream {
        status: StatusCode::OK,
        body: Box::pin(stream),
    }
}
