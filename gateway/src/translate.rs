//! Serving an OpenAI chat request (`POST /v1/chat/completions`) with an
//! Anthropic target (`POST /v1/messages`), streamed or not, tool calls
//! included. Pure functions over `serde_json::Value` bodies and SSE bytes: no
//! IO here; the proxy calls them around the upstream request.
//!
//! - [`chat_request_to_messages`]: OpenAI chat request → Anthropic Messages
//!   request, or a caller-facing message naming the field that cannot be
//!   translated (meant for a 400).
//! - [`messages_response_to_chat`]: Anthropic answer → OpenAI
//!   `chat.completion`.
//! - [`error_to_openai`]: Anthropic error body (any status) → OpenAI error
//!   body `{"error": {"message", "type", "param", "code"}}`.
//! - [`StreamTranslator`]: Anthropic SSE stream → OpenAI
//!   `chat.completion.chunk` SSE stream, fed chunk by chunk (boundaries may
//!   fall anywhere, even inside a UTF-8 character or between `\r` and `\n`).
//!
//! Not translated (dropped silently, since the answer keeps its meaning):
//! `logprobs`, `top_logprobs`, `logit_bias`, `seed`, `frequency_penalty`,
//! `presence_penalty`, `store`, `metadata`, `service_tier`, `prediction`,
//! `reasoning_effort`, `verbosity`, `stream_options`, `response_format` of type
//! `text` or `json_object`, message `name`s, `top_p: 1`. Refused (dropping
//! would change the answer): `n` > 1, `response_format` `json_schema`, legacy
//! `functions` / `function_call` and `role: "function"`, audio output
//! (`modalities` with `audio`, `audio`), `web_search_options`, audio inputs and
//! OpenAI file ids, non-function tools.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// `max_tokens` sent when the caller set no limit (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Highest `temperature` Anthropic accepts (OpenAI accepts up to 2).
const MAX_TEMPERATURE: f64 = 1.0;

/// Longest SSE line buffered while translating a stream.
const MAX_LINE: usize = 16 << 20;

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// A field that is present and not `null`.
fn field<'a>(req: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    req.get(name).filter(|v| !v.is_null())
}

fn unsupported(what: impl std::fmt::Display) -> String {
    format!("{what} cannot be sent to an Anthropic model")
}

/// Translates an OpenAI chat completions request into an Anthropic Messages
/// request. The error is a message for the caller naming the offending field.
pub fn chat_request_to_messages(body: &Value) -> Result<Value, String> {
    let req = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    refuse_meaning_changes(req)?;

    let mut out = Map::new();
    if let Some(model) = req.get("model") {
        out.insert("model".to_owned(), model.clone());
    }
    let (system, messages) = convert_messages(req.get("messages"))?;
    if !system.is_empty() {
        out.insert("system".to_owned(), Value::String(system));
    }
    out.insert("messages".to_owned(), Value::Array(messages));
    out.insert("max_tokens".to_owned(), max_tokens(req)?);

    if let Some(t) = field(req, "temperature") {
        let n = t.as_f64().ok_or("`temperature` must be a number")?;
        let t = if n > MAX_TEMPERATURE {
            json!(MAX_TEMPERATURE)
        } else {
            t.clone()
        };
        out.insert("temperature".to_owned(), t);
    }
    if let Some(p) = field(req, "top_p") {
        let n = p.as_f64().ok_or("`top_p` must be a number")?;
        // 1 is no nucleus sampling at all; some Anthropic models refuse
        // `temperature` and `top_p` together, and SDKs often send both.
        if n < 1.0 {
            out.insert("top_p".to_owned(), p.clone());
        }
    }
    if let Some(stop) = stop_sequences(req)? {
        out.insert("stop_sequences".to_owned(), stop);
    }
    if let Some(stream) = field(req, "stream") {
        let stream = stream.as_bool().ok_or("`stream` must be a boolean")?;
        out.insert("stream".to_owned(), Value::Bool(stream));
    }
    let user = field(req, "user").or_else(|| field(req, "safety_identifier"));
    if let Some(user) = user.and_then(Value::as_str).filter(|u| !u.is_empty()) {
        out.insert("metadata".to_owned(), json!({ "user_id": user }));
    }
    let tools = convert_tools(req)?;
    if !tools.is_empty() {
        if let Some(choice) = tool_choice(req)? {
            out.insert("tool_choice".to_owned(), choice);
        }
        out.insert("tools".to_owned(), Value::Array(tools));
    }
    Ok(Value::Object(out))
}

/// Fields that cannot be dropped without changing the answer.
fn refuse_meaning_changes(req: &Map<String, Value>) -> Result<(), String> {
    if let Some(n) = field(req, "n") {
        match n.as_u64() {
            Some(0 | 1) => {}
            Some(_) => return Err("n > 1 is not supported for Anthropic models".to_owned()),
            None => return Err("`n` must be an integer".to_owned()),
        }
    }
    if let Some(format) = field(req, "response_format") {
        match format.get("type").and_then(Value::as_str) {
            // JSON mode requires the prompt to ask for JSON: the model is
            // asked either way.
            Some("text" | "json_object") => {}
            Some("json_schema") => {
                return Err(
                    "response_format `json_schema` (structured outputs) is not supported \
                     for Anthropic models on /v1/chat/completions: describe the JSON in the \
                     prompt, or define a tool and require it with tool_choice"
                        .to_owned(),
                );
            }
            Some(other) => return Err(unsupported(format_args!("response_format.type `{other}`"))),
            None => return Err("response_format.type is required".to_owned()),
        }
    }
    if field(req, "functions").is_some() || field(req, "function_call").is_some() {
        return Err(
            "`functions` and `function_call` (legacy function calling) are not supported for \
             Anthropic models: use `tools` and `tool_choice`"
                .to_owned(),
        );
    }
    let audio_out = field(req, "modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|m| m.as_str() == Some("audio")));
    if audio_out || field(req, "audio").is_some() {
        return Err("audio output is not supported for Anthropic models".to_owned());
    }
    if field(req, "web_search_options").is_some() {
        return Err(
            "`web_search_options` is not supported for Anthropic models on /v1/chat/completions"
                .to_owned(),
        );
    }
    Ok(())
}

fn max_tokens(req: &Map<String, Value>) -> Result<Value, String> {
    for name in ["max_completion_tokens", "max_tokens"] {
        if let Some(v) = field(req, name) {
            return match v.as_u64() {
                Some(n) if n > 0 => Ok(Value::from(n)),
                _ => Err(format!("`{name}` must be a positive integer")),
            };
        }
    }
    Ok(Value::from(DEFAULT_MAX_TOKENS))
}

fn stop_sequences(req: &Map<String, Value>) -> Result<Option<Value>, String> {
    match field(req, "stop") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(json!([s]))),
        Some(Value::Array(list)) => {
            for (i, s) in list.iter().enumerate() {
                if !s.is_string() {
                    return Err(format!("stop[{i}] must be a string"));
                }
            }
            Ok((!list.is_empty()).then(|| Value::Array(list.clone())))
        }
        Some(_) => Err("`stop` must be a string or an array of strings".to_owned()),
    }
}

