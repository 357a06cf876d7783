//! The admin API (`/admin/api/...`): operators manage rules at run time and try them out.
//! Every route needs an admin token; every change records the admin's identity.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{AdminTokens, AdminVerifier, Authorized};
use crate::error::{ApiError, JsonBytes, with_error_fallbacks};
use cuba_core::activity::PerMinute;
use cuba_core::alert::AlertFilter;
use cuba_core::alerting::DispatchError;
use cuba_core::clock::Clock;
use cuba_core::document::{DocumentAction, DocumentRecord, InvalidDocument, Problem};
use cuba_core::domain::Millis;
use cuba_core::domain::{EventBody, EventId, SessionId, StoredEvent, UserId};
use cuba_core::error_log::{ErrorFilter, ErrorStatus};
use cuba_core::intake;
use cuba_core::listing::{EventFilter, EventKind};
use cuba_core::ports::{
    Browse, DocumentStore, DocumentWriteError, ErrorLog, EventStore, PortError, ProfileStore,
    RuleState,
};
use cuba_core::processing::EventPipeline;
use cuba_core::processing::ReplayOutcome;
use cuba_core::rules::{Action, Condition, Rule, RuleId};
use cuba_core::schemas::{Schema, SchemaSet, Verdict};

#[derive(Clone)]
pub struct AdminApi {
    pub rules: Arc<dyn DocumentStore>,
    /// Schema documents, versioned like rules.
    pub schemas: Arc<dyn DocumentStore>,
    pub errors: Arc<dyn ErrorLog>,
    /// Replays run the stream consumer's processing.
    pub pipeline: EventPipeline,
    pub browse: Arc<dyn Browse>,
    pub profiles: Arc<dyn ProfileStore>,
    pub events: Arc<dyn EventStore>,
    pub state: Arc<dyn RuleState>,
    pub verifier: AdminVerifier,
    pub clock: Arc<dyn Clock>,
}

/// The admin API and web UI routes, without fallbacks (see [`crate::ingest::with_error_fallbacks`]).
pub fn routes(api: AdminApi) -> Router {
    Router::new()
        .route("/admin/api/rules", get(list_documents::<Rules>))
        .route("/admin/api/rules/test", post(dry_run))
        .route(
            "/admin/api/rules/{id}",
            get(get_document::<Rules>)
                .put(put_document::<Rules>)
                .delete(delete_document::<Rules>),
        )
        .route("/admin/api/rules/{id}/enabled", put(set_enabled::<Rules>))
        .route(
            "/admin/api/rules/{id}/versions",
            get(document_versions::<Rules>),
        )
        .route("/admin/api/schemas", get(list_documents::<Schemas>))
        .route("/admin/api/schemas/test", post(test_schema))
        .route(
            "/admin/api/schemas/{id}",
            get(get_document::<Schemas>)
                .put(put_document::<Schemas>)
                .delete(delete_document::<Schemas>),
        )
        .route(
            "/admin/api/schemas/{id}/enabled",
            put(set_enabled::<Schemas>),
        )
        .route(
            "/admin/api/schemas/{id}/versions",
            get(document_versions::<Schemas>),
        )
        .route("/admin/api/errors", get(list_errors))
        .route("/admin/api/errors/replay", post(replay_matching))
        .route("/admin/api/errors/{user}/{id}", get(get_error))
        .route("/admin/api/errors/{user}/{id}/replay", post(replay_one))
        .route("/admin/api/rules/{id}/backtest", post(backtest))
        .route("/admin/api/events", get(list_events))
        .route("/admin/api/feedback", get(list_feedback))
        .route("/admin/api/alerts", get(list_alerts))
        .route("/admin/api/users/{user}", get(get_user))
        .route("/admin/api/activity", get(activity))
        .with_state(Arc::new(api))
        .merge(crate::admin_ui::routes())
}

/// The admin API, ready to serve.
pub fn router(api: AdminApi) -> Router {
    with_error_fallbacks(routes(api))
}

impl AdminTokens for AdminApi {
    fn admin_tokens(&self) -> &AdminVerifier {
        &self.verifier
    }
}

fn bad_request(code: &'static str, message: impl Into<String>, field: Option<&str>) -> ApiError {
    let error = ApiError::new(StatusCode::BAD_REQUEST, code, message);
    match field {
        Some(f) => error.with_field(f),
        None => error,
    }
}

