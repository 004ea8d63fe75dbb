//! Provider targets behind one enum: each vendor's wire details stay in its
//! module. An answer is either a complete JSON body or a byte stream (SSE)
//! that the gateway relays chunk by chunk.

pub mod anthropic;
pub mod demo;
pub mod openai;

use std::pin::Pin;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use futures::Stream;
use policy::{ProviderKind, Target};

use crate::error::GatewayError;
use crate::proxy::ApiFormat;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Sends a prepared upstream request and turns the response into an
/// [`Answer`]: a byte stream for a successful SSE answer to a streamed
/// request, the complete body otherwise (errors included, relayed as is).
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    stream: bool,
) -> Result<Answer, GatewayError> {
    use futures::TryStreamExt as _;
    let response = request.send().await.map_err(upstream_error)?;
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
        let body = response.bytes().await.map_err(upstream_error)?;
        Ok(Answer::Complete { status, body })
    }
}

/// A failed upstream call as the caller sees it: 504 for a timeout, 502
/// with the cause chain otherwise.
pub(crate) fn upstream_error(err: reqwest::Error) -> GatewayError {
    if err.is_timeout() {
        GatewayError::UpstreamTimeout
    } else {
        // reqwest's Display omits the cause chain; include it for operators.
        let mut message = format!("provider request failed: {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        GatewayError::Upstream(message)
    }
}

/// Where a target's requests go and how they authenticate, prepared once
/// when the config is loaded rather than on every request: the parsed URL
/// and the credential header (marked sensitive, so it is never logged).
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: Result<reqwest::Url, String>,
    auth: Result<Option<(&'static str, reqwest::header::HeaderValue)>, String>,
}

impl Endpoint {
    /// `url` authenticated with `key` in the header `header`, its value
    /// prefixed with `scheme` (`"Bearer "`, or `""`).
    pub fn new(url: String, key: &openai::ApiKey, header: &'static str, scheme: &str) -> Self {
        let url = reqwest::Url::parse(&url).map_err(|err| {
            format!("the target's URL `{url}` is not valid ({err}): fix its base_url")
        });
        let auth = match key {
            openai::ApiKey::Value(key) => {
                reqwest::header::HeaderValue::try_from(format!("{scheme}{key}"))
                    .map(|mut value| {
                        value.set_sensitive(true);
                        Some((header, value))
                    })
                    .map_err(|_| {
                        "the target's API key contains characters an HTTP header cannot carry (a line break?): store it again".to_owned()
                    })
            }
            other => match other.problem() {
                Some(problem) => Err(problem),
                None => Ok(None),
            },
        };
        Endpoint { url, auth }
    }

    /// Why every request to this endpoint would fail, if one would.
    pub fn problem(&self) -> Option<String> {
        self.url
            .as_ref()
            .err()
            .or(self.auth.as_ref().err())
            .cloned()
    }

    /// A `POST` to the endpoint, with its credential.
    fn post(&self, http: &reqwest::Client) -> Result<reqwest::RequestBuilder, GatewayError> {
        let (url, auth) = match (&self.url, &self.auth) {
            (Ok(url), Ok(auth)) => (url, auth),
            (Err(problem), _) | (_, Err(problem)) => {
                return Err(GatewayError::Upstream(problem.clone()));
            }
        };
        let request = http.post(url.clone());
        Ok(match auth {
            Some((name, value)) => request.header(*name, value.clone()),
            None => request,
        })
    }
}

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
    /// Anthropic's Messages API.
    Anthropic(anthropic::Anthropic),
    /// The built-in demo provider: answers locally, no vendor involved.
    Demo,
}

