//! Provider targets behind one enum: each vendor's wire details stay in its
//! module. An answer is either a complete JSON body or a byte stream (SSE)
//! that the gateway relays chunk by chunk.

pub mod demo;
pub mod openai;

use std::pin::Pin;

use axum::http::StatusCode;
use bytes::Bytes;
use futures::Stream;
use policy::{ProviderKind, SecretKeyRef, Target};

use crate::error::GatewayError;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// What a provider answered.
pub enum Answer {
    Complete {
        status: StatusCode,
        body: Bytes,
    },
    Stream {
        status: StatusCode,
        body: ByteStream,
    },
}

/// A configured target, ready to send to.
#[derive(Debug, Clone)]
pub enum Provider {
    /// OpenAI or any OpenAI-compatible server (Azure, vLLM, Ollama, …).
    OpenAi(openai::OpenAi),
    /// The built-in demo provider: answers locally, no vendor involved.
    Demo,
    /// A target this build cannot talk to; requests routed to it answer 502
    /// with the reason.
    Unavailable(String),
}

impl Provider {
    /// Builds the provider of `target`, reading its key from the environment
    /// once (a missing variable is reported at start-up and when used).
    pub fn from_target(target: &Target) -> Provider {
        match target.kind {
            ProviderKind::Demo => Provider::Demo,
            ProviderKind::OpenAi => {
                let api_key = match &target.secret_key_ref {
                    Some(SecretKeyRef::Env(var)) => match std::env::var(var) {
                        Ok(v) if !v.is_empty() => openai::ApiKey::Value(v),
                        _ => openai::ApiKey::MissingEnv(var.clone()),
                    },
                    Some(SecretKeyRef::Secret(name)) => {
                        openai::ApiKey::UnsupportedSecret(name.clone())
                    }
                    None => openai::ApiKey::None,
                };
                let base_url = target
                    .base_url
                    .clone()
                    .unwrap_or_else(|| openai::DEFAULT_BASE_URL.to_owned());
                Provider::OpenAi(openai::OpenAi::new(base_url, api_key))
            }
            ProviderKind::Anthropic => Provider::Unavailable(format!(
                "target `{}`: the Anthropic provider is not available in this build yet",
                target.id
            )),
        }
    }

    pub fn is_demo(&self) -> bool {
        matches!(self, Provider::Demo)
    }

    /// A problem that makes every request to this target fail, if any.
    pub fn startup_problem(&self) -> Option<String> {
        match self {
            Provider::OpenAi(p) => p.key_problem(),
            Provider::Demo => None,
            Provider::Unavailable(reason) => Some(reason.clone()),
        }
    }

    /// Sends an OpenAI-format chat completion request.
    pub async fn chat(
        &self,
        http: &reqwest::Client,
        body: serde_json::Value,
        stream: bool,
    ) -> Result<Answer, GatewayError> {
        match self {
            Provider::OpenAi(p) => p.chat(http, body, stream).await,
            Provider::Demo => Ok(demo::chat(&body, stream)),
            Provider::Unavailable(reason) => Err(GatewayError::Upstream(reason.clone())),
        }
    }
}