fn invalid_rule(e: InvalidDocument) -> ApiError {
    invalid_document("invalid_rule", e)
}

fn invalid_document(code: &'static str, e: InvalidDocument) -> ApiError {
    let mut error = bad_request(
        code,
        format!("the rule has {} problem(s); see `problems`", e.0.len()),
        None,
    );
    error.problems = e.0;
    error
}

/// A user id from a path.
fn parse_user(raw: &str) -> Result<UserId, ApiError> {
    raw.parse::<u64>().map(UserId).map_err(|_| {
        bad_request(
            "invalid_value",
            "the user id must be an integer",
            Some("user"),
        )
    })
}

/// An intake refusal of a document nested under `prefix` in the body, its field named in full
/// (`event.noun`).
fn nested_input_error(prefix: &str, e: intake::InvalidInput) -> ApiError {
    let field = e
        .field
        .map(|f| format!("{prefix}.{f}"))
        .unwrap_or_else(|| prefix.to_owned());
    bad_request(e.code.as_str(), e.message, Some(&field))
}

fn parse_id(raw: &str) -> Result<RuleId, ApiError> {
    RuleId::parse(raw)
        .map_err(|why| bad_request("invalid_value", format!("rule id {why}"), Some("id")))
}

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request(
            "invalid_body",
            "the body must be a JSON object",
            None,
        )),
        Err(e) => Err(bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
            None,
        )),
    }
}

/// The two versioned registries operators edit: rules and event schemas. Both are stored,
/// versioned, switched and audited the same way; only their validation differs.
trait Registry: Send + Sync + 'static {
    const NOUN: &'static str;
    const PLURAL: &'static str;
    const INVALID_CODE: &'static str;
    fn store(api: &AdminApi) -> &Arc<dyn DocumentStore>;
    fn validate(document: &Value) -> Result<(), InvalidDocument>;
    fn not_found(id: &RuleId) -> ApiError;
}

struct Rules;
struct Schemas;

impl Registry for Rules {
    const NOUN: &'static str = "rule";
    const PLURAL: &'static str = "rules";
    const INVALID_CODE: &'static str = "invalid_rule";
    fn store(api: &AdminApi) -> &Arc<dyn DocumentStore> {
        &api.rules
    }
    fn validate(document: &Value) -> Result<(), InvalidDocument> {
        Rule::from_json(document, "$").map(|_| ())
    }
    fn not_found(id: &RuleId) -> ApiError {
        not_found(id)
    }
}

impl Registry for Schemas {
    const NOUN: &'static str = "schema";
    const PLURAL: &'static str = "schemas";
    const INVALID_CODE: &'static str = "invalid_schema";
    fn store(api: &AdminApi) -> &Arc<dyn DocumentStore> {
        &api.schemas
    }
    fn validate(document: &Value) -> Result<(), InvalidDocument> {
        Schema::from_json(document, 0)
            .map(|_| ())
            .map_err(|e| InvalidDocument(e.0))
    }
    fn not_found(id: &RuleId) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "schema_not_found",
            format!("no schema `{id}`"),
        )
    }
}

fn not_found(id: &RuleId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "rule_not_found",
        format!("no rule `{id}`"),
    )
}

fn conflict(current: Option<u64>) -> ApiError {
    let message = match current {
        Some(v) => format!("the rule is at version {v}; reload it and apply your change again"),
        None => "the rule does not exist (any more); create it with version 0".to_owned(),
    };
    ApiError::new(StatusCode::CONFLICT, "version_conflict", message).with_field("version")
}

impl From<DocumentWriteError> for ApiError {
    fn from(e: DocumentWriteError) -> Self {
        match e {
            DocumentWriteError::Conflict { current } => conflict(current),
            DocumentWriteError::Port(p) => p.into(),
        }
    }
}

fn record_json(record: &DocumentRecord) -> Value {
    json!({
        "id": record.id,
        "version": record.version,
        "enabled": record.document.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        "updated_by": record.updated_by,
        "updated_at": record.updated_at,
        "rule": record.document,
    })
}

async fn list_documents<R: Registry>(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
) -> Result<Response, ApiError> {
    let records = R::store(&api).current().await?.unwrap_or_default();
    let rules: Vec<Value> = records.iter().map(record_json).collect();
    Ok(axum::Json(json!({ R::PLURAL: rules })).into_response())
}