fn convert_tools(req: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let Some(tools) = field(req, "tools") else {
        return Ok(Vec::new());
    };
    let tools = tools.as_array().ok_or("`tools` must be an array")?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            None | Some("function") => {}
            Some(other) => return Err(unsupported(format_args!("tools[{i}].type `{other}`"))),
        }
        let function = tool
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("tools[{i}].function is required"))?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("tools[{i}].function.name is required"))?;
        let mut converted = Map::new();
        converted.insert("name".to_owned(), Value::from(name));
        if let Some(description) = function.get("description").and_then(Value::as_str) {
            converted.insert("description".to_owned(), Value::from(description));
        }
        let schema = match function.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
            Some(Value::Object(schema)) => {
                let mut schema = schema.clone();
                // Anthropic requires the type; OpenAI accepts `{}`.
                schema
                    .entry("type")
                    .or_insert_with(|| Value::from("object"));
                Value::Object(schema)
            }
            Some(_) => return Err(format!("tools[{i}].function.parameters must be an object")),
        };
        converted.insert("input_schema".to_owned(), schema);
        out.push(Value::Object(converted));
    }
    Ok(out)
}

/// `tool_choice` and `parallel_tool_calls` (only sent with tools).
fn tool_choice(req: &Map<String, Value>) -> Result<Option<Value>, String> {
    let mut choice = match field(req, "tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            other => return Err(unsupported(format_args!("tool_choice `{other}`"))),
        }),
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or("tool_choice.function.name is required")?;
                Some(json!({"type": "tool", "name": name}))
            }
            Some(other) => return Err(unsupported(format_args!("tool_choice.type `{other}`"))),
            None => return Err("tool_choice.type is required".to_owned()),
        },
        Some(_) => return Err("`tool_choice` must be a string or an object".to_owned()),
    };
    if field(req, "parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(choice) = choice.as_object_mut()
            && choice.get("type").and_then(Value::as_str) != Some("none")
        {
            choice.insert("disable_parallel_tool_use".to_owned(), Value::Bool(true));
        }
    }
    Ok(choice)
}

/// The conversation: the system prompt (every `system` and `developer`
/// message, joined by blank lines) and the messages, consecutive messages of
/// one role merged (Anthropic requires alternating roles; tool results are
/// sent in a user message).
fn convert_messages(messages: Option<&Value>) -> Result<(String, Vec<Value>), String> {
    let messages = messages
        .and_then(Value::as_array)
        .ok_or("`messages` must be an array")?;
    let mut system = String::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let message = message
            .as_object()
            .ok_or_else(|| format!("messages[{i}] must be an object"))?;
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("messages[{i}].role is required"))?;
        let content = message.get("content").filter(|c| !c.is_null());
        let (role, blocks) = match role {
            "system" | "developer" => {
                let text = system_text(content, i)?;
                if !text.trim().is_empty() {
                    if !system.is_empty() {
                        system.push_str("\n\n");
                    }
                    system.push_str(&text);
                }
                continue;
            }
            "user" => {
                let content =
                    content.ok_or_else(|| format!("messages[{i}].content is required"))?;
                ("user", user_blocks(content, i)?)
            }
            "assistant" => ("assistant", assistant_blocks(message, content, i)?),
            "tool" => ("user", vec![tool_result(message, content, i)?]),
            "function" => {
                return Err(format!(
                    "messages[{i}].role `function` (legacy function calling) is not supported for \
                     Anthropic models: use `tool` messages"
                ));
            }
            other => return Err(format!("messages[{i}].role `{other}` is not supported")),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    // Anthropic refuses a final assistant message (a prefill) that ends with
    // whitespace.
    if let Some(("assistant", blocks)) = turns.last_mut()
        && let Some(Value::String(text)) = blocks.last_mut().and_then(|b| b.get_mut("text"))
    {
        text.truncate(text.trim_end().len());
    }
    let messages = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, messages))
}

/// The parts of a message's content (a string is one text part), with their
/// index (`None` for a string).
fn parts(
    content: &Value,
    i: usize,
) -> Result<impl Iterator<Item = (Option<usize>, &Value)>, String> {
    let (single, list): (Option<&Value>, &[Value]) = match content {
        Value::String(_) => (Some(content), &[]),
        Value::Array(list) => (None, list),
        _ => {
            return Err(format!(
                "messages[{i}].content must be a string or an array of content parts"
            ));
        }
    };
    Ok(single
        .map(|s| (None, s))
        .into_iter()
        .chain(list.iter().enumerate().map(|(j, p)| (Some(j), p))))
}

/// A part's type and path (`messages[i].content[j]`).
fn part_type(part: &Value, i: usize, j: usize) -> Result<&str, String> {
    part.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("messages[{i}].content[{j}].type is required"))
}

fn part_text<'a>(part: &'a Value, i: usize, j: usize, key: &str) -> Result<&'a str, String> {
    part.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("messages[{i}].content[{j}].{key} must be a string"))
}

fn system_text(content: Option<&Value>, i: usize) -> Result<Cow<'_, str>, String> {
    let Some(content) = content else {
        return Ok(Cow::Borrowed(""));
    };
    if let Value::String(s) = content {
        return Ok(Cow::Borrowed(s));
    }
    let mut text = String::new();
    for (j, part) in parts(content, i)? {
        let j = j.unwrap_or(0);
        match part_type(part, i, j)? {
            "text" => text.push_str(part_text(part, i, j, "text")?),
            other => {
                return Err(format!(
                    "messages[{i}].content[{j}].type `{other}` cannot be used in a system \
                     message for Anthropic models"
                ));
            }
        }
    }
    Ok(Cow::Owned(text))
}

/// A text block, or nothing for text Anthropic would refuse (empty or
/// whitespace only). A part's `cache_control` is kept.
fn push_text(blocks: &mut Vec<Value>, text: &str, part: Option<&Value>) {
    if text.trim().is_empty() {
        return;
    }
    let mut block = json!({"type": "text", "text": text});
    copy_cache_control(part, &mut block);
    blocks.push(block);
}

fn copy_cache_control(part: Option<&Value>, block: &mut Value) {
    if let (Some(cache), Some(block)) = (
        part.and_then(|p| p.get("cache_control"))
            .filter(|c| c.is_object()),
        block.as_object_mut(),
    ) {
        block.insert("cache_control".to_owned(), cache.clone());
    }
}

fn user_blocks(content: &Value, i: usize) -> Result<Vec<Value>, String> {
    let mut blocks = Vec::new();
    for (j, part) in parts(content, i)? {
        let Some(j) = j else {
            push_text(&mut blocks, part.as_str().unwrap_or_default(), None);
            continue;
        };
        match part_type(part, i, j)? {
            "text" => push_text(&mut blocks, part_text(part, i, j, "text")?, Some(part)),
            "image_url" => {
                let mut block = image_block(part, i, j)?;
                copy_cache_control(Some(part), &mut block);
                blocks.push(block);
            }
            "file" => blocks.push(file_block(part, i, j)?),
            other => {
                return Err(unsupported(format_args!(
                    "messages[{i}].content[{j}].type `{other}`"
                )));
            }
        }
    }
    Ok(blocks)
}

/// `(media type, base64 data)` of a `data:<type>;base64,<data>` URL.
fn parse_data_url<'a>(url: &'a str, path: &str) -> Result<(&'a str, &'a str), String> {
    let rest = url.strip_prefix("data:").unwrap_or(url);
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| format!("{path} is not a valid data URL"))?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or_else(|| format!("{path} must be a base64 data URL (`data:<type>;base64,...`)"))?;
    Ok((media_type, data))
}

