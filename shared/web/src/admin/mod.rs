//! The admin API (`/admin/api/...`): operators manage rules and schemas at run time, try them
//! out, browse what Cuba stored and sent, and work the error log. Every route needs an admin
//! token ([`Authorized`]); every change records the admin's identity. Split by concern:
//! [`documents`] (rules and schemas), [`tryout`] (dry run, backtest, schema test), [`browsing`]
//! (events, alerts, profiles, the dashboard), [`error_log`] (entries and replays), [`silences`]
//! (operator alerts paused for a while), [`redrive`] (stream records whose retries ran out) and
//! [`vocabulary`] (what the rule builder offers).

mod browsing;
mod cursor;
mod documents;
mod error_log;
mod health;
mod redrive;
mod silences;
mod tryout;
mod vocabulary;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::auth::{AdminTokens, AdminVerifier, TokenCheck};
use crate::error::{ApiError, with_error_fallbacks};
use cuba_core::console::ports::{ActivityTally, Browse};
use cuba_core::console::redrive::StreamRedrive;
use cuba_core::delivery::ports::ProfileStore;
use cuba_core::delivery::silences::SilenceStore;
use cuba_core::evaluation::ports::RuleState;
use cuba_core::intake::{self, InvalidInput};
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::{EventId, Millis, UserId};
use cuba_core::model::ports::{DocumentStore, EventStore};
use cuba_core::pipeline::EventPipeline;
use cuba_core::rules::{RuleId, RuleSet};
use cuba_core::schemas::SchemaSet;
use cuba_core::schemas::ports::ErrorLog;

pub use browsing::{MAX_ACTIVITY_MINUTES, MAX_PAGE, MAX_UNSCOPED_DAYS};
pub use cursor::{CursorSeal, MAX_CURSOR_CHARS};
pub use error_log::MAX_REPLAY_BATCH;
pub use health::MAX_HEALTH_DAYS;
pub use redrive::REDRIVE_SECONDS;
pub use tryout::{BACKTEST_MAX_DAYS, BACKTEST_MAX_EVENTS};
pub use vocabulary::EVENT_TYPES_SAMPLE;

#[derive(Clone)]
pub struct AdminApi {
    pub rules: Arc<dyn DocumentStore>,
    /// Schema documents, versioned like rules.
    pub schemas: Arc<dyn DocumentStore>,
    pub errors: Arc<dyn ErrorLog>,
    /// Replays run the stream consumer's processing.
    pub pipeline: EventPipeline,
    pub browse: Arc<dyn Browse>,
    /// Events and alerts per minute, for the dashboard chart.
    pub tally: Arc<dyn ActivityTally>,
    pub profiles: Arc<dyn ProfileStore>,
    pub events: Arc<dyn EventStore>,
    pub state: Arc<dyn RuleState>,
    pub verifier: TokenCheck<AdminVerifier>,
    /// Seals the listings' cursors (see [`CursorSeal`]).
    pub cursors: CursorSeal,
    /// Operator alerts paused for a while.
    pub silences: Arc<dyn SilenceStore>,
    /// The stream failure queue and its redrive (`None`: the deployment has no such queue).
    pub redrive: Option<Arc<dyn StreamRedrive>>,
    pub clock: Arc<dyn Clock>,
}

impl AdminTokens for AdminApi {
    fn admin_tokens(&self) -> &TokenCheck<AdminVerifier> {
        &self.verifier
    }
}

type AdminState = Arc<AdminApi>;