async fn get_document<R: Registry>(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let record = R::store(&api)
        .get(&id)
        .await?
        .ok_or_else(|| R::not_found(&id))?;
    Ok(axum::Json(record_json(&record)).into_response())
}

/// Create (`version` 0 or absent) or replace (`version` = the version being replaced).
async fn put_document<R: Registry>(
    State(api): State<Arc<AdminApi>>,
    Authorized(admin): Authorized,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let mut document = json_object(&body)?;
    let expected = match document.remove("version") {
        None => 0,
        Some(v) => v.as_u64().ok_or_else(|| {
            bad_request(
                "invalid_type",
                "`version` must be a non-negative integer",
                Some("version"),
            )
        })?,
    };
    match document.get("id") {
        None => {
            document.insert("id".into(), json!(id.as_str()));
        }
        Some(Value::String(s)) if s == id.as_str() => {}
        Some(_) => {
            return Err(invalid_document(
                R::INVALID_CODE,
                InvalidDocument(vec![Problem::new("$.id", "must match the id in the path")]),
            ));
        }
    }
    let document = Value::Object(document);
    R::validate(&document).map_err(|e| invalid_document(R::INVALID_CODE, e))?;
    let action = if expected == 0 {
        DocumentAction::Created
    } else {
        DocumentAction::Updated
    };
    let now = api.clock.now();
    let version = R::store(&api)
        .write(&id, expected, Some(&document), action, &admin.0, now)
        .await?;
    tracing::info!(kind = R::NOUN, id = %id, version, admin = %admin.0, action = ?action, "document saved");
    let record = DocumentRecord {
        id,
        version,
        document,
        updated_by: admin.0,
        updated_at: now,
    };
    let status = if expected == 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(record_json(&record))).into_response())
}

#[derive(Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

async fn delete_document<R: Registry>(
    State(api): State<Arc<AdminApi>>,
    Authorized(admin): Authorized,
    Path(id): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let expected = query
        .version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            bad_request(
                "missing_field",
                "give the version being deleted as `?version=N`",
                Some("version"),
            )
        })?;
    let version = R::store(&api)
        .write(
            &id,
            expected,
            None,
            DocumentAction::Deleted,
            &admin.0,
            api.clock.now(),
        )
        .await?;
    tracing::info!(kind = R::NOUN, id = %id, version, admin = %admin.0, "document deleted");
    Ok(axum::Json(json!({"id": id, "version": version, "status": "deleted"})).into_response())
}

async fn set_enabled<R: Registry>(
    State(api): State<Arc<AdminApi>>,
    Authorized(admin): Authorized,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let body = json_object(&body)?;
    let enabled = body
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            bad_request(
                "invalid_type",
                "`enabled` must be true or false",
                Some("enabled"),
            )
        })?;
    let expected = body.get("version").and_then(Value::as_u64).ok_or_else(|| {
        bad_request(
            "missing_field",
            "`version` (the version being changed) is required",
            Some("version"),
        )
    })?;
    let store = R::store(&api);
    let record = store.get(&id).await?.ok_or_else(|| R::not_found(&id))?;
    if record.version != expected {
        return Err(conflict(Some(record.version)));
    }
    let mut document = record.document;
    if let Some(object) = document.as_object_mut() {
        object.insert("enabled".into(), json!(enabled));
    }
    let action = if enabled {
        DocumentAction::Enabled
    } else {
        DocumentAction::Disabled
    };
    let now = api.clock.now();
    let version = store
        .write(&id, expected, Some(&document), action, &admin.0, now)
        .await?;
    tracing::info!(kind = R::NOUN, id = %id, version, admin = %admin.0, enabled, "document switched");
    let record = DocumentRecord {
        id,
        version,
        document,
        updated_by: admin.0,
        updated_at: now,
    };
    Ok(axum::Json(record_json(&record)).into_response())
}

async fn document_versions<R: Registry>(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let versions = R::store(&api).history(&id).await?;
    if versions.is_empty() {
        return Err(R::not_found(&id));
    }
    Ok(axum::Json(json!({"id": id, "versions": versions})).into_response())
}

