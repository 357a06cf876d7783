//! The ingest API (`/api/v1/...`): clients' events, batches, feedback and profiles, each
//! answered only once durably stored.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;

use crate::auth::{Authenticated, TokenCheck, TokenVerifier, UserTokens};
use crate::error::{ApiError, RefusedWith, with_error_fallbacks};
use crate::request::{BatchBytes, JsonBytes, MAX_BODY_BYTES, RequestTrace};
use cuba_core::delivery::verification::{PhoneVerifier, VerificationError};
use cuba_core::evaluation::source::SchemaSource;
use cuba_core::intake::EventSubmission;
use cuba_core::intake::rate::{Admission, UserRateLimiter};
use cuba_core::intake::{self, InvalidInput};
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::{
    EventBody, EventId, IdOrigin, Insert, Millis, ReceivedEvent, StoredEvent, UserId,
};
use cuba_core::model::ports::{ErrorChain, EventStore};
use cuba_core::model::trace::TraceContext;

pub use cuba_core::intake::MAX_BATCH_EVENTS;

/// Everything the ingest API needs, behind the core's ports.
#[derive(Clone)]
pub struct IngestApi {
    pub events: Arc<dyn EventStore>,
    /// The schemas in force: an event that passes its schema is stored as its parsed fields
    /// only (one copy of its body); one that fails keeps the client's raw text too, for the
    /// error log. The stream consumer validates again and has the last word.
    pub schemas: Arc<SchemaSource>,
    pub phones: PhoneVerifier,
    pub verifier: TokenCheck<TokenVerifier>,
    /// How fast one user may send events (single, feedback and batched alike).
    pub limiter: Arc<UserRateLimiter>,
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
    let events = Router::new()
        .route("/api/v1/event", post(post_event))
        .route("/api/v1/event/", post(post_event))
        .route("/api/v1/feedback", post(post_feedback))
        .route("/api/v1/feedback/", post(post_feedback))
        .route_layer(axum::middleware::map_response(count_refusal))
        .with_state(api.clone());
    Router::new()
        .merge(events)
        .route("/api/v1/batch", post(post_batch))
        .route("/api/v1/batch/", post(post_batch))
        .route("/api/v1/user", put(put_user))
        .route("/api/v1/user/", put(put_user))
        .route("/api/v1/user/verify", post(verify_phone))
        .route("/api/v1/user/verify/", post(verify_phone))
        .route("/api/v1/openapi.json", get(openapi))
        .with_state(api)
}

impl UserTokens for IngestApi {
    fn user_tokens(&self) -> &TokenCheck<TokenVerifier> {
        &self.verifier
    }
}

/// Takes `events` of the user's rate allowance, or refuses the request with `429 rate_limited`
/// and when to try again. Checked before any event is read or stored (a batch once its items
/// are counted): a refused request costs nothing more, and stores nothing.
async fn within_rate(api: &IngestApi, user: UserId, events: usize) -> Result<(), ApiError> {
    let events = u32::try_from(events).unwrap_or(u32::MAX);
    match api.limiter.admit(user, events).await {
        Admission::Admitted => Ok(()),
        Admission::Limited {
            retry_after_seconds,
        } => {
            let limit = api.limiter.limit();
            Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "user {user} is sending events faster than {} a second (bursts of {}); \
                     retry after {retry_after_seconds} s",
                    limit.per_second(),
                    limit.burst()
                ),
            )
            .with_retry_after(retry_after_seconds))
        }
    }
}

fn check_user(token_user: UserId, body_user: Option<UserId>) -> Result<UserId, ApiError> {
    match body_user {
        Some(u) if u != token_user => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "user_mismatch",
            format!("the token is for user {token_user}, the body names user {u}"),
        )
        .with_field("user")),
        _ => Ok(token_user),
    }
}

/// Names of the metrics this router counts (CloudWatch EMF through the `metrics` facade).
pub mod metric_names {
    pub const EVENTS_ACCEPTED: &str = "EventsAccepted";
    pub const EVENTS_DUPLICATE: &str = "EventsDuplicate";
    /// Dimension `Code`: the error code the event was refused with.
    pub const EVENTS_REJECTED: &str = "EventsRejected";
    pub const BATCH_SIZE: &str = "BatchSize";
    /// A code request refused because the day's code budget is spent.
    pub const CODE_BUDGET_SPENT: &str = "CodeBudgetSpent";
}

fn count(status: Status, code: Option<&'static str>) {
    match status {
        Status::Accepted => metrics::counter!(metric_names::EVENTS_ACCEPTED).increment(1),
        Status::Duplicate => metrics::counter!(metric_names::EVENTS_DUPLICATE).increment(1),
        Status::Rejected => {
            metrics::counter!(metric_names::EVENTS_REJECTED, "Code" => code.unwrap_or("unknown"))
                .increment(1);
        }
    }
}

