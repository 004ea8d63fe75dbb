//! The built-in demo provider (`provider.kind: demo`): answers locally in
//! OpenAI's and Anthropic's wire formats, streaming included, with plausible usage, so a
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

/// Per-message overhead in the token estimate (role and separators).
const TOKENS_PER_MESSAGE: i64 = 4;

/// Estimated prompt tokens of a request in either format (every text the
/// policies see, the Anthropic `system` included).
fn prompt_tokens(body: &Value) -> i64 {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let texts: i64 = policy::request_texts(body)
        .into_iter()
        .map(estimate_tokens)
        .sum();
    (TOKENS_PER_MESSAGE * i64::try_from(messages).unwrap_or(0) + texts).max(1)
}

/// Streams pre-rendered SSE events with a short pause between them.
fn stream_events(events: Vec<Bytes>) -> Answer {
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

/// Anthropic Messages format (`POST /v1/messages`).
pub fn messages(body: &Value, stream: bool) -> Answer {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("demo");
    let id = format!("msg_demo_{}", uuid::Uuid::new_v4().simple());
    let input_tokens = prompt_tokens(body);
    let output_tokens = estimate_tokens(ANSWER);
    if !stream {
        let answer = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": ANSWER}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        });
        return Answer::Complete {
            status: StatusCode::OK,
            body: Bytes::from(answer.to_string()),
        };
    }
    let event = |name: &str, data: Value| Bytes::from(format!("event: {name}\ndata: {data}\n\n"));
    let mut events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            }}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    events.extend(ANSWER.split_inclusive(' ').map(|w| {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}),
        )
    }));
    events.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": output_tokens}}),
    ));
    events.push(event("message_stop", json!({"type": "message_stop"})));
    stream_events(events)
}

/// OpenAI chat completions format (`POST /v1/chat/completions`).
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
    stream_events(events)
}