fn action_json(action: Action) -> Value {
    match action {
        Action::SmsUser => json!({"type": "sms_user"}),
        Action::NotifyOperator { severity } => {
            json!({"type": "notify_operator", "severity": severity})
        }
    }
}

/// What a rule would do with an event, without storing or sending anything.
async fn dry_run(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    let rule = match (body.get("rule"), body.get("rule_id")) {
        (Some(document), None) => Rule::from_json(document, "$.rule").map_err(invalid_rule)?,
        (None, Some(Value::String(raw))) => {
            let id = parse_id(raw)?;
            let record = api.rules.get(&id).await?.ok_or_else(|| not_found(&id))?;
            Rule::from_json(&record.document, "$")
                .map_err(|e| PortError::Corrupt(format!("stored rule {id}: {e}")))?
        }
        _ => {
            return Err(bad_request(
                "invalid_body",
                "give either `rule` (a rule document) or `rule_id` (a saved rule)",
                Some("rule"),
            ));
        }
    };
    let user = match body.get("user") {
        Some(v) => UserId(v.as_u64().ok_or_else(|| {
            bad_request("invalid_type", "`user` must be an integer", Some("user"))
        })?),
        None => {
            return Err(bad_request(
                "missing_field",
                "`user` is required",
                Some("user"),
            ));
        }
    };
    let nested = |key: &str| -> Result<Option<Vec<u8>>, ApiError> {
        body.get(key)
            .map(|v| {
                serde_json::to_vec(v)
                    .map_err(|e| bad_request("invalid_body", e.to_string(), Some(key)))
            })
            .transpose()
    };
    let event_body = if let Some(bytes) = nested("event")? {
        EventBody::Activity(
            intake::parse_activity(&bytes)
                .map_err(|e| nested_input_error("event", e))?
                .activity,
        )
    } else if let Some(bytes) = nested("feedback")? {
        EventBody::Feedback(
            intake::parse_feedback(&bytes)
                .map_err(|e| nested_input_error("feedback", e))?
                .feedback,
        )
    } else {
        return Err(bad_request(
            "missing_field",
            "give the `event` (or `feedback`) to test",
            Some("event"),
        ));
    };
    let event = StoredEvent {
        user,
        id: EventId::parse("dry-run").map_err(|e| PortError::Corrupt(e.to_string()))?,
        received_at: api.clock.now(),
        body: event_body,
    };
    let view = event.view();
    let mut answer = json!({
        "rule_id": rule.id,
        "enabled": rule.enabled,
        "matches": rule.when.matches(&view),
        "action": action_json(rule.action),
        "message": rule.render_message(&event, None),
    });
    let (outcome, explanation) = if !rule.when.matches(&view) {
        (
            "does_not_fire",
            "the event does not match `when`".to_owned(),
        )
    } else {
        match &rule.condition {
            Condition::First => match api.state.first_holder(&rule.id, user).await? {
                Some(first) => (
                    "does_not_fire",
                    format!("user {user} already had a first matching event ({first})"),
                ),
                None => (
                    "fires",
                    format!("this would be user {user}'s first matching event"),
                ),
            },
            Condition::Window(window) => {
                let from = event
                    .received_at
                    .minus_seconds(u64::from(window.seconds.get()))
                    .plus_one();
                let stored = api
                    .events
                    .received_between(user, from, event.received_at)
                    .await?;
                let mut views: Vec<Value> = stored.iter().map(StoredEvent::view).collect();
                views.push(view.clone());
                let totals = window.totals(&rule.when, views.iter());
                answer["window"] = json!(totals);
                answer["message"] = json!(rule.render_message(&event, Some(&totals)));
                let cooling = api
                    .state
                    .cooldown_until(&rule.id, user)
                    .await?
                    .filter(|until| *until > event.received_at);
                match (window.is_met(&totals), cooling) {
                    (false, _) => (
                        "does_not_fire",
                        format!(
                            "{} matching event(s) summing to {} in the last {} s do not reach the threshold",
                            totals.count, totals.sum, window.seconds
                        ),
                    ),
                    (true, Some(until)) => (
                        "does_not_fire",
                        format!(
                            "the threshold is reached but the rule is cooling down for user {user} until {}",
                            until.0
                        ),
                    ),
                    (true, None) => (
                        "fires",
                        format!(
                            "{} matching event(s) summing to {} reach the threshold",
                            totals.count, totals.sum
                        ),
                    ),
                }
            }
            Condition::Absence(absence) => {
                let due = event
                    .received_at
                    .plus_seconds(u64::from(absence.seconds.get()));
                answer["check_due_at"] = json!(due);
                (
                    "schedules_check",
                    format!(
                        "a check runs in {} s and fires unless an event matching `expect` arrives first",
                        absence.seconds
                    ),
                )
            }
        }
    };
    answer["outcome"] = json!(outcome);
    answer["explanation"] = json!(explanation);
    Ok(axum::Json(answer).into_response())
}