fn image_block(part: &Value, i: usize, j: usize) -> Result<Value, String> {
    let image = part.get("image_url");
    // The URL is `image_url.url`; some clients send `image_url` as a string.
    let url = image
        .and_then(|u| u.get("url"))
        .or(image)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("messages[{i}].content[{j}].image_url.url is required"))?;
    let path = format!("messages[{i}].content[{j}].image_url.url");
    if url.starts_with("data:") {
        let (media_type, data) = parse_data_url(url, &path)?;
        if !media_type.starts_with("image/") {
            return Err(format!("{path} is not an image (`{media_type}`)"));
        }
        Ok(json!({"type": "image", "source": {
            "type": "base64", "media_type": media_type, "data": data,
        }}))
    } else if url.starts_with("https://") || url.starts_with("http://") {
        Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
    } else {
        Err(format!(
            "{path} must be an http(s) URL or a base64 data URL"
        ))
    }
}

/// A PDF sent inline (`file.file_data`) → a document block.
fn file_block(part: &Value, i: usize, j: usize) -> Result<Value, String> {
    let path = format!("messages[{i}].content[{j}].file");
    let file = part.get("file");
    if let Some(data_url) = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
    {
        let (media_type, data) = parse_data_url(data_url, &format!("{path}.file_data"))?;
        if media_type != "application/pdf" {
            return Err(unsupported(format_args!(
                "{path}.file_data of type `{media_type}` (only PDF files)"
            )));
        }
        return Ok(json!({"type": "document", "source": {
            "type": "base64", "media_type": media_type, "data": data,
        }}));
    }
    if file.and_then(|f| f.get("file_id")).is_some() {
        return Err(unsupported(format_args!(
            "{path}.file_id (an OpenAI file id; send the file as file_data)"
        )));
    }
    Err(format!("{path}.file_data is required"))
}

fn assistant_blocks(
    message: &Map<String, Value>,
    content: Option<&Value>,
    i: usize,
) -> Result<Vec<Value>, String> {
    let mut blocks = Vec::new();
    if let Some(content) = content {
        for (j, part) in parts(content, i)? {
            let Some(j) = j else {
                push_text(&mut blocks, part.as_str().unwrap_or_default(), None);
                continue;
            };
            match part_type(part, i, j)? {
                "text" => push_text(&mut blocks, part_text(part, i, j, "text")?, Some(part)),
                "refusal" => push_text(&mut blocks, part_text(part, i, j, "refusal")?, None),
                other => {
                    return Err(unsupported(format_args!(
                        "messages[{i}].content[{j}].type `{other}`"
                    )));
                }
            }
        }
    }
    let Some(calls) = message.get("tool_calls").filter(|c| !c.is_null()) else {
        return Ok(blocks);
    };
    let calls = calls
        .as_array()
        .ok_or_else(|| format!("messages[{i}].tool_calls must be an array"))?;
    for (k, call) in calls.iter().enumerate() {
        let path = format!("messages[{i}].tool_calls[{k}]");
        match call.get("type").and_then(Value::as_str) {
            None | Some("function") => {}
            Some(other) => return Err(unsupported(format_args!("{path}.type `{other}`"))),
        }
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{path}.id is required"))?;
        let function = call
            .get("function")
            .ok_or_else(|| format!("{path}.function is required"))?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{path}.function.name is required"))?;
        let input = match function.get("arguments") {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(args)) if args.trim().is_empty() => json!({}),
            Some(Value::String(args)) => serde_json::from_str::<Value>(args)
                .map_err(|e| format!("{path}.function.arguments is not valid JSON: {e}"))?,
            // Some clients send the arguments already parsed.
            Some(args) => args.clone(),
        };
        if !input.is_object() {
            return Err(format!("{path}.function.arguments must be a JSON object"));
        }
        blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(blocks)
}

fn tool_result(
    message: &Map<String, Value>,
    content: Option<&Value>,
    i: usize,
) -> Result<Value, String> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("messages[{i}].tool_call_id is required"))?;
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    let content = match content {
        None => None,
        Some(Value::String(s)) => (!s.is_empty()).then(|| Value::from(s.as_str())),
        Some(content) => {
            let mut blocks = Vec::new();
            for (j, part) in parts(content, i)? {
                let j = j.unwrap_or(0);
                match part_type(part, i, j)? {
                    "text" => push_text(&mut blocks, part_text(part, i, j, "text")?, Some(part)),
                    other => {
                        return Err(unsupported(format_args!(
                            "messages[{i}].content[{j}].type `{other}` in a tool message"
                        )));
                    }
                }
            }
            (!blocks.is_empty()).then_some(Value::Array(blocks))
        }
    };
    if let (Some(content), Some(block)) = (content, block.as_object_mut()) {
        block.insert("content".to_owned(), content);
    }
    Ok(block)
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

/// Anthropic's token counts (`message_start`, `message_delta`, answers).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct TokenCounts {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl TokenCounts {
    /// Keeps the counts `newer` reports (Anthropic's counts are cumulative).
    fn update(&mut self, newer: &TokenCounts) {
        let keep = |old: &mut Option<u64>, new: Option<u64>| {
            if new.is_some() {
                *old = new;
            }
        };
        keep(&mut self.input_tokens, newer.input_tokens);
        keep(&mut self.output_tokens, newer.output_tokens);
        keep(
            &mut self.cache_read_input_tokens,
            newer.cache_read_input_tokens,
        );
        keep(
            &mut self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
    }

    /// OpenAI's usage: every input token (cached ones included) is a prompt
    /// token.
    fn to_openai(self) -> UsageOut {
        let cached = self.cache_read_input_tokens.unwrap_or(0);
        let prompt =
            self.input_tokens.unwrap_or(0) + cached + self.cache_creation_input_tokens.unwrap_or(0);
        let completion = self.output_tokens.unwrap_or(0);
        UsageOut {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: CachedOut {
                cached_tokens: cached,
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedOut,
}

#[derive(Debug, Serialize)]
struct CachedOut {
    cached_tokens: u64,
}

/// Translates a complete (non-streamed) Anthropic answer into an OpenAI
/// `chat.completion`.
pub fn messages_response_to_chat(body: &Value) -> Value {
    let str_of = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in body
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let piece = block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                text.get_or_insert_with(String::new).push_str(piece);
            }
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": block.get("id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {
                        "name": block.get("name").cloned().unwrap_or(Value::Null),
                        "arguments": input.to_string(),
                    },
                }));
            }
            // thinking, server tools and their results: not in OpenAI's
            // format.
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !tool_calls.is_empty()
        && let Some(message) = message.as_object_mut()
    {
        message.insert("tool_calls".to_owned(), Value::Array(tool_calls));
    }
    let finish = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(finish_reason);
    let counts = body
        .get("usage")
        .and_then(|u| TokenCounts::deserialize(u).ok())
        .unwrap_or_default();
    json!({
        "id": format!("chatcmpl-{}", str_of("id")),
        "object": "chat.completion",
        "created": unix_now(),
        "model": str_of("model"),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": counts.to_openai(),
    })
}

/// OpenAI's error `code` for an Anthropic error type.
fn error_code(kind: &str) -> &str {
    match kind {
        "invalid_request_error" => "invalid_request",
        "authentication_error" => "invalid_api_key",
        "permission_error" => "permission_denied",
        "not_found_error" => "not_found",
        "rate_limit_error" => "rate_limit_exceeded",
        "overloaded_error" => "overloaded",
        "timeout_error" => "timeout",
        "api_error" => "upstream_error",
        other => other,
    }
}

/// Anthropic's error type for a status, when the body does not say.
fn error_type_for(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500.. => "api_error",
        _ => "invalid_request_error",
    }
}

