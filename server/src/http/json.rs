//! A JSON body extractor whose rejections use the API's error shape and say
//! what was wrong (serde's message names the field, line and column).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => ApiError::Unprocessable(format!(
                    "invalid request body: {}",
                    std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string())
                )),
                JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!(
                    "the request body is not valid JSON: {}",
                    std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string())
                )),
                JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                    "send the body as JSON with `Content-Type: application/json`".to_owned(),
                ),
                other => ApiError::BadRequest(other.body_text()),
            }),
        }
    }
}