/// The most events one backtest replays; past that the operator narrows the range or the user.
pub const BACKTEST_MAX_EVENTS: usize = 50_000;
/// The longest span one backtest covers.
pub const BACKTEST_MAX_DAYS: u64 = 31;

/// Replays stored events through a saved rule and lists what it would have fired.
async fn backtest(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let body = json_object(&body)?;
    let record = api.rules.get(&id).await?.ok_or_else(|| not_found(&id))?;
    let rule = Rule::from_json(&record.document, "$")
        .map_err(|e| PortError::Corrupt(format!("stored rule {id}: {e}")))?;
    let now = api.clock.now();
    let time = |key: &str| {
        body.get(key)
            .map(|v| {
                intake::parse_client_timestamp(v).map_err(|why| {
                    bad_request("invalid_value", format!("`{key}` {why}"), Some(key))
                })
            })
            .transpose()
    };
    let to = time("to")?.unwrap_or(now);
    let from = time("from")?.unwrap_or_else(|| to.minus_seconds(24 * 60 * 60));
    if from > to {
        return Err(bad_request(
            "invalid_value",
            "`from` must not be after `to`",
            Some("from"),
        ));
    }
    if to.0 - from.0 > BACKTEST_MAX_DAYS * 24 * 60 * 60 * 1000 {
        return Err(bad_request(
            "invalid_value",
            format!("a backtest covers at most {BACKTEST_MAX_DAYS} days"),
            Some("from"),
        ));
    }
    let user = match body.get("user") {
        None | Some(Value::Null) => None,
        Some(v) => Some(UserId(v.as_u64().ok_or_else(|| {
            bad_request("invalid_type", "`user` must be an integer", Some("user"))
        })?)),
    };
    // Context beyond the span: a window needs the events before it, an absence the events after.
    let (context_from, context_to) = match &rule.condition {
        Condition::Window(w) => (from.minus_seconds(u64::from(w.seconds.get())), to),
        Condition::Absence(a) => (from, to.plus_seconds(u64::from(a.seconds.get()))),
        Condition::First => (from, to),
    };
    let events = match user {
        Some(user) => {
            api.events
                .received_between(user, context_from, context_to)
                .await?
        }
        None => {
            let (events, truncated) = api
                .events
                .all_received_between(context_from, context_to, BACKTEST_MAX_EVENTS)
                .await?;
            if truncated {
                return Err(bad_request(
                    "too_many_events",
                    format!(
                        "more than {BACKTEST_MAX_EVENTS} events in range; narrow it or give a `user`"
                    ),
                    Some("from"),
                ));
            }
            events
        }
    };
    let alerts = cuba_core::backtest::replay(&rule, &events, from, to, now);
    Ok(axum::Json(json!({
        "rule_id": id,
        "version": record.version,
        "from": from,
        "to": to,
        "user": user,
        "events_replayed": events.len(),
        "alerts": alerts,
    }))
    .into_response())
}

/// Listings return at most this many items a page.
pub const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;
/// Listings across all users walk hour by hour; they cover at most this span per request.
pub const MAX_UNSCOPED_DAYS: u64 = 7;

#[derive(Deserialize)]
struct BrowseQuery {
    user: Option<String>,
    session: Option<String>,
    kind: Option<String>,
    rule: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The parts every listing shares.
struct Span {
    user: Option<UserId>,
    from: Millis,
    to: Millis,
    limit: usize,
}

impl BrowseQuery {
    fn session(&self) -> Result<Option<SessionId>, ApiError> {
        self.session
            .as_deref()
            .map(|raw| {
                SessionId::parse(raw).map_err(|e| {
                    bad_request("invalid_value", format!("`session` {e}"), Some("session"))
                })
            })
            .transpose()
    }

