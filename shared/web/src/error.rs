//! The one error type every route answers with, and the fallbacks for unknown routes and
//! methods.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use cuba_core::intake::InvalidInput;
use cuba_core::model::document::Problem;
use cuba_core::model::ports::{ErrorChain, PortError};

/// JSON 404 and 405 answers for whatever the routes do not cover.
pub fn with_error_fallbacks(router: Router) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// A refusal: status, machine-readable code, human message and, where one is at fault, the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Every problem, each with its JSON path, where there can be several (rule validation).
    pub problems: Vec<Problem>,
    /// Seconds to wait before trying again, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// The `{"error": {...}}` body of every refusal.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What went wrong, as every refusal (and every refused item of a batch) spells it.
#[derive(Debug, Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
    /// The field at fault, or `null`.
    pub field: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub problems: &'a [Problem],
}

impl ApiError {
    pub fn detail(&self) -> ErrorDetail<'_> {
        ErrorDetail {
            code: self.code,
            message: &self.message,
            field: self.field.as_deref(),
            problems: &self.problems,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.detail().serialize(serializer)
    }
}

/// The error code a response carries, for counting refusals by code without reading the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedWith(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(ErrorBody {
                error: self.detail(),
            }),
        )
            .into_response();
        response.extensions_mut().insert(RefusedWith(self.code));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        let retry_after = match self.retry_after {
            Some(seconds) => Some(seconds),
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            None => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: e.code.as_str(),
            message: e.message,
            field: e.field,
            problems: Vec::new(),
            retry_after: None,
        }
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        if e == PortError::InvalidCursor {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", e.to_string())
                .with_field("cursor");
        }
        // Logged in full here; the client learns only that a retry is worth it.
        tracing::error!(error = %ErrorChain(&e), "storage or queue failure");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage did not answer in time; retrying is safe (a write: with the same id)",
        )
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
