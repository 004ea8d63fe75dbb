//! Rewriting the assistant's text in an answer, for policies that act on
//! responses: restoring redaction markers (`restore: true`) and redacting PII
//! the model wrote (`scan_responses: true`).
//!
//! Non-streamed answers are rewritten whole. Streamed answers are rewritten
//! event by event: a [`TextFilter`] per choice may hold back the end of a
//! delta (a marker or a value split across chunks) and releases it with the
//! next delta or when the choice finishes, so nothing is lost or leaked at
//! chunk boundaries.

use std::collections::HashMap;

use bytes::Bytes;
use serde_json::Value;

/// Transforms a text that arrives in pieces.
pub trait TextFilter: Send {
    /// Takes the next piece; returns what can be emitted now.
    fn push(&mut self, piece: &str) -> String;
    /// The stream of this text ended: returns whatever was held back.
    fn finish(&mut self) -> String;
    /// PII entity types redacted so far (names only).
    fn entities(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The policy engine's answer filter: restores the request's markers and
/// redacts PII the model wrote, holding back values split across pieces.
impl TextFilter for policy::AnswerFilter {
    fn push(&mut self, piece: &str) -> String {
        policy::AnswerFilter::push(self, piece)
    }

    fn finish(&mut self) -> String {
        policy::AnswerFilter::finish(self)
    }

    fn entities(&self) -> Vec<String> {
        policy::AnswerFilter::entities(self).to_vec()
    }
}

/// Adds `more` to `into`, keeping it sorted and without duplicates.
pub fn merge_entities(into: &mut Vec<String>, more: Vec<String>) {
    into.extend(more);
    into.sort();
    into.dedup();
}

/// Builds one filter per choice of an answer.
pub type FilterFactory = Box<dyn Fn() -> Box<dyn TextFilter> + Send + Sync>;

/// Rewrites the text of a complete answer: OpenAI's
/// `choices[].message.content`, Anthropic's `content[]` text blocks. Returns
/// the new body and the entity types redacted, or `None` when the body is
/// not such an answer (it is then relayed as is).
pub fn rewrite_complete(body: &[u8], make: &FilterFactory) -> Option<(Bytes, Vec<String>)> {
    let mut entities = Vec::new();
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let texts: Vec<&mut Value> = if let Some(choices) = value.get_mut("choices") {
        choices
            .as_array_mut()?
            .iter_mut()
            .filter_map(|c| c.pointer_mut("/message/content"))
            .collect()
    } else {
        value
            .get_mut("content")?
            .as_array_mut()?
            .iter_mut()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get_mut("text"))
            .collect()
    };
    for text in texts {
        if let Value::String(content) = text {
            let mut filter = make();
            let mut out = filter.push(content);
            out.push_str(&filter.finish());
            *content = out;
            merge_entities(&mut entities, filter.entities());
        }
    }
    serde_json::to_vec(&value)
        .ok()
        .map(|body| (Bytes::from(body), entities))
}

/// Most bytes buffered while waiting for the end of one SSE event.
const MAX_EVENT: usize = 4 << 20;

/// Rewrites an SSE stream event by event: OpenAI's `choices[].delta.content`
/// chunks, or Anthropic's `content_block_delta` text deltas (what a filter
/// held back is released in a delta of its own before `content_block_stop`).
pub struct SseRewriter {
    make: Option<std::sync::Arc<FilterFactory>>,
    strip_usage_only: bool,
    filters: HashMap<u64, Box<dyn TextFilter>>,
    buf: Vec<u8>,
}

impl SseRewriter {
    /// `make` builds the text filters (none: text is left alone);
    /// `strip_usage_only` drops the final usage-only chunk (`"choices": []`),
    /// which the gateway asked the provider for although the client did not.
    pub fn new(make: Option<std::sync::Arc<FilterFactory>>, strip_usage_only: bool) -> Self {
        SseRewriter {
            make,
            strip_usage_only,
            filters: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// Takes the next chunk of the upstream stream; returns the rewritten
    /// complete events it finished (possibly empty).
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = find_event_end(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end).collect();
            self.rewrite_event(&event, &mut out);
        }
        if self.buf.len() > MAX_EVENT {
            // Not SSE as we know it: stop interpreting, relay as is.
            out.append(&mut self.buf);
        }
        Bytes::from(out)
    }