    fn span(&self, now: Millis, scoped: bool) -> Result<Span, ApiError> {
        let time = |key: &str, raw: &Option<String>| {
            raw.as_ref()
                .map(|v| {
                    intake::parse_client_timestamp(&Value::String(v.clone())).map_err(|why| {
                        bad_request("invalid_value", format!("`{key}` {why}"), Some(key))
                    })
                })
                .transpose()
        };
        let to = time("to", &self.to)?.unwrap_or(now);
        let from = time("from", &self.from)?.unwrap_or_else(|| to.minus_seconds(24 * 60 * 60));
        if from > to {
            return Err(bad_request(
                "invalid_value",
                "`from` must not be after `to`",
                Some("from"),
            ));
        }
        let user = self
            .user
            .as_ref()
            .map(|u| {
                u.parse::<u64>().map(UserId).map_err(|_| {
                    bad_request("invalid_value", "`user` must be an integer", Some("user"))
                })
            })
            .transpose()?;
        if !scoped && user.is_none() && to.0 - from.0 > MAX_UNSCOPED_DAYS * 24 * 60 * 60 * 1000 {
            return Err(bad_request(
                "invalid_value",
                format!("without a user, a listing covers at most {MAX_UNSCOPED_DAYS} days"),
                Some("from"),
            ));
        }
        let limit = match &self.limit {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| {
                    bad_request(
                        "invalid_value",
                        format!("`limit` must be 1 to {MAX_PAGE}"),
                        Some("limit"),
                    )
                })?,
        };
        Ok(Span {
            user,
            from,
            to,
            limit,
        })
    }
}

async fn browse_events(
    api: &AdminApi,
    query: &BrowseQuery,
    kind: Option<EventKind>,
) -> Result<Response, ApiError> {
    let span = query.span(api.clock.now(), false)?;
    let filter = EventFilter {
        user: span.user,
        session: query.session()?,
        kind,
        from: span.from,
        to: span.to,
    };
    let page = api
        .browse
        .events(&filter, span.limit, query.cursor.as_deref())
        .await?;
    Ok(axum::Json(json!({"items": page.items, "next": page.next})).into_response())
}

async fn list_events(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Query(query): Query<BrowseQuery>,
) -> Result<Response, ApiError> {
    let kind = query
        .kind
        .as_deref()
        .map(|raw| {
            EventKind::parse(raw).ok_or_else(|| {
                bad_request(
                    "invalid_value",
                    "`kind` must be activity, web or feedback",
                    Some("kind"),
                )
            })
        })
        .transpose()?;
    browse_events(&api, &query, kind).await
}

async fn list_feedback(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Query(query): Query<BrowseQuery>,
) -> Result<Response, ApiError> {
    browse_events(&api, &query, Some(EventKind::Feedback)).await
}

async fn list_alerts(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Query(query): Query<BrowseQuery>,
) -> Result<Response, ApiError> {
    let rule = query.rule.as_deref().map(parse_id).transpose()?;
    let span = query.span(api.clock.now(), rule.is_some())?;
    let filter = AlertFilter {
        user: span.user,
        rule,
        from: span.from,
        to: span.to,
    };
    let page = api
        .browse
        .alerts(&filter, span.limit, query.cursor.as_deref())
        .await?;
    Ok(axum::Json(json!({"items": page.items, "next": page.next})).into_response())
}

async fn get_user(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let user = parse_user(&user)?;
    let profile = api.profiles.profile(user).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            format!("no profile for user {user}"),
        )
    })?;
    Ok(axum::Json(
        json!({"user": profile.user, "phone": profile.phone, "updated_at": profile.updated_at}),
    )
    .into_response())
}

/// The longest chart the dashboard asks for.
pub const MAX_ACTIVITY_MINUTES: u32 = 180;
/// Past this many events (or alerts) in the span, the chart says it is truncated.
pub const ACTIVITY_CAP: usize = 100_000;

#[derive(Deserialize)]
struct ActivityQuery {
    minutes: Option<String>,
}

