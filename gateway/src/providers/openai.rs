//! OpenAI and OpenAI-compatible servers: `POST {base_url}/chat/completions`.

use super::Answer;
use crate::error::GatewayError;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

#[derive(Clone)]
pub enum ApiKey {
    Value(String),
    MissingEnv(String),
    /// `secret_key_ref.secret` names a secret that cannot be used (missing,
    /// or unreadable: the reason).
    MissingSecret(String, String),
    None,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKey::Value(_) => f.write_str("ApiKey(***)"),
            ApiKey::MissingEnv(v) => write!(f, "ApiKey(missing env {v})"),
            ApiKey::MissingSecret(n, _) => write!(f, "ApiKey(missing secret {n})"),
            ApiKey::None => f.write_str("ApiKey(none)"),
        }
    }
}

impl ApiKey {
    /// Resolves a target's `secret_key_ref`: from the environment, or from
    /// the console-stored secrets the gateway loaded.
    pub fn resolve(
        secret_ref: Option<&policy::SecretKeyRef>,
        context: &crate::runtime::ProviderContext,
    ) -> ApiKey {
        match secret_ref {
            Some(policy::SecretKeyRef::Env(var)) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => ApiKey::Value(v),
                _ => ApiKey::MissingEnv(var.clone()),
            },
            Some(policy::SecretKeyRef::Secret(name)) => match context.secrets.get(name) {
                Some(value) => ApiKey::Value(value.clone()),
                None => ApiKey::MissingSecret(
                    name.clone(),
                    context.problem.clone().unwrap_or_else(|| {
                        "no such secret for this gateway's team or the organisation: store it with POST /v1/secrets".to_owned()
                    }),
                ),
            },
            None => ApiKey::None,
        }
    }

    /// Why requests with this key would fail, if they would.
    pub fn problem(&self) -> Option<String> {
        match self {
            ApiKey::MissingEnv(var) => Some(format!(
                "environment variable {var} (secret_key_ref.env) is not set: export it before starting the gateway"
            )),
            ApiKey::MissingSecret(name, why) => Some(format!(
                "secret_key_ref.secret `{name}` cannot be used: {why}"
            )),
            ApiKey::Value(_) | ApiKey::None => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenAi {
    endpoint: super::Endpoint,
}

impl OpenAi {
    pub fn new(base_url: String, key: ApiKey) -> Self {
        let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
        OpenAi {
            endpoint: super::Endpoint::new(url, &key, "authorization", "Bearer "),
        }
    }

    /// Why every request to this target would fail, if one would.
    pub fn problem(&self) -> Option<String> {
        self.endpoint.problem()
    }

    pub async fn chat(
        &self,
        http: &reqwest::Client,
        mut body: serde_json::Value,
        stream: bool,
    ) -> Result<Answer, GatewayError> {
        let request = self.endpoint.post(http)?;
        if stream {
            // Ask for usage in the final chunk so streamed requests are priced.
            if let Some(obj) = body.as_object_mut() {
                let options = obj
                    .entry("stream_options")
                    .or_insert_with(|| serde_json::json!({}));
                if let Some(options) = options.as_object_mut() {
                    options.insert("include_usage".to_owned(), serde_json::Value::Bool(true));
                }
            }
        }
        super::send(request.json(&body), stream).await
    }
}
