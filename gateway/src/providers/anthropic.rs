//! Anthropic: `POST {base_url}/v1/messages`, in Anthropic's own format
//! (requests arriving on the gateway's `/v1/messages`).

use axum::http::HeaderMap;

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
    endpoint: super::Endpoint,
}

impl Anthropic {
    pub fn new(base_url: String, key: ApiKey) -> Self {
        let base = base_url.trim_end_matches('/');
        // Accept base URLs given with or without the `/v1` suffix.
        let base = base.strip_suffix("/v1").unwrap_or(base);
        Anthropic {
            endpoint: super::Endpoint::new(format!("{base}/v1/messages"), &key, "x-api-key", ""),
        }
    }

    /// Why every request to this target would fail, if one would.
    pub fn problem(&self) -> Option<String> {
        self.endpoint.problem()
    }

    pub async fn messages(
        &self,
        http: &reqwest::Client,
        body: serde_json::Value,
        stream: bool,
        client_headers: &HeaderMap,
    ) -> Result<Answer, GatewayError> {
        let mut request = self.endpoint.post(http)?.json(&body);
        for name in PASSTHROUGH_HEADERS {
            if let Some(value) = client_headers.get(*name) {
                request = request.header(*name, value.as_bytes());
            }
        }
        if !client_headers.contains_key("anthropic-version") {
            request = request.header("anthropic-version", DEFAULT_VERSION);
        }
        super::send(request, stream).await
    }
}
