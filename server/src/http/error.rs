//! One error type for the API, one JSON shape:
//! `{"error": {"code": "...", "message": "..."}}`. 4xx messages are safe to
//! show; 5xx details are logged, not returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::StoreError;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    /// 422 for a policy config that fails lint, with every diagnostic.
    #[error("{0}")]
    Lint(String, Vec<policy::Diagnostic>),
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "team not found"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// What went wrong, for a person (4xx: safe to show; 5xx: generic).
    pub message: String,
    /// For a policy config that fails lint: each problem with its line and
    /// column (1-based), field path, message and suggestion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub diagnostics: Option<Vec<serde_json::Value>>,
}

/// The kind of error; each goes with one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 409
    Conflict,
    /// 422
    #[serde(rename = "invalid")]
    Invalid,
    /// 503
    Unavailable,
    /// 500
    Internal,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            ApiError::Unprocessable(_) | ApiError::Lint(..) => {
                (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid)
            }
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }

    /// Maps a store error, naming the kind of object for 404/409 messages.
    pub fn from_store(err: StoreError, what: &str) -> ApiError {
        match err {
            StoreError::NotFound => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(_) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::Forbidden => ApiError::Forbidden(
                "this token's scope does not allow that; use an org-admin token".to_owned(),
            ),
            StoreError::Invalid(msg) => ApiError::BadRequest(msg),
            StoreError::Denied(msg) => ApiError::Forbidden(msg),
            other => other.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            err if err.is_unavailable() => {
                tracing::error!(error = %err, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::NotFound => ApiError::NotFound("not found".to_owned()),
            StoreError::Denied(msg) => ApiError::Forbidden(msg),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "API request failed");
        }
        let diagnostics = match &self {
            ApiError::Lint(_, diags) => Some(
                diags
                    .iter()
                    .filter_map(|d| serde_json::to_value(d).ok())
                    .collect(),
            ),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                diagnostics,
            },
        };
        (status, Json(body)).into_response()
    }
}