/// Longest non-JSON error body kept as the message.
const MAX_ERROR_TEXT: usize = 4096;

/// OpenAI's error body for an Anthropic error (`error` is Anthropic's inner
/// `{"type", "message"}` object, or whatever stood there).
fn openai_error(status: u16, error: Option<&Value>, raw: &[u8]) -> Value {
    let (kind, message) = match error {
        Some(Value::Object(e)) => (
            e.get("type").and_then(Value::as_str),
            e.get("message").and_then(Value::as_str).map(Cow::Borrowed),
        ),
        Some(Value::String(message)) => (None, Some(Cow::Borrowed(message.as_str()))),
        _ => (None, None),
    };
    let kind = kind.unwrap_or_else(|| error_type_for(status));
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        if text.is_empty() {
            return Cow::Owned(format!("the provider answered with status {status}"));
        }
        let mut end = text.len().min(MAX_ERROR_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let cut = if end < text.len() { "…" } else { "" };
        Cow::Owned(format!("{}{cut}", &text[..end]))
    });
    json!({"error": {
        "message": message,
        "type": kind,
        "param": null,
        "code": error_code(kind),
    }})
}

/// Translates an Anthropic error answer (`{"type": "error", "error": {"type",
/// "message"}}`) into OpenAI's error body. A body that is not JSON (a proxy's
/// HTML page, say) becomes the message.
pub fn error_to_openai(status: u16, body: &[u8]) -> Value {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    openai_error(status, parsed.as_ref().and_then(|v| v.get("error")), body)
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/// A string that borrows from the event's bytes unless it has escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// One Anthropic stream event: the fields of every kind, read without
/// building a `Value` (text deltas are borrowed when they have no escapes).
#[derive(Deserialize)]
struct EventIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    message: Option<MessageIn<'a>>,
    #[serde(borrow)]
    content_block: Option<BlockIn<'a>>,
    #[serde(borrow)]
    delta: Option<DeltaIn<'a>>,
    usage: Option<TokenCounts>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct MessageIn<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    usage: Option<TokenCounts>,
}

#[derive(Deserialize)]
struct BlockIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    text: Option<Text<'a>>,
    input: Option<Value>,
}

#[derive(Deserialize)]
struct DeltaIn<'a> {
    #[serde(borrow)]
    text: Option<Text<'a>>,
    #[serde(borrow)]
    partial_json: Option<Text<'a>>,
    #[serde(borrow)]
    stop_reason: Option<Text<'a>>,
}

#[derive(Serialize)]
struct ChunkOut<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChoiceOut<'a>],
    /// `null` on every chunk but the last when the client asked for usage
    /// (as OpenAI does), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<UsageOut>>,
}

#[derive(Serialize)]
struct ChoiceOut<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// A tool_use block of the stream.
#[derive(Debug, Clone, Copy)]
struct ToolBlock {
    /// Anthropic's content block index.
    block: u64,
    /// OpenAI's tool call index (tool blocks counted from 0).
    call: u32,
    /// Whether any argument text was sent.
    sent_arguments: bool,
}

/// Translates an Anthropic SSE stream into OpenAI `chat.completion.chunk`
/// SSE lines (`data: {...}\n\n`), ending with `data: [DONE]\n\n` exactly
/// once: at `message_stop`, or in [`StreamTranslator::finish`] when the
/// upstream stream ended without it. A stream cut before Anthropic said why
/// the answer stopped (no `message_delta`, no `error`) ends with an error line
/// before `[DONE]`, so that the client does not take a partial answer for a
/// complete one.
pub struct StreamTranslator {
    model: String,
    include_usage: bool,
    /// `chatcmpl-` + Anthropic's message id.
    id: String,
    created: u64,
    /// The current partial line.
    line: Vec<u8>,
    /// Skipping the rest of a line that was too long.
    overflow: bool,
    /// The data of the current event (its `data:` lines).
    data: Vec<u8>,
    tools: Vec<ToolBlock>,
    counts: TokenCounts,
    /// The first chunk (`role: assistant`) was sent.
    started: bool,
    /// The `finish_reason` chunk was sent.
    finished: bool,
    /// An error line was sent.
    failed: bool,
    /// `[DONE]` was sent: anything after is ignored.
    done: bool,
}

impl StreamTranslator {
    /// `model` is reported in every chunk; `include_usage` adds the final
    /// usage chunk (`choices: []`), as OpenAI's `stream_options.include_usage`.
    pub fn new(model: &str, include_usage: bool) -> Self {
        StreamTranslator {
            model: model.to_owned(),
            include_usage,
            id: String::from("chatcmpl-"),
            created: unix_now(),
            line: Vec::new(),
            overflow: false,
            data: Vec::new(),
            tools: Vec::new(),
            counts: TokenCounts::default(),
            started: false,
            finished: false,
            failed: false,
            done: false,
        }
    }

