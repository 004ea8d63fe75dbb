//! The text parts of a chat request, in OpenAI and Anthropic formats.
//!
//! Both formats are handled by one walk, so a body in either shape (or a mix) is covered:
//!
//! - top-level `system`: a string, or a list of blocks (Anthropic);
//! - `messages[].content` of every message, whatever its role (`system`, `user`, `assistant`,
//!   `tool`, …): a string, or a list of parts/blocks;
//! - in such a list, every part's `text` string (`{"type": "text", "text": …}` in both
//!   formats, and any other part type that carries text), and the `content` of nested blocks
//!   such as Anthropic `tool_result` (a string or a list of text blocks);
//! - tool calls the caller sends back in the conversation: OpenAI
//!   `messages[].tool_calls[].function.arguments` (a JSON string) and every string inside an
//!   Anthropic `tool_use` block's `input`.
//!
//! [`request_texts`] and [`redact_request`] visit exactly the same strings, so what is checked
//! is what is redacted.

use serde_json::Value;

use super::Redactor;

/// Nested `content` deeper than this is not followed (real requests nest once, in
/// `tool_result`).
const MAX_DEPTH: usize = 8;

/// Every text part of a chat request (OpenAI `/v1/chat/completions` or Anthropic
/// `/v1/messages`), in document order: `system`, then each message's content.
pub fn request_texts(body: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(system) = body.get("system") {
        content_texts(system, &mut out, 0);
    }
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for m in messages {
            if let Some(c) = m.get("content") {
                content_texts(c, &mut out, 0);
            }
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                for call in calls {
                    if let Some(Value::String(args)) = call.pointer("/function/arguments") {
                        out.push(args);
                    }
                }
            }
        }
    }
    out
}

/// Every string inside a tool call's `input` (Anthropic `tool_use`).
fn input_texts<'a>(input: &'a Value, out: &mut Vec<&'a str>, depth: usize) {
    match input {
        Value::String(s) => out.push(s),
        Value::Array(items) if depth < MAX_DEPTH => {
            for item in items {
                input_texts(item, out, depth + 1);
            }
        }
        Value::Object(o) if depth < MAX_DEPTH => {
            for v in o.values() {
                input_texts(v, out, depth + 1);
            }
        }
        _ => {}
    }
}

fn redact_input(input: &mut Value, redactor: &mut Redactor, depth: usize) {
    match input {
        Value::String(s) => redact_string(s, redactor),
        Value::Array(items) if depth < MAX_DEPTH => {
            for item in items {
                redact_input(item, redactor, depth + 1);
            }
        }
        Value::Object(o) if depth < MAX_DEPTH => {
            for v in o.values_mut() {
                redact_input(v, redactor, depth + 1);
            }
        }
        _ => {}
    }
}

fn content_texts<'a>(content: &'a Value, out: &mut Vec<&'a str>, depth: usize) {
    match content {
        Value::String(s) => out.push(s),
        Value::Array(parts) if depth < MAX_DEPTH => {
            for part in parts {
                match part {
                    Value::String(s) => out.push(s),
                    Value::Object(o) => {
                        if let Some(Value::String(t)) = o.get("text") {
                            out.push(t);
                        }
                        if let Some(c) = o.get("content") {
                            content_texts(c, out, depth + 1);
                        }
                        if let Some(input) = o.get("input") {
                            input_texts(input, out, 0);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Redacts, in place, exactly the strings [`request_texts`] returns. Strings without findings
/// are left untouched (not even reallocated).
pub fn redact_request(body: &mut Value, redactor: &mut Redactor) {
    if let Some(system) = body.get_mut("system") {
        redact_content(system, redactor, 0);
    }
    if let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) {
        for m in messages {
            if let Some(c) = m.get_mut("content") {
                redact_content(c, redactor, 0);
            }
            if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
                for call in calls {
                    if let Some(Value::String(args)) = call.pointer_mut("/function/arguments") {
                        redact_string(args, redactor);
                    }
                }
            }
        }
    }
}

fn redact_string(s: &mut String, redactor: &mut Redactor) {
    if let Some(r) = redactor.redact_if_needed(s) {
        *s = r;
    }
}

fn redact_content(content: &mut Value, redactor: &mut Redactor, depth: usize) {
    match content {
        Value::String(s) => redact_string(s, redactor),
        Value::Array(parts) if depth < MAX_DEPTH => {
            for part in parts {
                match part {
                    Value::String(s) => redact_string(s, redactor),
                    Value::Object(o) => {
                        if let Some(Value::String(t)) = o.get_mut("text") {
                            redact_string(t, redactor);
                        }
                        if let Some(c) = o.get_mut("content") {
                            redact_content(c, redactor, depth + 1);
                        }
                        if let Some(input) = o.get_mut("input") {
                            redact_input(input, redactor, 0);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}