/// A single event or feedback refused (by the body, the token or the store): counted by code.
async fn count_refusal(response: Response) -> Response {
    if response.status().is_client_error()
        && let Some(RefusedWith(code)) = response.extensions().get::<RefusedWith>()
    {
        count(Status::Rejected, Some(code));
    }
    response
}

/// The OpenAPI 3.1 description of `/api/v1` and `/admin/api`; tests keep it and the routes in
/// step, and schemathesis checks the answers against it.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
        .into_response()
}

/// What became of one submitted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Accepted,
    Duplicate,
    Rejected,
}

#[derive(Serialize)]
struct Accepted<'a> {
    id: &'a str,
    status: Status,
}

/// Either envelope (mobile or web): stored with its raw text, validated later.
async fn post_event(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    RequestTrace(trace): RequestTrace,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    within_rate(&api, token_user, 1).await?;
    let (user, id, body_value) = submitted(token_user, intake::parse_event(&body)?)?;
    let raw = String::from_utf8_lossy(&body).into_owned();
    let event = received(api.clock.now(), user, id, body_value, raw, trace);
    accept(&api, event).await
}

async fn post_feedback(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    RequestTrace(trace): RequestTrace,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    within_rate(&api, token_user, 1).await?;
    let submission = intake::parse_feedback(&body)?;
    let user = check_user(token_user, submission.user)?;
    let raw = String::from_utf8_lossy(&body).into_owned();
    let event = received(
        api.clock.now(),
        user,
        submission.id,
        EventBody::Feedback(submission.feedback),
        raw,
        trace,
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
    at: Millis,
    user: UserId,
    id: Option<EventId>,
    body: EventBody,
    raw: String,
    trace: Option<TraceContext>,
) -> ReceivedEvent {
    let (id, origin) = match id {
        Some(id) => (id, IdOrigin::Client),
        None => (EventId::minted_at(at), IdOrigin::Minted),
    };
    ReceivedEvent {
        trace,
        event: StoredEvent {
            user,
            id,
            received_at: at,
            body,
        },
        raw,
        origin,
    }
}

/// Drops the raw text of the events that pass their schema: everything downstream reads the
/// parsed fields, and only the error log shows what a client sent, so a valid event is stored
/// with one copy of its body. Without the schemas (the store unreadable since a cold start),
/// every event keeps both copies.
async fn keep_one_copy(api: &IngestApi, events: &mut [ReceivedEvent]) {
    let schemas = match api.schemas.current().await {
        Ok(schemas) => schemas,
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "schemas unavailable; storing raw text with every event");
            return;
        }
    };
    for received in events {
        if schemas.validate(&received.event).is_valid() {
            received.raw = String::new();
        }
    }
}

/// Answers only once the event is durably stored; validation, rules and absence checks
/// follow from the table's stream.
async fn accept(api: &IngestApi, mut received: ReceivedEvent) -> Result<Response, ApiError> {
    keep_one_copy(api, std::slice::from_mut(&mut received)).await;
    let (stored, status, code) = match api.events.insert(&received).await? {
        Insert::Inserted => (received.event, Status::Accepted, StatusCode::ACCEPTED),
        Insert::Duplicate(existing) => (existing, Status::Duplicate, StatusCode::OK),
        Insert::Refused { reason } => return Err(unstorable(reason)),
    };
    count(status, None);
    tracing::info!(user = %stored.user, event_id = %stored.id, ?status, "event received");
    let body = Accepted {
        id: stored.id.as_str(),
        status,
    };
    Ok((code, axum::Json(body)).into_response())
}

/// The store refused the event as it is: the client's fault, not worth retrying.
fn unstorable(reason: String) -> ApiError {
    ApiError::bad_request(
        "unstorable",
        format!("the event cannot be stored as it is: {reason}"),
    )
}

/// One item's answer in a batch.
#[derive(Serialize)]
struct ItemResult {
    index: usize,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ApiError>,
}

#[derive(Serialize)]
struct BatchAnswer {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    results: Vec<ItemResult>,
}