/// The admin API and web UI routes, without fallbacks (see [`with_error_fallbacks`]).
pub fn routes(api: AdminApi) -> Router {
    use documents::{
        delete_document, document_versions, get_document, list_documents, put_document, set_enabled,
    };
    Router::new()
        .route("/admin/api/rules", get(list_documents::<RuleSet>))
        .route("/admin/api/rules/test", post(tryout::dry_run))
        .route("/admin/api/rules/backtest", post(tryout::backtest_draft))
        .route("/admin/api/rule-language", get(vocabulary::rule_language))
        .route("/admin/api/rule-health", get(health::rule_health_view))
        .route("/admin/api/event-types", get(vocabulary::event_types))
        .route(
            "/admin/api/rules/{id}",
            get(get_document::<RuleSet>)
                .put(put_document::<RuleSet>)
                .delete(delete_document::<RuleSet>),
        )
        .route("/admin/api/rules/{id}/enabled", put(set_enabled::<RuleSet>))
        .route(
            "/admin/api/rules/{id}/versions",
            get(document_versions::<RuleSet>),
        )
        .route("/admin/api/rules/{id}/backtest", post(tryout::backtest))
        .route("/admin/api/schemas", get(list_documents::<SchemaSet>))
        .route("/admin/api/schemas/test", post(tryout::test_schema))
        .route(
            "/admin/api/schemas/{id}",
            get(get_document::<SchemaSet>)
                .put(put_document::<SchemaSet>)
                .delete(delete_document::<SchemaSet>),
        )
        .route(
            "/admin/api/schemas/{id}/enabled",
            put(set_enabled::<SchemaSet>),
        )
        .route(
            "/admin/api/schemas/{id}/versions",
            get(document_versions::<SchemaSet>),
        )
        .route("/admin/api/errors", get(error_log::list))
        .route("/admin/api/errors/replay", post(error_log::replay_matching))
        .route("/admin/api/errors/{user}/{id}", get(error_log::get_one))
        .route(
            "/admin/api/errors/{user}/{id}/replay",
            post(error_log::replay_one),
        )
        .route("/admin/api/events", get(browsing::events))
        .route("/admin/api/feedback", get(browsing::feedback))
        .route("/admin/api/alerts", get(browsing::alerts))
        .route("/admin/api/users/{user}", get(browsing::user))
        .route("/admin/api/activity", get(browsing::activity))
        .route(
            "/admin/api/silences",
            get(silences::list).post(silences::create),
        )
        .route("/admin/api/silences/{id}", delete(silences::end))
        .route("/admin/api/stream-failures", get(redrive::waiting))
        .route("/admin/api/stream-failures/redrive", post(redrive::redrive))
        .with_state(Arc::new(api))
        .merge(crate::admin_ui::routes())
}

/// The admin API and UI, ready to serve.
pub fn router(api: AdminApi) -> Router {
    with_error_fallbacks(routes(api))
}

/// A whole number a query string may give (`None`: `default`), within `range`: a 400 naming
/// `field` otherwise.
fn whole_number<T>(
    raw: Option<&str>,
    field: &str,
    range: std::ops::RangeInclusive<T>,
    default: T,
) -> Result<T, ApiError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = raw else {
        return Ok(default);
    };
    raw.parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            invalid_value(
                field,
                format!(
                    "`{field}` must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn invalid_value(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_value", message).with_field(field)
}

/// A rule or schema id from a path (or a filter).
fn parse_document_id(raw: &str) -> Result<RuleId, ApiError> {
    RuleId::parse(raw).map_err(|why| invalid_value("id", format!("the id {why}")))
}

/// A user id from a path.
fn parse_user(raw: &str) -> Result<UserId, ApiError> {
    raw.parse::<u64>()
        .map(UserId)
        .map_err(|_| invalid_value("user", "the user id must be an integer"))
}

fn parse_event_id(raw: &str) -> Result<EventId, ApiError> {
    EventId::parse(raw).map_err(|e| invalid_value("id", format!("event id {e}")))
}

/// An intake refusal of a document nested under `prefix` in the body, its field named in full
/// (`event.noun`).
fn nested_input_error(prefix: &str, e: InvalidInput) -> ApiError {
    let field = e
        .field
        .map(|f| format!("{prefix}.{f}"))
        .unwrap_or_else(|| prefix.to_owned());
    ApiError::new(StatusCode::BAD_REQUEST, e.code.as_str(), e.message).with_field(field)
}

/// A time in a body: epoch seconds or milliseconds, or an RFC 3339 string, as clients send.
#[derive(Debug, Clone, Copy)]
struct ClientTime(Millis);

impl<'de> Deserialize<'de> for ClientTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        intake::parse_client_timestamp(&value)
            .map(ClientTime)
            .map_err(|why| serde::de::Error::custom(format!("invalid value: the time {why}")))
    }
}

/// A time in a query string.
fn query_time(field: &str, raw: Option<&str>) -> Result<Option<Millis>, ApiError> {
    raw.map(|v| {
        intake::parse_client_timestamp(&Value::String(v.to_owned()))
            .map_err(|why| invalid_value(field, format!("`{field}` {why}")))
    })
    .transpose()
}

/// `[from, to]` from optional bounds: `to` defaults to now, `from` to a day before `to`.
fn span(
    from: Option<Millis>,
    to: Option<Millis>,
    now: Millis,
) -> Result<(Millis, Millis), ApiError> {
    let to = to.unwrap_or(now);
    let from = from.unwrap_or_else(|| to.minus_seconds(24 * 60 * 60));
    if from > to {
        return Err(invalid_value("from", "`from` must not be after `to`"));
    }
    Ok((from, to))
}