    /// Takes the next chunk of the upstream stream; returns the translated
    /// chunks it completed (possibly none).
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        if self.done {
            return Bytes::new();
        }
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.overflow {
                self.overflow = false;
                self.line.clear();
            } else if self.line.is_empty() {
                self.on_line(head, &mut out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                self.on_line(&line, &mut out);
                line.clear();
                self.line = line;
            }
            if self.done {
                return Bytes::from(out);
            }
        }
        if !self.overflow {
            if self.line.len() + rest.len() > MAX_LINE {
                self.overflow = true;
                self.line.clear();
                self.data.clear();
                self.too_large(&mut out);
            } else {
                self.line.extend_from_slice(rest);
            }
        }
        Bytes::from(out)
    }

    /// The upstream stream ended: returns the last chunks (a last event
    /// without its blank line is still translated) and `[DONE]` unless it was
    /// already sent.
    pub fn finish(&mut self) -> Bytes {
        if self.done {
            return Bytes::new();
        }
        let mut out = Vec::new();
        if !self.overflow && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.on_line(&line, &mut out);
        }
        if !self.done && !self.data.is_empty() {
            self.dispatch(&mut out);
        }
        if !self.done {
            if !self.finished && !self.failed {
                self.error_line(
                    &mut out,
                    "api_error",
                    "the provider's stream ended before the answer was complete",
                );
            }
            self.end(&mut out);
        }
        Bytes::from(out)
    }

    /// One SSE line (without its `\n`).
    fn on_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if !self.data.is_empty() {
                self.dispatch(out);
            }
            return;
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.data.len() + value.len() >= MAX_LINE {
                self.data.clear();
                self.too_large(out);
                return;
            }
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
        } else if line == b"data" {
            // A `data` field with no value still starts an event's data.
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
        }
        // `event:`, `id:`, `retry:` and `:` comments: the event's JSON says
        // its type.
    }

    /// The current event is complete.
    fn dispatch(&mut self, out: &mut Vec<u8>) {
        let data = std::mem::take(&mut self.data);
        if let Ok(event) = serde_json::from_slice::<EventIn<'_>>(&data) {
            self.on_event(event, out);
        }
        self.data = data;
        self.data.clear();
    }

    fn on_event(&mut self, event: EventIn<'_>, out: &mut Vec<u8>) {
        match &*event.kind.0 {
            "message_start" => {
                if let Some(message) = event.message {
                    if let Some(Text(id)) = message.id {
                        self.id.truncate("chatcmpl-".len());
                        self.id.push_str(&id);
                    }
                    if let Some(usage) = message.usage {
                        self.counts.update(&usage);
                    }
                }
                self.start(out);
            }
            "content_block_start" => {
                let Some(block) = event.content_block else {
                    return;
                };
                match &*block.kind.0 {
                    "text" => {
                        if let Some(Text(text)) = &block.text {
                            self.text(out, text);
                        }
                    }
                    "tool_use" => self.tool_start(out, event.index, &block),
                    // thinking, server tools: not in OpenAI's format.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let Some(delta) = event.delta else {
                    return;
                };
                if let Some(Text(text)) = &delta.text {
                    self.text(out, text);
                } else if let Some(Text(partial)) = &delta.partial_json {
                    self.tool_arguments(out, event.index, partial);
                }
            }
            // A tool called without arguments: OpenAI clients parse the
            // arguments, and "" is not JSON.
            "content_block_stop"
                if self
                    .tools
                    .iter()
                    .any(|t| t.block == event.index && !t.sent_arguments) =>
            {
                self.tool_arguments(out, event.index, "{}");
            }
            "message_delta" => {
                if let Some(usage) = &event.usage {
                    self.counts.update(usage);
                }
                if let Some(Text(stop)) = event.delta.and_then(|d| d.stop_reason)
                    && !self.finished
                {
                    self.start(out);
                    self.finished = true;
                    self.chunk(out, DeltaOut::default(), Some(finish_reason(&stop)));
                }
            }
            "message_stop" => self.end(out),
            "error" => {
                let error = openai_error(500, event.error.as_ref(), b"");
                self.failed = true;
                write_data(out, &error);
            }
            // ping and anything new.
            _ => {}
        }
    }

    /// The first chunk, once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let delta = DeltaOut {
            role: Some("assistant"),
            content: Some(""),
            tool_calls: None,
        };
        self.chunk(out, delta, None);
    }

    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        if text.is_empty() {
            return;
        }
        self.start(out);
        let delta = DeltaOut {
            content: Some(text),
            ..DeltaOut::default()
        };
        self.chunk(out, delta, None);
    }

    fn tool_start(&mut self, out: &mut Vec<u8>, block: u64, start: &BlockIn<'_>) {
        self.start(out);
        let call = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
        // Anthropic sends `input: {}` and streams the arguments; a complete
        // input is sent as is.
        let arguments = start
            .input
            .as_ref()
            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
            .map(Value::to_string);
        self.tools.push(ToolBlock {
            block,
            call,
            sent_arguments: arguments.is_some(),
        });
        let delta = DeltaOut {
            tool_calls: Some([ToolCallOut {
                index: call,
                id: Some(start.id.as_ref().map_or("", |t| &t.0)),
                kind: Some("function"),
                function: FunctionOut {
                    name: Some(start.name.as_ref().map_or("", |t| &t.0)),
                    arguments: arguments.as_deref().unwrap_or(""),
                },
            }]),
            ..DeltaOut::default()
        };
        self.chunk(out, delta, None);
    }

    fn tool_arguments(&mut self, out: &mut Vec<u8>, block: u64, partial: &str) {
        if partial.is_empty() {
            return;
        }
        let Some(tool) = self.tools.iter_mut().find(|t| t.block == block) else {
            return;
        };
        tool.sent_arguments = true;
        let call = tool.call;
        let delta = DeltaOut {
            tool_calls: Some([ToolCallOut {
                index: call,
                id: None,
                kind: None,
                function: FunctionOut {
                    name: None,
                    arguments: partial,
                },
            }]),
            ..DeltaOut::default()
        };
        self.chunk(out, delta, None);
    }

    /// The usage chunk (when asked for and known) and `[DONE]`.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if self.include_usage && self.finished {
            let chunk = ChunkOut {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: &[],
                usage: Some(Some(self.counts.to_openai())),
            };
            write_data(out, &chunk);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: DeltaOut<'_>, finish: Option<&'static str>) {
        let choices = [ChoiceOut {
            index: 0,
            delta,
            logprobs: (),
            finish_reason: finish,
        }];
        let chunk = ChunkOut {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &choices,
            usage: self.include_usage.then_some(None),
        };
        write_data(out, &chunk);
    }

    fn too_large(&mut self, out: &mut Vec<u8>) {
        self.error_line(
            out,
            "api_error",
            "an event of the provider's stream was too large to relay",
        );
    }

    fn error_line(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        self.failed = true;
        let error = json!({"error": {
            "message": message, "type": kind, "param": null, "code": error_code(kind),
        }});
        write_data(out, &error);
    }
}

