//! The public HTTP API, as an axum router: the ingest Lambda serves it through `lambda_http`
//! and the local runner serves the very same router on a TCP port.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde::Serialize;
use serde_json::json;

use crate::auth::{AuthError, TokenVerifier};
use crate::clock::Clock;
use crate::domain::{EventBody, EventId, StoredEvent, UserId, UserProfile};
use crate::intake::EventSubmission;
use crate::intake::{self, InvalidInput};
use crate::ports::{EventStore, Insert, PortError, ProfileStore, ReceivedEvent};
use crate::rules::RuleProblem;

/// Bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// A batch body may be this big...
pub const MAX_BATCH_BYTES: usize = 512 * 1024;
/// ...and hold this many events.
pub const MAX_BATCH_EVENTS: usize = 100;

/// Everything the ingest API needs, behind the core's ports.
#[derive(Clone)]
pub struct IngestApi {
    pub events: Arc<dyn EventStore>,
    pub profiles: Arc<dyn ProfileStore>,
    pub verifier: TokenVerifier,
    pub clock: Arc<dyn Clock>,
}

/// The ingest API, ready to serve.
pub fn router(api: IngestApi) -> Router {
    with_error_fallbacks(routes(api))
}

/// `/api/v1/event/`, `/api/v1/feedback/` and `/api/v1/user/`, each with or without the slash,
/// without fallbacks so it can be merged with other routers.
pub fn routes(api: IngestApi) -> Router {
    let api = Arc::new(api);
    Router::new()
        .route("/api/v1/event", post(post_event))
        .route("/api/v1/event/", post(post_event))
        .route("/api/v1/batch", post(post_batch))
        .route("/api/v1/batch/", post(post_batch))
        .route("/api/v1/feedback", post(post_feedback))
        .route("/api/v1/feedback/", post(post_feedback))
        .route("/api/v1/user", put(put_user))
        .route("/api/v1/user/", put(put_user))
        .with_state(api)
}

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
    pub problems: Vec<RuleProblem>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl ApiError {
    /// The `{"error": {...}}` body, also used for one item of a batch answer.
    pub fn body_json(&self) -> serde_json::Value {
        let mut body =
            json!({"error": {"code": self.code, "message": self.message, "field": self.field}});
        if !self.problems.is_empty() {
            body["error"]["problems"] = json!(self.problems);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body_json();
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
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
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::NotAdmin => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        if e == PortError::InvalidCursor {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", e.to_string())
                .with_field("cursor");
        }
        // Logged in full here; the client learns only that a retry is worth it.
        tracing::error!(error = %e, "storage or queue failure");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service could not store this right now; retry with the same id",
        )
    }
}

/// The `Authorization` header's value, if there is one.
pub fn authorization(parts: &Parts) -> Result<Option<&str>, AuthError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().map_err(|_| AuthError::Invalid))
        .transpose()
}

/// The user a valid bearer token names.
struct Authenticated(UserId);

impl FromRequestParts<Arc<IngestApi>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<IngestApi>) -> Result<Self, ApiError> {
        Ok(Authenticated(
            api.verifier.verify_header(authorization(parts)?)?,
        ))
    }
}

/// A JSON body of at most [`MAX_BODY_BYTES`], refused with a JSON error otherwise.
pub struct JsonBytes(pub Bytes);

/// A JSON body of at most [`MAX_BATCH_BYTES`] (the batch endpoint).
pub struct BatchBytes(pub Bytes);

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

fn check_user(token_user: UserId, body_user: Option<UserId>) -> Result<UserId, ApiError> {
    match body_user {
        Some(u) if u != token_user => Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "user_mismatch",
            message: format!("the token is for user {token_user}, the body names user {u}"),
            field: Some("user".into()),
            problems: Vec::new(),
        }),
        _ => Ok(token_user),
    }
}

#[derive(Serialize)]
struct Accepted<'a> {
    id: &'a str,
    status: &'static str,
}

/// Either envelope (mobile or web): stored with its raw text, validated later.
async fn post_event(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let (user, id, body_value) = submitted(token_user, intake::parse_event(&body)?)?;
    let raw = String::from_utf8_lossy(&body).into_owned();
    accept(&api, received(&api, user, id, body_value, raw)).await
}