impl Provider {
    /// Builds the provider of `target`, reading its key from the environment
    /// once (a missing variable is reported at start-up and when used).
    pub fn from_target(target: &Target, context: &crate::runtime::ProviderContext) -> Provider {
        // A target without its own base_url / key uses the organisation's
        // defaults for its kind.
        let default = context.default_for(target.kind);
        let key = || match (
            &target.secret_key_ref,
            default.and_then(|d| d.secret_name.clone()),
        ) {
            (Some(own), _) => openai::ApiKey::resolve(Some(own), context),
            (None, Some(name)) => {
                openai::ApiKey::resolve(Some(&policy::SecretKeyRef::Secret(name)), context)
            }
            (None, None) => openai::ApiKey::None,
        };
        let base_url = |vendor: &str| {
            target
                .base_url
                .clone()
                .or_else(|| default.and_then(|d| d.base_url.clone()))
                .unwrap_or_else(|| vendor.to_owned())
        };
        match target.kind {
            ProviderKind::Demo => Provider::Demo,
            ProviderKind::OpenAi => Provider::OpenAi(openai::OpenAi::new(
                base_url(openai::DEFAULT_BASE_URL),
                key(),
            )),
            ProviderKind::Anthropic => Provider::Anthropic(anthropic::Anthropic::new(
                base_url(anthropic::DEFAULT_BASE_URL),
                key(),
            )),
        }
    }

    /// Whether this target can serve a request in `format` (OpenAI-format
    /// requests reach Anthropic targets through translation; the reverse is
    /// not supported).
    pub fn speaks(&self, format: ApiFormat) -> bool {
        !matches!((self, format), (Provider::OpenAi(_), ApiFormat::Anthropic))
    }

    pub fn is_demo(&self) -> bool {
        matches!(self, Provider::Demo)
    }

    /// A problem that makes every request to this target fail, if any.
    pub fn startup_problem(&self) -> Option<String> {
        match self {
            Provider::OpenAi(p) => p.problem(),
            Provider::Anthropic(p) => p.problem(),
            Provider::Demo => None,
        }
    }

    /// Sends a request in `format` (OpenAI chat completions or Anthropic
    /// messages) to this target.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        format: ApiFormat,
        body: serde_json::Value,
        stream: bool,
        client_headers: &HeaderMap,
    ) -> Result<Answer, GatewayError> {
        match (self, format) {
            (Provider::OpenAi(p), ApiFormat::OpenAi) => p.chat(http, body, stream).await,
            (Provider::Anthropic(p), ApiFormat::Anthropic) => {
                p.messages(http, body, stream, client_headers).await
            }
            (Provider::Demo, ApiFormat::OpenAi) => Ok(demo::chat(&body, stream)),
            (Provider::Demo, ApiFormat::Anthropic) => Ok(demo::messages(&body, stream)),
            (Provider::Anthropic(p), ApiFormat::OpenAi) => {
                // An OpenAI-format request for a Claude model: translated to
                // Anthropic's Messages API, and the answer back.
                let model = body
                    .get("model")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let translated = crate::translate::chat_request_to_messages(&body)
                    .map_err(GatewayError::BadRequest)?;
                let answer = p.messages(http, translated, stream, client_headers).await?;
                Ok(translate_answer(answer, &model))
            }
            (Provider::OpenAi(_), ApiFormat::Anthropic) => Err(GatewayError::BadRequest(format!(
                "this model is served by an OpenAI target, which does not speak the {} format of this endpoint: use POST /v1/chat/completions",
                format.name(),
            ))),
        }
    }
}

/// An Anthropic answer turned into OpenAI's chat completion format.
fn translate_answer(answer: Answer, model: &str) -> Answer {
    match answer {
        Answer::Complete { status, body } => {
            let (status, translated) = if status.is_success() {
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(v) => (status, crate::translate::messages_response_to_chat(&v)),
                    // A success that is not JSON (an HTML page from a wrong
                    // base_url, say) is an upstream failure.
                    Err(_) => (
                        StatusCode::BAD_GATEWAY,
                        crate::translate::error_to_openai(502, &body),
                    ),
                }
            } else {
                (
                    status,
                    crate::translate::error_to_openai(status.as_u16(), &body),
                )
            };
            Answer::Complete {
                status,
                body: Bytes::from(translated.to_string()),
            }
        }
        Answer::Stream { status, body } => Answer::Stream {
            status,
            // Usage is always asked for, so the stream can be metered; the
            // usage-only chunk is removed later when the client did not ask.
            body: Box::pin(Translated {
                inner: body,
                translator: crate::translate::StreamTranslator::new(model, true),
                done: false,
            }),
        },
    }
}

/// An Anthropic SSE stream read as OpenAI chat completion chunks.
struct Translated {
    inner: ByteStream,
    translator: crate::translate::StreamTranslator,
    done: bool,
}

impl Stream for Translated {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = self.translator.feed(&chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => {
                    self.done = true;
                    let rest = self.translator.finish();
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
