//! What routes read from a request: JSON bodies of a bounded size, raw or typed (a body that
//! does not fit names the field at fault), and query strings; each refused in the shape of
//! [`ApiError`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use cuba_core::intake;
use cuba_core::model::trace::TraceContext;

use crate::error::ApiError;

/// Bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// A batch body may be this big.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// A JSON body of at most [`MAX_BODY_BYTES`], refused with a JSON error otherwise.
pub struct JsonBytes(pub Bytes);

/// A JSON body of at most [`MAX_BATCH_BYTES`] (the batch endpoint).
pub struct BatchBytes(pub Bytes);

/// The trace the request arrived in: its `X-Amzn-Trace-Id` header, which API Gateway sets and
/// the Lambda entrypoint overwrites with the invocation's own trace. A header that names no
/// trace is ignored: a trace is for following a request, never a reason to refuse one.
pub struct RequestTrace(pub Option<TraceContext>);

/// The header X-Ray's trace context travels in.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

impl<S: Send + Sync> FromRequestParts<S> for RequestTrace {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestTrace(
            parts
                .headers
                .get(TRACE_HEADER)
                .and_then(|value| value.to_str().ok())
                .and_then(|header| header.parse().ok()),
        ))
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        json_body(request, MAX_BODY_BYTES).await.map(JsonBytes)
    }
}

impl<S: Send + Sync> FromRequest<S> for BatchBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        json_body(request, MAX_BATCH_BYTES).await.map(BatchBytes)
    }
}

async fn json_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body must be at most {limit} bytes"),
            )
        })
}

/// A query string read into `T`; one `T` cannot hold (a parameter given twice, say) is refused
/// as `400 invalid_query` in the usual error shape, never axum's plain-text rejection.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| QueryParams(value))
            .map_err(|rejection| {
                ApiError::bad_request("invalid_query", rejection.body_text()).with_field("query")
            })
    }
}

/// A JSON body of at most [`MAX_BODY_BYTES`], read into `T` by the core's one body reader
/// ([`intake::read_body`]): a body `T` cannot hold is refused with the path of the field at
/// fault: `missing_field`, `invalid_type`, `invalid_value` or `unknown_field`; one that is not
/// JSON with `malformed_json`, one that is not an object with `invalid_body`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let bytes = json_body(request, MAX_BODY_BYTES).await?;
        Ok(JsonBody(intake::read_body(&bytes)?))
    }
}