async fn post_feedback(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let submission = intake::parse_feedback(&body)?;
    let user = check_user(token_user, submission.user)?;
    let raw = String::from_utf8_lossy(&body).into_owned();
    let event = received(
        &api,
        user,
        submission.id,
        EventBody::Feedback(submission.feedback),
        raw,
    );
    accept(&api, event).await
}

fn submitted(
    token_user: UserId,
    submission: EventSubmission,
) -> Result<(UserId, Option<EventId>, EventBody), ApiError> {
    match submission {
        EventSubmission::Mobile(m) => Ok((
            check_user(token_user, m.user)?,
            m.id,
            EventBody::Activity(m.activity),
        )),
        EventSubmission::Web(w) => Ok((
            check_user(token_user, w.user)?,
            w.id,
            EventBody::Web(w.event),
        )),
    }
}

fn received(
    api: &IngestApi,
    user: UserId,
    id: Option<EventId>,
    body: EventBody,
    raw: String,
) -> ReceivedEvent {
    ReceivedEvent {
        event: StoredEvent {
            user,
            id: id.unwrap_or_else(EventId::generate),
            received_at: api.clock.now(),
            body,
        },
        raw,
    }
}

/// Answers only once the event is durably stored; validation, rules and absence checks
/// follow from the table's stream.
async fn accept(api: &IngestApi, received: ReceivedEvent) -> Result<Response, ApiError> {
    let (stored, status, code) = match api.events.insert(&received).await? {
        Insert::Inserted => (received.event, "accepted", StatusCode::ACCEPTED),
        Insert::Duplicate(existing) => (existing, "duplicate", StatusCode::OK),
    };
    tracing::info!(user = %stored.user, event_id = %stored.id, status, "event received");
    let body = Accepted {
        id: stored.id.as_str(),
        status,
    };
    Ok((code, axum::Json(body)).into_response())
}

/// One item's answer in a batch.
#[derive(Serialize)]
struct ItemResult {
    index: usize,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// `{"events": [...]}`: up to 100 events of either envelope, stored with batched writes and
/// answered item by item, so one bad item never sinks the rest.
async fn post_batch(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    BatchBytes(body): BatchBytes,
) -> Result<Response, ApiError> {
    let items = intake::parse_batch(&body, MAX_BATCH_EVENTS)?;
    let mut results: Vec<ItemResult> = Vec::with_capacity(items.len());
    let mut to_store = Vec::new();
    let mut stored_index = Vec::new();
    for (index, raw) in items.into_iter().enumerate() {
        let parsed = serde_json::from_str::<serde_json::Value>(&raw)
            .map_err(|e| InvalidInput::malformed(format!("the item is not valid JSON: {e}")))
            .and_then(intake::parse_event_value)
            .map_err(ApiError::from)
            .and_then(|submission| submitted(token_user, submission));
        match parsed {
            Ok((user, id, body_value)) => {
                stored_index.push(index);
                to_store.push(received(&api, user, id, body_value, raw));
                results.push(ItemResult {
                    index,
                    status: "accepted",
                    id: None,
                    error: None,
                });
            }
            Err(error) => results.push(ItemResult {
                index,
                status: "rejected",
                id: None,
                error: Some(error.body_json()["error"].clone()),
            }),
        }
    }
    let outcomes = api.events.insert_many(&to_store).await?;
    for ((index, received), outcome) in stored_index.into_iter().zip(&to_store).zip(outcomes) {
        let result = &mut results[index];
        match outcome {
            Insert::Inserted => {
                result.id = Some(received.event.id.as_str().to_owned());
            }
            Insert::Duplicate(existing) => {
                result.status = "duplicate";
                result.id = Some(existing.id.as_str().to_owned());
            }
        }
    }
    let count = |status: &str| results.iter().filter(|r| r.status == status).count();
    let (accepted, duplicates, rejected) =
        (count("accepted"), count("duplicate"), count("rejected"));
    tracing::info!(user = %token_user, accepted, duplicates, rejected, "batch received");
    let body = json!({
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": rejected,
        "results": results,
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn put_user(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let submission = intake::parse_profile(&body)?;
    let user = check_user(token_user, submission.user)?;
    let profile = UserProfile {
        user,
        phone: submission.phone,
        updated_at: api.clock.now(),
    };
    api.profiles.put_profile(&profile).await?;
    let body = json!({"user": profile.user, "phone": profile.phone, "status": "saved"});
    Ok((StatusCode::OK, axum::Json(body)).into_response())
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
