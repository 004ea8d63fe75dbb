//! Anthropic: `POST {base_url}/v1/messages`, in Anthropic's own format
//! (requests arriving on the gateway's `/v1/messages`).

use axum::http::{HeaderMap, StatusCode};
use futures::TryStreamExt;

use super::Answer;
use super::openai::ApiKey;
use crate::error::GatewayError;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// Sent when the client did not choose an API version.
const DEFAULT_VERSION: &str = "2023-06-01";
/// Client headers passed through to Anthropic.
pub const PASSTHROUGH_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta"];

#[derive(Debug, Clone)]
pub struct Anthropic {
    url: String,
    key: ApiKey,
}

impl Anthropic {
    pub fn new(base_url: String, key: ApiKey) -> Self {
        let base = base_url.trim_end_matches('/');
        // Accept base URLs given with or without the `/v1` suffix.
        let base = base.strip_suffix("/v1").unwrap_or(base);
        Anthropic {
            url: format!("{base}/v1/messages"),
            key,
        }
    }

    pub fn key_problem(&self) -> Option<String> {
        self.key.problem()
    }

    pub async fn messages(
        &self,
        http: &reqwest::Client,
        body: serde_json::Value,
        stream: bool,
        client_headers: &HeaderMap,
    ) -> Result<Answer, GatewayError> {
        if let Some(problem) = self.key_problem() {
            return Err(GatewayError::Upstream(problem));
        }
        let mut request = http.post(&self.url).json(&body);
        if let ApiKey::Value(key) = &self.key {
            request = request.header("x-api-key", key);
        }
        for name in PASSTHROUGH_HEADERS {
            if let Some(value) = client_headers.get(*name) {
                request = request.header(*name, value.as_bytes());
            }
        }
        if !client_headers.contains_key("anthropic-version") {
            request = request.header("anthropic-version", DEFAULT_VERSION);
        }
        let response = request
            .send()
            .await
            .map_err(super::openai::upstream_error)?;
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if stream && status.is_success() && is_sse {
            let body = response.bytes_stream().map_err(std::io::Error::other);
            Ok(Answer::Stream {
                status,
                body: Box::pin(body),
            })
        } else {
            let body = response
                .bytes()
                .await
                .map_err(super::openai::upstream_error)?;
            Ok(Answer::Complete { status, body })
        }
    }
}
