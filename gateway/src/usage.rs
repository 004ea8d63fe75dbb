//! Token usage as providers report it: in the JSON body of a non-streamed
//! answer, or in the final chunk of an SSE stream (OpenAI sends it there when
//! asked with `stream_options.include_usage`).

use serde_json::Value;

/// Most bytes of one SSE line kept while looking for usage; longer lines are
/// relayed untouched but not inspected.
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cached ones included.
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// The part of `input_tokens` read from the provider's prompt cache
    /// (priced at the cached-input price).
    pub cached_input_tokens: i64,
}

/// The counts one answer or stream event carries (`None`: not in it).
struct Partial {
    input: Option<i64>,
    output: Option<i64>,
    cached: Option<i64>,
}

/// Reads usage from an answer or stream event. OpenAI: `prompt_tokens`
/// (cached ones included, `prompt_tokens_details.cached_tokens`) and
/// `completion_tokens`. Anthropic: `input_tokens` plus the cache's
/// `cache_read_input_tokens` and `cache_creation_input_tokens`, and
/// `output_tokens` (also under `message`, as in `message_start`).
fn partial_from_json(value: &Value) -> Option<Partial> {
    let usage = value
        .get("usage")
        .or_else(|| value.get("message")?.get("usage"))
        .filter(|u| u.is_object())?;
    let int = |name: &str| usage.get(name).and_then(Value::as_i64);
    if let Some(prompt) = int("prompt_tokens") {
        return Some(Partial {
            input: Some(prompt),
            output: int("completion_tokens"),
            cached: usage
                .pointer("/prompt_tokens_details/cached_tokens")
                .and_then(Value::as_i64),
        });
    }
    let cache_read = int("cache_read_input_tokens");
    Some(Partial {
        input: int("input_tokens")
            .map(|n| n + cache_read.unwrap_or(0) + int("cache_creation_input_tokens").unwrap_or(0)),
        output: int("output_tokens").or_else(|| int("completion_tokens")),
        cached: cache_read,
    })
}

/// Rough characters per token, for estimates only.
pub const CHARS_PER_TOKEN: usize = 4;

/// Characters of answer text in one stream event: OpenAI's
/// `choices[].delta.content`, Anthropic's `delta.text`.
fn answer_text_len(value: &Value) -> usize {
    let openai: usize = value
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/delta/content").and_then(Value::as_str))
        .map(|t| t.chars().count())
        .sum();
    let anthropic = value
        .pointer("/delta/text")
        .and_then(Value::as_str)
        .map_or(0, |t| t.chars().count());
    openai + anthropic
}

/// Usage of a complete (non-streamed) answer in either format.
pub fn from_json(value: &Value) -> Option<Usage> {
    let p = partial_from_json(value)?;
    Some(Usage {
        input_tokens: p.input.unwrap_or(0),
        output_tokens: p.output.unwrap_or(0),
        cached_input_tokens: p.cached.unwrap_or(0),
    })
}

/// Watches an SSE byte stream chunk by chunk (chunk boundaries may fall
/// anywhere, even inside a UTF-8 character) and remembers the last usage
/// seen. It never holds more than one partial line.
#[derive(Debug, Default)]
pub struct SseUsage {
    partial: Vec<u8>,
    overflow: bool,
    usage: Option<Usage>,
    /// Characters of answer text seen (for an estimate when the stream ends
    /// before the provider reported the output count).
    text_chars: usize,
    /// Whether the provider reported the output count (OpenAI's final chunk,
    /// Anthropic's `message_delta`).
    output_reported: bool,
}