/// `data: <json>\n\n`.
fn write_data(out: &mut Vec<u8>, value: &impl Serialize) {
    let start = out.len();
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.extend_from_slice(b"\n\n");
    } else {
        out.truncate(start);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Value {
        chat_request_to_messages(&body).unwrap()
    }

    fn refused(body: Value) -> String {
        chat_request_to_messages(&body).unwrap_err()
    }

    #[test]
    fn a_conversation_with_tools_and_tool_results() {
        let request = json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
                {"role": "user", "content": "Weather in Paris and Rome?", "name": "ann"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\", \"days\": [1, 2]}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21°C"}]},
                {"role": "user", "content": "And tomorrow?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_3", "type": "function", "function": {"name": "now", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "call_3", "content": ""},
            ],
            "tools": [
                {"type": "function", "function": {
                    "name": "get_weather", "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                   "required": ["city"]},
                    "strict": true,
                }},
                {"type": "function", "function": {"name": "now"}},
                {"type": "function", "function": {"name": "empty", "parameters": {}}},
            ],
            "tool_choice": "auto",
            "max_completion_tokens": 500,
            "temperature": 1.5,
            "top_p": 0.9,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "user-42",
            "logprobs": true,
            "seed": 7,
            "response_format": {"type": "text"},
            "n": 1,
        });
        let expected = json!({
            "model": "claude-sonnet-4-5",
            "system": "You are terse.\n\nUse metric units.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather",
                     "input": {"city": "Rome", "days": [1, 2]}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C, sunny"},
                    {"type": "tool_result", "tool_use_id": "call_2",
                     "content": [{"type": "text", "text": "21°C"}]},
                    {"type": "text", "text": "And tomorrow?"},
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_3", "name": "now", "input": {}},
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_3"}]},
            ],
            "max_tokens": 500,
            "temperature": 1.0,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "stream": true,
            "metadata": {"user_id": "user-42"},
            "tool_choice": {"type": "auto"},
            "tools": [
                {"name": "get_weather", "description": "Current weather", "input_schema":
                    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "now", "input_schema": {"type": "object", "properties": {}}},
                {"name": "empty", "input_schema": {"type": "object"}},
            ],
        });
        assert_eq!(translate(request), expected);
    }

    #[test]
    fn round_trip_of_a_tool_call_through_both_directions() {
        // The answer's tool call, sent back by the client, becomes the same
        // tool_use block.
        let answer = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f",
                         "input": {"a": [1, {"b": "ü\"q"}], "c": null}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1},
        });
        let chat = messages_response_to_chat(&answer);
        let message = chat["choices"][0]["message"].clone();
        let request = json!({"model": "m", "messages": [
            {"role": "user", "content": "go"},
            message,
            {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
        ]});
        let translated = translate(request);
        assert_eq!(translated["messages"][1]["content"], answer["content"]);
        assert_eq!(
            translated["messages"][2]["content"][0]["tool_use_id"],
            "toolu_1"
        );
    }

    #[test]
    fn defaults_and_plain_parameters() {
        let out = translate(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        assert_eq!(
            out,
            json!({"model": "m", "max_tokens": DEFAULT_MAX_TOKENS,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
        );
        let out = translate(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 9, "temperature": 0.3, "top_p": 1, "stop": ["a", "b"], "stream": false,
            "response_format": {"type": "json_object"}, "frequency_penalty": 1, "logit_bias": {"1": 2},
            "tool_choice": "required", "parallel_tool_calls": false}),
        );
        assert_eq!(out["max_tokens"], 9);
        assert_eq!(out["temperature"], 0.3);
        assert!(out.get("top_p").is_none(), "top_p 1 is the default");
        assert_eq!(out["stop_sequences"], json!(["a", "b"]));
        assert_eq!(out["stream"], false);
        assert!(out.get("tool_choice").is_none(), "no tools, no tool_choice");
        for dropped in [
            "response_format",
            "frequency_penalty",
            "logit_bias",
            "parallel_tool_calls",
        ] {
            assert!(out.get(dropped).is_none(), "{dropped}");
        }
        // max_completion_tokens wins over the deprecated max_tokens.
        let out = translate(json!({"messages": [], "max_tokens": 9, "max_completion_tokens": 99}));
        assert_eq!(out["max_tokens"], 99);
    }

    #[test]
    fn consecutive_messages_of_one_role_merge_and_empty_ones_vanish() {
        let out = translate(json!({"messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": " "}]},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": [{"type": "text", "text": "The answer is "}]},
        ]}));
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
                // A prefill may not end with whitespace.
                {"role": "assistant", "content": [{"type": "text", "text": "The answer is"}]},
            ])
        );
    }

    #[test]
    fn images_and_pdfs() {
        let out = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "image_url", "image_url": "http://example.com/dog.webp"},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
        ]}]}));
        assert_eq!(
            out["messages"][0]["content"],
            json!([
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "image", "source": {"type": "url", "url": "http://example.com/dog.webp"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            ])
        );
        let image = |url: &str| {
            refused(json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}]}]}))
        };
        assert_eq!(
            image("ftp://example.com/a.png"),
            "messages[0].content[1].image_url.url must be an http(s) URL or a base64 data URL"
        );
        assert!(image("data:image/png,rawbytes").contains("must be a base64 data URL"));
        assert!(image("data:text/plain;base64,aGk=").contains("is not an image"));
        let file = refused(json!({"messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_id": "file-abc"}}]}]}));
        assert!(
            file.starts_with("messages[0].content[0].file.file_id"),
            "{file}"
        );
    }

    #[test]
    fn cache_control_on_parts_is_kept() {
        let out = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "long context", "cache_control": {"type": "ephemeral"}}]}]}));
        assert_eq!(
            out["messages"][0]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
    }

    #[test]
    fn tool_choice_variants() {
        let with = |extra: Value| {
            let mut body = json!({"messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "function", "function": {"name": "f"}}]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            chat_request_to_messages(&body).map(|out| out.get("tool_choice").cloned())
        };
        assert_eq!(with(json!({})).unwrap(), None);
        assert_eq!(
            with(json!({"tool_choice": "auto"})).unwrap(),
            Some(json!({"type": "auto"}))
        );
        assert_eq!(
            with(json!({"tool_choice": "required"})).unwrap(),
            Some(json!({"type": "any"}))
        );
        assert_eq!(
            with(json!({"tool_choice": "none"})).unwrap(),
            Some(json!({"type": "none"}))
        );
        assert_eq!(
            with(json!({"tool_choice": {"type": "function", "function": {"name": "f"}}})).unwrap(),
            Some(json!({"type": "tool", "name": "f"}))
        );
        assert_eq!(
            with(json!({"parallel_tool_calls": false})).unwrap(),
            Some(json!({"type": "auto", "disable_parallel_tool_use": true}))
        );
        assert_eq!(
            with(json!({"tool_choice": "required", "parallel_tool_calls": false})).unwrap(),
            Some(json!({"type": "any", "disable_parallel_tool_use": true}))
        );
        assert_eq!(
            with(
                json!({"tool_choice": {"type": "function", "function": {"name": "f"}},
                        "parallel_tool_calls": false})
            )
            .unwrap(),
            Some(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}))
        );
        assert_eq!(
            with(json!({"tool_choice": "none", "parallel_tool_calls": false})).unwrap(),
            Some(json!({"type": "none"}))
        );
        assert_eq!(with(json!({"parallel_tool_calls": true})).unwrap(), None);
        assert_eq!(
            with(json!({"tool_choice": "sometimes"})).unwrap_err(),
            "tool_choice `sometimes` cannot be sent to an Anthropic model"
        );
        assert_eq!(
            with(json!({"tool_choice": {"type": "allowed_tools"}})).unwrap_err(),
            "tool_choice.type `allowed_tools` cannot be sent to an Anthropic model"
        );
        assert_eq!(
            with(json!({"tool_choice": {"type": "function"}})).unwrap_err(),
            "tool_choice.function.name is required"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let user = |content: Value| {
            json!({"messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": content},
            ]})
        };
        assert_eq!(
            refused(user(json!([{"type": "text", "text": "listen"},
                {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]))),
            "messages[2].content[1].type `input_audio` cannot be sent to an Anthropic model"
        );
        assert_eq!(
            refused(user(json!(42))),
            "messages[2].content must be a string or an array of content parts"
        );
        assert_eq!(
            refused(user(json!([{"text": "x"}]))),
            "messages[2].content[0].type is required"
        );
        let bad_args = refused(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{\"x\": "}},
            ]},
        ]}));
        assert!(
            bad_args.starts_with("messages[1].tool_calls[1].function.arguments is not valid JSON"),
            "{bad_args}"
        );
        assert_eq!(
            refused(json!({"messages": [{"role": "assistant", "tool_calls": [
                {"id": "a", "function": {"name": "f", "arguments": "[1]"}}]}]})),
            "messages[0].tool_calls[0].function.arguments must be a JSON object"
        );
        assert_eq!(
            refused(json!({"messages": [{"role": "tool", "content": "x"}]})),
            "messages[0].tool_call_id is required"
        );
        assert_eq!(
            refused(json!({"messages": [{"role": "critic", "content": "x"}]})),
            "messages[0].role `critic` is not supported"
        );
        assert!(
            refused(json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}))
                .starts_with("messages[0].role `function`")
        );
        assert_eq!(
            refused(json!({"messages": [{"role": "system", "content": [
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]})),
            "messages[0].content[0].type `image_url` cannot be used in a system message for Anthropic models"
        );
        assert_eq!(
            refused(json!({"messages": [], "n": 2})),
            "n > 1 is not supported for Anthropic models"
        );
        assert!(
            refused(
                json!({"messages": [], "response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": {}}}})
            )
            .starts_with("response_format `json_schema`")
        );
        assert!(
            refused(json!({"messages": [], "functions": [{"name": "f"}]})).contains("`functions`")
        );
        assert!(
            refused(json!({"messages": [], "modalities": ["text", "audio"]})).contains("audio")
        );
        assert_eq!(
            refused(
                json!({"messages": [], "tools": [{"type": "custom", "custom": {"name": "g"}}]})
            ),
            "tools[0].type `custom` cannot be sent to an Anthropic model"
        );
        assert_eq!(
            refused(json!({"messages": [], "max_tokens": 0})),
            "`max_tokens` must be a positive integer"
        );
        assert_eq!(
            refused(json!({"messages": [], "stop": ["a", 1]})),
            "stop[1] must be a string"
        );
        assert_eq!(
            refused(json!({"model": "m"})),
            "`messages` must be an array"
        );
        assert_eq!(refused(json!([])), "the request body must be a JSON object");
    }

    #[test]
    fn an_answer_with_text_and_two_tool_calls() {
        let answer = json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [
                {"type": "text", "text": "Let me check "},
                {"type": "text", "text": "both."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 20,
                      "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5},
        });
        let mut chat = messages_response_to_chat(&answer);
        assert!(chat["created"].as_u64().unwrap() > 1_700_000_000);
        chat["created"] = json!(0);
        assert_eq!(
            chat,
            json!({
                "id": "chatcmpl-msg_01", "object": "chat.completion", "created": 0,
                "model": "claude-sonnet-4-5",
                "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Let me check both.",
                    "tool_calls": [
                        {"id": "toolu_a", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "toolu_b", "type": "function",
                         "function": {"name": "get_time", "arguments": "{}"}},
                    ],
                }}],
                "usage": {"prompt_tokens": 115, "completion_tokens": 20, "total_tokens": 135,
                          "prompt_tokens_details": {"cached_tokens": 100}},
            })
        );
        // Read back by the gateway's usage reader as Anthropic's own counts.
        assert_eq!(
            crate::usage::from_json(&chat),
            crate::usage::from_json(&answer)
        );
    }

    #[test]
    fn answers_with_only_tool_calls_or_only_text_and_finish_reasons() {
        let answer = |content: Value, stop: &str| {
            messages_response_to_chat(&json!({"id": "m", "model": "x", "content": content,
                "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 2}}))
        };
        let tools_only = answer(
            json!([{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}]),
            "tool_use",
        );
        assert_eq!(tools_only["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            tools_only["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        let text = answer(json!([{"type": "text", "text": "hi"}]), "end_turn");
        assert!(text["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(text["usage"]["total_tokens"], 3);
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(
                answer(json!([]), stop)["choices"][0]["finish_reason"],
                finish,
                "{stop}"
            );
        }
    }

    #[test]
    fn errors_in_openai_shape() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(
            error_to_openai(529, body),
            json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null,
                             "code": "overloaded"}})
        );
        let body = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(
            error_to_openai(401, body)["error"]["code"],
            "invalid_api_key"
        );
        assert_eq!(
            error_to_openai(502, b"<html>Bad gateway</html>\n"),
            json!({"error": {"message": "<html>Bad gateway</html>", "type": "api_error", "param": null,
                             "code": "upstream_error"}})
        );
        assert_eq!(
            error_to_openai(429, b"")["error"],
            json!({"message": "the provider answered with status 429", "type": "rate_limit_error",
                   "param": null, "code": "rate_limit_exceeded"})
        );
        let long = "é".repeat(MAX_ERROR_TEXT);
        let message = error_to_openai(500, long.as_bytes())["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.len() <= MAX_ERROR_TEXT + "…".len() && message.ends_with('…'));
    }

    // -- streams ----------------------------------------------------------

    fn event(data: Value) -> String {
        let name = data["type"].as_str().unwrap().to_owned();
        format!("event: {name}\ndata: {data}\n\n")
    }

    /// The tool arguments, as they will be streamed in pieces.
    fn weather_args() -> Value {
        json!({"location": "San Francisco, CA", "unit": "fahrenheit", "note": "dit \"ok\" — ✓"})
    }

    /// A realistic Anthropic stream: text, a ping, two tool calls (one
    /// without arguments), as in Anthropic's streaming docs.
    fn anthropic_stream() -> String {
        let args = weather_args().to_string();
        let (a, rest) = args.split_at(13);
        let (b, c) = rest.split_at(20);
        let mut events = vec![
            event(json!({"type": "message_start", "message": {
                "id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant",
                "model": "claude-opus-4-1-20250805", "stop_sequence": null,
                "usage": {"input_tokens": 472, "output_tokens": 2, "cache_read_input_tokens": 30,
                          "cache_creation_input_tokens": 0},
                "content": [], "stop_reason": null}})),
            event(
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned(),
        ];
        for text in [
            "Okay",
            ", let's",
            " check the weather — en été ☀️",
            "\nfor San Francisco",
        ] {
            events.push(event(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}})));
        }
        events.push(event(json!({"type": "content_block_stop", "index": 0})));
        events.push(event(json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}})));
        for partial in ["", a, b, c] {
            events.push(event(json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": partial}})));
        }
        events.push(event(json!({"type": "content_block_stop", "index": 1})));
        events.push(event(
            json!({"type": "content_block_start", "index": 2, "content_block":
            {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}}),
        ));
        events.push(event(json!({"type": "content_block_delta", "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""}})));
        events.push(event(json!({"type": "content_block_stop", "index": 2})));
        events.push(event(json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 89}})));
        events.push(event(json!({"type": "message_stop"})));
        events.concat()
    }

    /// Feeds `stream` in chunks of `size` bytes, then finishes.
    fn run(stream: &[u8], size: usize, include_usage: bool) -> String {
        let mut t = StreamTranslator::new("claude-opus-4-1", include_usage);
        t.created = 1_700_000_000;
        let mut out = Vec::new();
        for chunk in stream.chunks(size) {
            out.extend_from_slice(&t.feed(chunk));
        }
        out.extend_from_slice(&t.finish());
        assert!(t.finish().is_empty(), "finish twice adds nothing");
        assert!(
            t.feed(b"data: {\"type\":\"ping\"}\n\n").is_empty(),
            "nothing after [DONE]"
        );
        String::from_utf8(out).unwrap()
    }

    /// The JSON chunks of a translated stream (asserting its framing).
    fn parse_chunks(out: &str) -> Vec<Value> {
        assert_eq!(
            out.matches("data: [DONE]\n\n").count(),
            1,
            "[DONE] exactly once:\n{out}"
        );
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        out.split_terminator("\n\n")
            .map(|line| line.strip_prefix("data: ").unwrap())
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    #[test]
    fn streams_translate_the_same_whatever_the_chunking() {
        let stream = anthropic_stream();
        let whole = run(stream.as_bytes(), stream.len(), true);
        for size in [1, 2, 7, 64] {
            assert_eq!(
                run(stream.as_bytes(), size, true),
                whole,
                "chunk size {size}"
            );
        }
        // CRLF line endings (chunked so that `\r` and `\n` fall apart).
        let crlf = stream.replace('\n', "\r\n");
        for size in [1, 7, crlf.len()] {
            assert_eq!(
                run(crlf.as_bytes(), size, true),
                whole,
                "CRLF, chunk size {size}"
            );
        }
    }

    #[test]
    fn streams_text_tool_calls_finish_reason_and_usage() {
        let out = run(anthropic_stream().as_bytes(), 7, true);
        let chunks = parse_chunks(&out);
        for chunk in &chunks {
            assert_eq!(chunk["id"], "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["created"], 1_700_000_000);
            assert_eq!(chunk["model"], "claude-opus-4-1");
        }
        let first = &chunks[0]["choices"][0];
        assert_eq!(first["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(first["finish_reason"], Value::Null);
        assert_eq!(chunks[0]["usage"], Value::Null);

        let deltas: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"].as_array()?.first())
            .map(|c| &c["delta"])
            .collect();
        let text: String = deltas
            .iter()
            .filter_map(|d| d["content"].as_str())
            .collect();
        assert_eq!(
            text,
            "Okay, let's check the weather — en été ☀️\nfor San Francisco"
        );

        // Reassemble the tool calls as an OpenAI client does.
        let mut calls: Vec<(String, String, String)> = Vec::new();
        for call in deltas
            .iter()
            .filter_map(|d| d["tool_calls"].as_array())
            .flatten()
        {
            let index = usize::try_from(call["index"].as_u64().unwrap()).unwrap();
            if let Some(id) = call["id"].as_str() {
                assert_eq!(index, calls.len(), "tool calls are numbered from 0");
                assert_eq!(call["type"], "function");
                let name = call["function"]["name"].as_str().unwrap().to_owned();
                calls.push((id.to_owned(), name, String::new()));
            }
            calls[index]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap());
        }
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
        assert_eq!(calls[0].1, "get_weather");
        assert_eq!(
            serde_json::from_str::<Value>(&calls[0].2).unwrap(),
            weather_args()
        );
        assert_eq!(
            (calls[1].1.as_str(), calls[1].2.as_str()),
            ("get_time", "{}")
        );

        let finish: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"].as_array()?.first())
            .filter(|c| !c["finish_reason"].is_null())
            .collect();
        assert_eq!(finish.len(), 1);
        assert_eq!(finish[0]["finish_reason"], "tool_calls");
        assert_eq!(finish[0]["delta"], json!({}));

        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 502, "completion_tokens": 89, "total_tokens": 591,
                   "prompt_tokens_details": {"cached_tokens": 30}})
        );
        assert_eq!(chunks.iter().filter(|c| !c["usage"].is_null()).count(), 1);

        // The gateway's usage reader sees the same counts as upstream's.
        let mut upstream = crate::usage::SseUsage::default();
        upstream.feed(anthropic_stream().as_bytes());
        let mut translated = crate::usage::SseUsage::default();
        translated.feed(out.as_bytes());
        assert_eq!(translated.usage(), upstream.usage());
    }

    #[test]
    fn without_include_usage_there_is_no_usage_at_all() {
        let out = run(anthropic_stream().as_bytes(), 7, false);
        let chunks = parse_chunks(&out);
        assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"].as_array().unwrap().len() == 1)
        );
        // Same chunks as with usage, but for the usage.
        let with_usage = chunks_without_usage(&run(anthropic_stream().as_bytes(), 7, true));
        assert_eq!(chunks, with_usage);
    }

    fn chunks_without_usage(out: &str) -> Vec<Value> {
        parse_chunks(out)
            .into_iter()
            .filter(|c| c["choices"] != json!([]))
            .map(|mut c| {
                c.as_object_mut().unwrap().remove("usage");
                c
            })
            .collect()
    }

    #[test]
    fn a_stream_without_message_stop_ends_in_finish() {
        let stream = anthropic_stream();
        let cut = stream.find("event: message_stop").unwrap();
        let mut t = StreamTranslator::new("m", true);
        let mut out = String::from_utf8(t.feed(&stream.as_bytes()[..cut]).to_vec()).unwrap();
        assert!(!out.contains("[DONE]"));
        out.push_str(std::str::from_utf8(&t.finish()).unwrap());
        let chunks = parse_chunks(&out);
        assert!(
            chunks.iter().all(|c| c.get("error").is_none()),
            "the answer was complete"
        );
        assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 89);

        // The last event without its blank line is still read.
        let mut t = StreamTranslator::new("claude-opus-4-1", false);
        t.created = 1_700_000_000;
        let mut out = t.feed(stream.trim_end().as_bytes()).to_vec();
        out.extend_from_slice(&t.finish());
        assert_eq!(
            parse_chunks(std::str::from_utf8(&out).unwrap()),
            parse_chunks(&run(stream.as_bytes(), 5, false))
        );
    }

    #[test]
    fn a_cut_stream_ends_with_an_error_then_done() {
        let stream = anthropic_stream();
        let cut = stream.find("event: content_block_stop").unwrap() + 10;
        let mut t = StreamTranslator::new("m", true);
        let mut out = t.feed(&stream.as_bytes()[..cut]).to_vec();
        out.extend_from_slice(&t.finish());
        let chunks = parse_chunks(std::str::from_utf8(&out).unwrap());
        let last = chunks.last().unwrap();
        assert_eq!(last["error"]["type"], "api_error");
        assert!(
            last["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ended before")
        );
        assert!(
            chunks.iter().all(|c| c["choices"] != json!([])),
            "no usage chunk"
        );

        // Nothing at all.
        let mut t = StreamTranslator::new("m", false);
        let out = t.finish();
        assert_eq!(parse_chunks(std::str::from_utf8(&out).unwrap()).len(), 1);
    }

    #[test]
    fn an_error_event_becomes_an_openai_error_line() {
        let stream = [
            event(json!({"type": "message_start", "message": {"id": "msg_9", "usage": {"input_tokens": 3, "output_tokens": 1}}})),
            event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
            event(json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}})),
            event(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        ]
        .concat();
        let out = run(stream.as_bytes(), 3, true);
        let chunks = parse_chunks(&out);
        assert_eq!(
            chunks[2],
            json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null,
                             "code": "overloaded"}})
        );
        assert_eq!(
            chunks.iter().filter(|c| c.get("error").is_some()).count(),
            1,
            "one error only"
        );
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons_in_streams() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("refusal", "content_filter"),
        ] {
            let stream = [
                event(json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 1}}})),
                event(json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 4}})),
                event(json!({"type": "message_stop"})),
            ]
            .concat();
            let chunks = parse_chunks(&run(stream.as_bytes(), 4, false));
            assert_eq!(chunks.len(), 2);
            assert_eq!(chunks[1]["choices"][0]["finish_reason"], finish);
        }
    }

    #[test]
    fn an_oversized_event_is_reported_not_buffered_forever() {
        let mut t = StreamTranslator::new("m", false);
        let mut out = t
            .feed(b"data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n")
            .to_vec();
        let big = vec![b'x'; MAX_LINE / 4];
        out.extend_from_slice(&t.feed(b"data: \""));
        for _ in 0..5 {
            out.extend_from_slice(&t.feed(&big));
        }
        assert!(
            t.line.is_empty() && t.overflow,
            "the long line is dropped, not kept"
        );
        out.extend_from_slice(&t.feed(b"\"\n\ndata: {\"type\":\"message_stop\"}\n\n"));
        let chunks = parse_chunks(std::str::from_utf8(&out).unwrap());
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        assert!(
            chunks[1]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("too large")
        );
    }

    #[test]
    fn stream_events_are_read_without_copying_plain_text() {
        let data = br#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"plain"}}"#;
        let event: EventIn<'_> = serde_json::from_slice(data).unwrap();
        assert!(matches!(event.kind.0, Cow::Borrowed("content_block_delta")));
        assert_eq!(event.index, 3);
        let text = event.delta.unwrap().text.unwrap().0;
        assert!(matches!(text, Cow::Borrowed("plain")));
        let data = br#"{"type":"content_block_delta","delta":{"text":"a\nb"}}"#;
        let event: EventIn<'_> = serde_json::from_slice(data).unwrap();
        assert_eq!(event.delta.unwrap().text.unwrap().0, "a\nb");
    }

    #[test]
    fn multi_line_data_and_comments_follow_the_sse_rules() {
        let stream = ": keep-alive\n\nevent: message_start\ndata: {\"type\":\"message_start\",\ndata: \"message\":{\"id\":\"m\"}}\n\n\
            data:{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\\"b\"}}\n\n\
            data: not json\n\n\
            data: {\"type\":\"message_stop\"}\n\n";
        let chunks = parse_chunks(&run(stream.as_bytes(), 1, false));
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0]["id"], "chatcmpl-m");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "a\"b");
    }
}