/// `{"events": [...]}`: up to 100 events of either envelope, stored with batched writes and
/// answered item by item, so one bad item never sinks the rest.
async fn post_batch(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    RequestTrace(trace): RequestTrace,
    BatchBytes(body): BatchBytes,
) -> Result<Response, ApiError> {
    let items = intake::parse_batch(&body, MAX_BATCH_EVENTS)?;
    if let Err(limited) = within_rate(&api, token_user, items.len()).await {
        metrics::counter!(metric_names::EVENTS_REJECTED, "Code" => limited.code)
            .increment(items.len() as u64);
        return Err(limited);
    }
    // One receive time for the whole request: its events are stored concurrently, so the
    // stream may deliver them in any order, and a window rule decides on the events received
    // by its trigger's time. Sharing the time, the last of them processed counts them all.
    let at = api.clock.now();
    let mut results: Vec<ItemResult> = Vec::with_capacity(items.len());
    let mut to_store = Vec::new();
    let mut stored_index = Vec::new();
    for (index, raw) in items.into_iter().enumerate() {
        let parsed = if raw.len() > MAX_BODY_BYTES {
            // The same bound as a single event's body, item by item: one oversized event is
            // that item's refusal, not the batch's.
            Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("an event must be at most {MAX_BODY_BYTES} bytes"),
            ))
        } else {
            serde_json::from_str::<serde_json::Value>(&raw)
                .map_err(|e| InvalidInput::malformed(format!("the item is not valid JSON: {e}")))
                .and_then(intake::parse_event_value)
                .map_err(ApiError::from)
                .and_then(|submission| submitted(token_user, submission))
        };
        match parsed {
            Ok((user, id, body_value)) => {
                stored_index.push(index);
                to_store.push(received(at, user, id, body_value, raw, trace.clone()));
                results.push(ItemResult {
                    index,
                    status: Status::Accepted,
                    id: None,
                    error: None,
                });
            }
            Err(error) => results.push(ItemResult {
                index,
                status: Status::Rejected,
                id: None,
                error: Some(error),
            }),
        }
    }
    keep_one_copy(&api, &mut to_store).await;
    let outcomes = api.events.insert_many(&to_store).await?;
    for ((index, received), outcome) in stored_index.into_iter().zip(&to_store).zip(outcomes) {
        let result = &mut results[index];
        match outcome {
            Insert::Inserted => result.id = Some(received.event.id.clone()),
            Insert::Duplicate(existing) => {
                result.status = Status::Duplicate;
                result.id = Some(existing.id);
            }
            Insert::Refused { reason } => {
                result.status = Status::Rejected;
                result.error = Some(unstorable(reason));
            }
        }
    }
    metrics::histogram!(metric_names::BATCH_SIZE).record(results.len() as f64);
    for result in &results {
        count(result.status, result.error.as_ref().map(|e| e.code));
    }
    let tally = |status: Status| results.iter().filter(|r| r.status == status).count();
    let body = BatchAnswer {
        accepted: tally(Status::Accepted),
        duplicates: tally(Status::Duplicate),
        rejected: tally(Status::Rejected),
        results,
    };
    tracing::info!(user = %token_user, accepted = body.accepted, duplicates = body.duplicates, rejected = body.rejected, "batch received");
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// Stores the user's phone number as unverified and texts it a code (`202`), or answers `200`
/// when it already is their verified number.
async fn put_user(
    State(api): State<Arc<IngestApi>>,
    Authenticated(token_user): Authenticated,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let submission = intake::parse_profile(&body)?;
    let user = check_user(token_user, submission.user)?;
    let status = api
        .phones
        .set_phone(user, submission.update)
        .await
        .map_err(verification_error)?;
    let code = if status.verified {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, axum::Json(status)).into_response())
}

/// `{"code": "123456"}`: verifies the user's number with the code texted to it.
async fn verify_phone(
    State(api): State<Arc<IngestApi>>,
    Authenticated(user): Authenticated,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let code = intake::parse_verification(&body)?;
    let status = api
        .phones
        .verify(user, &code)
        .await
        .map_err(verification_error)?;
    tracing::info!(%user, "phone number verified");
    Ok((StatusCode::OK, axum::Json(status)).into_response())
}

fn verification_error(e: VerificationError) -> ApiError {
    let message = e.to_string();
    match e {
        VerificationError::TooManyCodes {
            retry_after_seconds,
        } => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_codes", message)
            .with_retry_after(retry_after_seconds),
        VerificationError::NoPendingCode => {
            ApiError::new(StatusCode::CONFLICT, "no_pending_code", message)
        }
        VerificationError::CodeExpired => {
            ApiError::bad_request("code_expired", message).with_field("code")
        }
        VerificationError::TooManyAttempts => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
        }
        VerificationError::WrongCode { .. } => {
            ApiError::bad_request("wrong_code", message).with_field("code")
        }
        VerificationError::NumberRefused { .. } => {
            ApiError::bad_request("phone_refused", message).with_field("phone")
        }
        VerificationError::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", message),
        VerificationError::SmsLimit(_) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "sms_limit", message).with_field("phone")
        }
        VerificationError::CodeBudgetSpent(_) => {
            // Every user's code requests fail until midnight: the operators' alarm counts this.
            metrics::counter!(metric_names::CODE_BUDGET_SPENT).increment(1);
            tracing::error!("the daily budget of verification code SMS is spent");
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "sms_limit", message).with_field("phone")
        }
        VerificationError::Port(port) => port.into(),
    }
}
