//! The gateway's error type, rendered as an OpenAI-shaped error body
//! (`{"error": {"type", "code", "message", "policy"}}`) with the status codes
//! of SPEC §5.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::proxy::ApiFormat;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("this gateway does not serve your key's team; use your team's gateway URL")]
    WrongTeam,
    #[error("{message}")]
    PolicyViolation {
        policy: String,
        reason: String,
        message: String,
    },
    #[error("{message}")]
    EscalationRequired {
        policy: String,
        reason: String,
        message: String,
        /// The recorded escalation a reviewer decides on (`None` when it
        /// could not be recorded: the request stays held).
        escalation_id: Option<String>,
    },
    #[error("{message}")]
    BudgetExceeded { policy: String, message: String },
    #[error("rate limit of {limit} {unit} per minute reached; retry in {retry_after_secs}s")]
    RateLimited {
        policy: String,
        limit: u32,
        unit: &'static str,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "no provider target serves model `{0}`: add a target to providers.targets (or list the model in a target's `models`)"
    )]
    NoRoute(String),
    #[error("{0}")]
    Upstream(String),
    #[error("the provider did not answer in time")]
    UpstreamTimeout,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            GatewayError::WrongTeam => StatusCode::FORBIDDEN,
            GatewayError::PolicyViolation { .. } | GatewayError::EscalationRequired { .. } => {
                StatusCode::CONFLICT
            }
            GatewayError::BudgetExceeded { .. } => StatusCode::PAYMENT_REQUIRED,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::BadRequest(_) | GatewayError::NoRoute(_) => StatusCode::BAD_REQUEST,
            GatewayError::Upstream(_) => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `(type, code)` of the error body.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            GatewayError::Unauthorized(_) => ("authentication_error", "invalid_api_key"),
            GatewayError::WrongTeam => ("permission_error", "team_not_served"),
            GatewayError::PolicyViolation { .. } => ("policy_violation", "input_blocked"),
            GatewayError::EscalationRequired { .. } => ("policy_violation", "escalation_required"),
            GatewayError::BudgetExceeded { .. } => ("budget_exceeded", "budget_exceeded"),
            GatewayError::RateLimited { .. } => ("rate_limit_error", "rate_limit_exceeded"),
            GatewayError::BadRequest(_) => ("invalid_request_error", "invalid_request"),
            GatewayError::NoRoute(_) => ("invalid_request_error", "model_not_routed"),
            GatewayError::Upstream(_) => ("upstream_error", "upstream_failed"),
            GatewayError::UpstreamTimeout => ("upstream_error", "upstream_timeout"),
            GatewayError::Unavailable(_) => ("service_unavailable", "unavailable"),
        }
    }

    /// Whether the same request may succeed later (rate limits, upstream
    /// trouble, an unavailable database).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::RateLimited { .. }
                | GatewayError::Upstream(_)
                | GatewayError::UpstreamTimeout
                | GatewayError::Unavailable(_)
        )
    }

    /// The policy responsible, when one is.
    pub fn policy(&self) -> Option<&str> {
        match self {
            GatewayError::PolicyViolation { policy, .. }
            | GatewayError::EscalationRequired { policy, .. }
            | GatewayError::BudgetExceeded { policy, .. }
            | GatewayError::RateLimited { policy, .. } => Some(policy),
            _ => None,
        }
    }

    /// Verdict and reason code recorded in the request's event.
    pub fn verdict_and_reason(&self) -> (&'static str, String) {
        match self {
            GatewayError::PolicyViolation { reason, .. } => ("block", reason.clone()),
            GatewayError::EscalationRequired { reason, .. } => ("escalate", reason.clone()),
            GatewayError::BudgetExceeded { .. } => ("block", "budget_exceeded".to_owned()),
            GatewayError::RateLimited { .. } => ("block", "rate_limited".to_owned()),
            other => ("error", other.kind().1.to_owned()),
        }
    }
}

impl GatewayError {
    /// The error in the caller's format: OpenAI's
    /// `{"error": {"type", "code", "message", "policy"}}`, or Anthropic's
    /// `{"type": "error", "error": {...}}` with the same fields inside.
    pub fn into_response_for(self, format: ApiFormat) -> Response {
        let (kind, code) = self.kind();
        let mut error = json!({
            "type": kind,
            "code": code,
            "message": self.to_string(),
            "policy": self.policy(),
        });
        if let GatewayError::EscalationRequired {
            escalation_id: Some(id),
            ..
        } = &self
        {
            error["escalation_id"] = json!(id);
        }
        let body = match format {
            ApiFormat::OpenAi => json!({ "error": error }),
            ApiFormat::Anthropic => json!({ "type": "error", "error": error }),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        // The OpenAI and Anthropic SDKs retry 409s (and more) by default; a
        // policy decision or a bad request will not change on retry.
        if !self.is_retryable() {
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if let GatewayError::RateLimited {
            retry_after_secs,
            limit,
            ..
        } = &self
        {
            // Retry-After, and the IETF RateLimit-* fields clients also read.
            let headers = response.headers_mut();
            for (name, value) in [
                (header::RETRY_AFTER.as_str(), retry_after_secs.to_string()),
                ("ratelimit-limit", limit.to_string()),
                ("ratelimit-remaining", "0".to_owned()),
                ("ratelimit-reset", retry_after_secs.to_string()),
            ] {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        response
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.into_response_for(ApiFormat::OpenAi)
    }
}