impl SseUsage {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(pos);
            if self.overflow {
                self.overflow = false;
                self.partial.clear();
            } else if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut full = std::mem::take(&mut self.partial);
                full.extend_from_slice(line);
                self.line(&full);
            }
            rest = &tail[1..];
        }
        if !self.overflow {
            if self.partial.len() + rest.len() > MAX_LINE {
                self.overflow = true;
                self.partial.clear();
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            return;
        }
        // OpenAI sends usage once, in the final chunk; Anthropic sends the
        // input count in `message_start` and the (cumulative) output count in
        // `message_delta`: keep the latest value of each.
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        self.text_chars += answer_text_len(&value);
        if let Some(Partial {
            input,
            output,
            cached,
        }) = partial_from_json(&value)
        {
            let usage = self.usage.get_or_insert_with(Usage::default);
            if let Some(n) = input {
                usage.input_tokens = n;
            }
            if let Some(n) = cached {
                usage.cached_input_tokens = n;
            }
            if let Some(n) = output {
                usage.output_tokens = n;
                // `message_start` carries a placeholder output count of 1.
                self.output_reported |=
                    value.get("type").and_then(Value::as_str) != Some("message_start");
            }
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The usage to charge: what the provider reported, completed by an
    /// estimate when the stream ended early (client gone, upstream cut)
    /// before the provider said how much it produced. Returns whether any
    /// part is an estimate. A request is never free because it was cut.
    pub fn charge(&self, input_estimate: i64) -> (Usage, bool) {
        let reported = self.usage.unwrap_or_default();
        if self.output_reported {
            return (reported, false);
        }
        let usage = Usage {
            cached_input_tokens: reported.cached_input_tokens,
            input_tokens: if reported.input_tokens > 0 {
                reported.input_tokens
            } else {
                input_estimate
            },
            output_tokens: reported
                .output_tokens
                .max(i64::try_from(self.text_chars.div_ceil(CHARS_PER_TOKEN)).unwrap_or(i64::MAX)),
        };
        (usage, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"Hé\"}}],\"usage\":null}\n\n\
        data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34}}\n\n\
        data: [DONE]\n\n";

    #[test]
    fn finds_usage_whatever_the_chunking() {
        let bytes = STREAM.as_bytes();
        for size in [1, 2, 3, 7, 64, bytes.len()] {
            let mut sse = SseUsage::default();
            for chunk in bytes.chunks(size) {
                sse.feed(chunk);
            }
            assert_eq!(
                sse.usage(),
                Some(Usage {
                    input_tokens: 12,
                    output_tokens: 34,
                    cached_input_tokens: 0,
                }),
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn merges_anthropic_stream_usage() {
        let stream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        let mut sse = SseUsage::default();
        for chunk in stream.as_bytes().chunks(7) {
            sse.feed(chunk);
        }
        assert_eq!(
            sse.usage(),
            Some(Usage {
                input_tokens: 25,
                output_tokens: 15,
                cached_input_tokens: 0,
            })
        );
    }

    #[test]
    fn a_cut_stream_is_charged_an_estimate_never_zero() {
        let mut sse = SseUsage::default();
        sse.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"abcdefghijkl\"}}]}\n\n");
        // The client left before the final usage chunk.
        assert_eq!(
            sse.charge(40),
            (
                Usage {
                    input_tokens: 40,
                    output_tokens: 3,
                    cached_input_tokens: 0,
                },
                true
            )
        );
        sse.feed(
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":9}}\n\n",
        );
        assert_eq!(
            sse.charge(40),
            (
                Usage {
                    input_tokens: 50,
                    output_tokens: 9,
                    cached_input_tokens: 0,
                },
                false
            )
        );

        // Anthropic: the input is known from message_start, the output is not yet.
        let mut sse = SseUsage::default();
        sse.feed(b"data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
        sse.feed(b"data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"12345678\"}}\n\n");
        assert_eq!(
            sse.charge(7),
            (
                Usage {
                    input_tokens: 25,
                    output_tokens: 2,
                    cached_input_tokens: 0,
                },
                true
            )
        );
    }

    #[test]
    fn cached_input_tokens_in_both_formats() {
        let openai = serde_json::json!({"usage": {"prompt_tokens": 100, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 60}}});
        assert_eq!(
            from_json(&openai),
            Some(Usage {
                input_tokens: 100,
                output_tokens: 5,
                cached_input_tokens: 60
            })
        );
        let anthropic = serde_json::json!({"usage": {"input_tokens": 10, "output_tokens": 5,
            "cache_read_input_tokens": 80, "cache_creation_input_tokens": 20}});
        assert_eq!(
            from_json(&anthropic),
            Some(Usage {
                input_tokens: 110,
                output_tokens: 5,
                cached_input_tokens: 80
            })
        );
    }

    #[test]
    fn null_usage_is_not_usage() {
        let mut sse = SseUsage::default();
        sse.feed(b"data: {\"usage\":null}\n\n");
        assert_eq!(sse.usage(), None);
    }

    #[test]
    fn reads_both_vendors_names() {
        let openai = serde_json::json!({"usage": {"prompt_tokens": 1, "completion_tokens": 2}});
        let anthropic = serde_json::json!({"usage": {"input_tokens": 3, "output_tokens": 4}});
        assert_eq!(
            from_json(&openai),
            Some(Usage {
                input_tokens: 1,
                output_tokens: 2,
                cached_input_tokens: 0,
            })
        );
        assert_eq!(
            from_json(&anthropic),
            Some(Usage {
                input_tokens: 3,
                output_tokens: 4,
                cached_input_tokens: 0,
            })
        );
    }
}