/// Events and alerts per minute over the last `minutes` (default 60), for the dashboard chart.
async fn activity(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Query(query): Query<ActivityQuery>,
) -> Result<Response, ApiError> {
    let minutes = match query.minutes.as_deref() {
        None => 60,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|m| (1..=MAX_ACTIVITY_MINUTES).contains(m))
            .ok_or_else(|| {
                bad_request(
                    "invalid_value",
                    format!("`minutes` must be 1 to {MAX_ACTIVITY_MINUTES}"),
                    Some("minutes"),
                )
            })?,
    };
    let now = api.clock.now();
    let (from, to) = PerMinute::span(now, minutes);
    let last = Millis(to.0 - 1);
    let (events, alerts) = tokio::try_join!(
        api.browse.event_times(from, last, ACTIVITY_CAP),
        api.browse.alert_times(from, last, ACTIVITY_CAP),
    )?;
    let events_per_minute = PerMinute::count(now, minutes, events.times);
    let alerts_per_minute = PerMinute::count(now, minutes, alerts.times);
    Ok(axum::Json(json!({
        "from": from,
        "to": to,
        "bucket_seconds": events_per_minute.bucket_seconds,
        "events": events_per_minute.counts,
        "alerts": alerts_per_minute.counts,
        "truncated": events.truncated || alerts.truncated,
    }))
    .into_response())
}

/// Checks an event against a schema document (unsaved) or against the registry as stored:
/// `{"schema": {...}?, "user"?, "event": <either envelope>}`. Stores nothing.
async fn test_schema(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let mut body = json_object(&body)?;
    let set = match body.remove("schema") {
        Some(document) => {
            let schema = Schema::from_json(&document, 0)
                .map_err(|e| invalid_document("invalid_schema", InvalidDocument(e.0)))?;
            Arc::new(SchemaSet::new(vec![schema]))
        }
        None => api.pipeline.schemas.fresh().await?,
    };
    let event = body
        .remove("event")
        .ok_or_else(|| bad_request("missing_field", "`event` is required", Some("event")))?;
    let submission =
        intake::parse_event_value(event).map_err(|e| nested_input_error("event", e))?;
    let body = match submission {
        intake::EventSubmission::Mobile(m) => EventBody::Activity(m.activity),
        intake::EventSubmission::Web(w) => EventBody::Web(w.event),
    };
    let event = StoredEvent {
        user: UserId(0),
        id: EventId::parse("schema-test").map_err(|e| PortError::Corrupt(e.to_string()))?,
        received_at: api.clock.now(),
        body,
    };
    let answer = match set.validate(&event) {
        Verdict::Valid { schema } => json!({"valid": true, "schema": schema, "violations": []}),
        Verdict::Invalid { schema, violations } => {
            json!({"valid": false, "schema": schema, "violations": violations})
        }
    };
    Ok(axum::Json(answer).into_response())
}

#[derive(Deserialize)]
struct ErrorQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    violation: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_status(raw: Option<&str>) -> Result<Option<ErrorStatus>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some("open") => Ok(Some(ErrorStatus::Open)),
        Some("replaying") => Ok(Some(ErrorStatus::Replaying)),
        Some("replayed") => Ok(Some(ErrorStatus::Replayed)),
        Some(_) => Err(bad_request(
            "invalid_value",
            "`status` must be open, replaying or replayed",
            Some("status"),
        )),
    }
}

impl ErrorQuery {
    fn filter(&self, now: Millis) -> Result<(ErrorFilter, usize), ApiError> {
        let span = BrowseQuery {
            user: None,
            session: None,
            kind: None,
            rule: None,
            from: self.from.clone(),
            to: self.to.clone(),
            limit: self.limit.clone(),
            cursor: None,
        }
        .span(now, false)?;
        Ok((
            ErrorFilter {
                event_type: self.event_type.clone().filter(|t| !t.is_empty()),
                violation: self.violation.clone().filter(|v| !v.is_empty()),
                status: parse_status(self.status.as_deref())?,
                from: span.from,
                to: span.to,
            },
            span.limit,
        ))
    }
}

/// The error log, newest first: `type`, `violation` (a kind such as `unknown_field`), `status`,
/// `from`, `to`, `limit`, `cursor`.
async fn list_errors(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Query(query): Query<ErrorQuery>,
) -> Result<Response, ApiError> {
    let (filter, limit) = query.filter(api.clock.now())?;
    let page = api
        .errors
        .list(&filter, limit, query.cursor.as_deref())
        .await?;
    Ok(axum::Json(json!({"items": page.items, "next": page.next})).into_response())
}