    /// PII entity types the filters redacted from the answer so far.
    pub fn entities(&self) -> Vec<String> {
        let mut all = Vec::new();
        for filter in self.filters.values() {
            merge_entities(&mut all, filter.entities());
        }
        all
    }

    /// The upstream stream ended: returns what is left (a trailing partial
    /// event, as is).
    pub fn finish(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.buf))
    }

    fn rewrite_event(&mut self, event: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(event);
        let mut rewritten = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let bare = line.trim_end_matches(['\r', '\n']);
            match bare.strip_prefix("data:").map(str::trim_start) {
                Some(data) if data != "[DONE]" => match self.rewrite_data(data) {
                    Rewritten::Keep => rewritten.push_str(line),
                    Rewritten::Replace(new) => {
                        rewritten.push_str("data: ");
                        rewritten.push_str(&new);
                        rewritten.push_str(&line[bare.len()..]);
                    }
                    Rewritten::Before(event) => {
                        out.extend_from_slice(event.as_bytes());
                        rewritten.push_str(line);
                    }
                    Rewritten::Drop => return,
                },
                _ => rewritten.push_str(line),
            }
        }
        out.extend_from_slice(rewritten.as_bytes());
    }

    fn rewrite_data(&mut self, data: &str) -> Rewritten {
        let Ok(mut value) = serde_json::from_str::<Value>(data) else {
            return Rewritten::Keep;
        };
        if let Some(kind) = value.get("type").and_then(Value::as_str) {
            return self.rewrite_anthropic(kind.to_owned(), value);
        }
        let usage_only = value
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
            && value.get("usage").is_some_and(|u| !u.is_null());
        if usage_only && self.strip_usage_only {
            return Rewritten::Drop;
        }
        let Some(make) = self.make.clone() else {
            return Rewritten::Keep;
        };
        let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) else {
            return Rewritten::Keep;
        };
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            let filter = self.filters.entry(index).or_insert_with(|| make());
            let piece = match choice.pointer("/delta/content") {
                Some(Value::String(s)) => Some(filter.push(s)),
                _ => None,
            };
            let held = if finished {
                filter.finish()
            } else {
                String::new()
            };
            if piece.is_some() || !held.is_empty() {
                let mut text = piece.unwrap_or_default();
                text.push_str(&held);
                if let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) {
                    delta.insert("content".to_owned(), Value::String(text));
                }
            }
        }
        serde_json::to_string(&value).map_or(Rewritten::Keep, Rewritten::Replace)
    }
}

enum Rewritten {
    Keep,
    Replace(String),
    /// Emit this complete event first, then the original one.
    Before(String),
    Drop,
}

impl SseRewriter {
    fn rewrite_anthropic(&mut self, kind: String, mut value: Value) -> Rewritten {
        let Some(make) = self.make.clone() else {
            return Rewritten::Keep;
        };
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "content_block_delta" => {
                let Some(Value::String(text)) = value.pointer_mut("/delta/text") else {
                    return Rewritten::Keep;
                };
                let filter = self.filters.entry(index).or_insert_with(|| make());
                *text = filter.push(text);
                serde_json::to_string(&value).map_or(Rewritten::Keep, Rewritten::Replace)
            }
            "content_block_stop" => {
                let held = self
                    .filters
                    .get_mut(&index)
                    .map(|f| f.finish())
                    .unwrap_or_default();
                if held.is_empty() {
                    return Rewritten::Keep;
                }
                let delta = serde_json::json!({
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": held},
                });
                Rewritten::Before(format!("event: content_block_delta\ndata: {delta}\n\n"))
            }
            _ => Rewritten::Keep,
        }
    }
}

/// End (exclusive) of the first complete SSE event in `buf`: the blank line
/// after it (`\n\n` or `\r\n\r\n`).
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upper-cases text and holds back a trailing partial word, like a filter
    /// that must see whole values would.
    struct Upper {
        held: String,
    }

    impl TextFilter for Upper {
        fn push(&mut self, piece: &str) -> String {
            self.held.push_str(piece);
            let cut = self.held.rfind(' ').map_or(0, |i| i + 1);
            let out = self.held[..cut].to_uppercase();
            self.held.drain(..cut);
            out
        }
        fn finish(&mut self) -> String {
            std::mem::take(&mut self.held).to_uppercase()
        }
    }

    fn factory() -> FilterFactory {
        Box::new(|| {
            Box::new(Upper {
                held: String::new(),
            })
        })
    }

    fn rewrite_all(rw: &mut SseRewriter, stream: &str, size: usize) -> String {
        let mut out = Vec::new();
        for chunk in stream.as_bytes().chunks(size) {
            out.extend_from_slice(&rw.feed(chunk));
        }
        out.extend_from_slice(&rw.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strips_the_usage_only_chunk_the_client_did_not_ask_for() {
        let usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\n";
        let stream = delta("hi", Some("stop")) + usage + "data: [DONE]\n\n";
        let stripped = rewrite_all(&mut SseRewriter::new(None, true), &stream, 5);
        assert_eq!(stripped, delta("hi", Some("stop")) + "data: [DONE]\n\n");
        let kept = rewrite_all(&mut SseRewriter::new(None, false), &stream, 5);
        assert_eq!(
            kept, stream,
            "without filters nor stripping the stream passes unchanged"
        );
    }

    fn delta(content: &str, finish: Option<&str>) -> String {
        let v = serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]});
        format!("data: {v}\n\n")
    }

    #[test]
    fn rewrites_streams_across_any_chunking_without_losing_text() {
        let stream = [
            delta("hel", None),
            delta("lo wor", None),
            delta("ld", Some("stop")),
        ]
        .concat()
            + "data: [DONE]\n\n";
        for size in [1, 3, 10, stream.len()] {
            let mut rw = SseRewriter::new(Some(std::sync::Arc::new(factory())), false);
            let out = rewrite_all(&mut rw, &stream, size);
            let text: String = out
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|v| {
                    v["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect();
            assert_eq!(text, "HELLO WORLD", "chunk size {size}");
            assert!(out.ends_with("data: [DONE]\n\n"));
        }
    }

    #[test]
    fn rewrites_anthropic_streams_and_releases_held_text_before_the_block_stops() {
        let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let delta = |t: &str| {
            event(
                "content_block_delta",
                serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}),
            )
        };
        let stream = [
            event("message_start", serde_json::json!({"type": "message_start", "message": {"usage": {"input_tokens": 3}}})),
            delta("hel"),
            delta("lo wor"),
            delta("ld"),
            event("content_block_stop", serde_json::json!({"type": "content_block_stop", "index": 0})),
            event("message_stop", serde_json::json!({"type": "message_stop"})),
        ]
        .concat();
        for size in [1, 4, stream.len()] {
            let mut rw = SseRewriter::new(Some(std::sync::Arc::new(factory())), false);
            let out = rewrite_all(&mut rw, &stream, size);
            let text: String = out
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(text, "HELLO WORLD", "chunk size {size}");
            let stop = out.find("content_block_stop").unwrap();
            assert!(
                out[..stop].contains("WORLD"),
                "held text comes before the block stops"
            );
        }
    }

    #[test]
    fn rewrites_complete_anthropic_answers() {
        let body = br#"{"type":"message","content":[{"type":"text","text":"hi there"},{"type":"tool_use","id":"x","name":"f","input":{}}],"usage":{"input_tokens":1}}"#;
        let v: Value =
            serde_json::from_slice(&rewrite_complete(body, &factory()).unwrap().0).unwrap();
        assert_eq!(v["content"][0]["text"], "HI THERE");
        assert_eq!(v["content"][1]["name"], "f");
    }

    #[test]
    fn rewrites_complete_answers_and_leaves_other_bodies_alone() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hi there"}}],"usage":{"prompt_tokens":1}}"#;
        let (out, _) = rewrite_complete(body, &factory()).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "HI THERE");
        assert_eq!(v["usage"]["prompt_tokens"], 1);
        assert!(rewrite_complete(b"not json", &factory()).is_none());
    }
}