fn error_key(user: &str, id: &str) -> Result<(UserId, EventId), ApiError> {
    let user = parse_user(user)?;
    let id = EventId::parse(id)
        .map_err(|e| bad_request("invalid_value", format!("event id {e}"), Some("id")))?;
    Ok((user, id))
}

fn error_not_found(user: UserId, id: &EventId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "error_not_found",
        format!("no error-log entry for event {id} of user {user}"),
    )
}

async fn get_error(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Path((user, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (user, id) = error_key(&user, &id)?;
    let entry = api
        .errors
        .get(user, &id)
        .await?
        .ok_or_else(|| error_not_found(user, &id))?;
    Ok(axum::Json(json!(entry)).into_response())
}

fn replay_json(user: UserId, id: &EventId, outcome: &ReplayOutcome) -> Value {
    let mut answer = json!({"user": user, "id": id});
    match outcome {
        ReplayOutcome::Replayed { fired } => {
            answer["outcome"] = json!("replayed");
            answer["alerts_fired"] = json!(fired);
        }
        ReplayOutcome::StillInvalid { schema, violations } => {
            answer["outcome"] = json!("still_invalid");
            answer["schema"] = json!(schema);
            answer["violations"] = json!(violations);
        }
        ReplayOutcome::AlreadyReplayed => answer["outcome"] = json!("already_replayed"),
        ReplayOutcome::InProgress => answer["outcome"] = json!("in_progress"),
        ReplayOutcome::NotFound => answer["outcome"] = json!("not_found"),
    }
    answer
}

fn replay_error(e: DispatchError) -> ApiError {
    match e {
        DispatchError::Port(p) => p.into(),
        DispatchError::InFlight(alert) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "alert_in_flight",
            format!("alert {alert} is being delivered by another worker; replay again shortly"),
        ),
    }
}

/// Validates one entry's event against the schemas as stored now and, when valid, processes it.
async fn replay_one(
    State(api): State<Arc<AdminApi>>,
    Authorized(admin): Authorized,
    Path((user, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (user, id) = error_key(&user, &id)?;
    let outcome = api
        .pipeline
        .replay(user, &id, &admin.0)
        .await
        .map_err(replay_error)?;
    if outcome == ReplayOutcome::NotFound {
        return Err(error_not_found(user, &id));
    }
    Ok(axum::Json(replay_json(user, &id, &outcome)).into_response())
}

/// At most this many entries are replayed per request; `next` continues.
pub const MAX_REPLAY_BATCH: usize = 100;

/// Replays every open entry matching `{"type", "violation", "from", "to", "limit", "cursor"}`.
async fn replay_matching(
    State(api): State<Arc<AdminApi>>,
    Authorized(admin): Authorized,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let body = json_object(&body)?;
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(bad_request(
                "invalid_type",
                format!("`{key}` must be a string"),
                Some(key),
            )),
        }
    };
    let limit = match body.get("limit") {
        None => MAX_REPLAY_BATCH,
        Some(v) => v
            .as_u64()
            .and_then(|l| usize::try_from(l).ok())
            .filter(|l| (1..=MAX_REPLAY_BATCH).contains(l))
            .ok_or_else(|| {
                bad_request(
                    "invalid_value",
                    format!("`limit` must be 1 to {MAX_REPLAY_BATCH}"),
                    Some("limit"),
                )
            })?,
    };
    let query = ErrorQuery {
        event_type: text("type")?,
        violation: text("violation")?,
        status: Some("open".into()),
        from: text("from")?,
        to: text("to")?,
        limit: Some(limit.to_string()),
        cursor: None,
    };
    let (filter, limit) = query.filter(api.clock.now())?;
    let cursor = text("cursor")?;
    let page = api.errors.list(&filter, limit, cursor.as_deref()).await?;
    let mut results = Vec::with_capacity(page.items.len());
    for entry in &page.items {
        let outcome = api
            .pipeline
            .replay(entry.user, &entry.id, &admin.0)
            .await
            .map_err(replay_error)?;
        results.push(replay_json(entry.user, &entry.id, &outcome));
    }
    let count = |what: &str| results.iter().filter(|r| r["outcome"] == what).count();
    Ok(axum::Json(json!({
        "replayed": count("replayed"),
        "still_invalid": count("still_invalid"),
        "results": results,
        "next": page.next,
    }))
    .into_response())
}
