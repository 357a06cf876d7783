//! The admin API (`/admin/api/...`): operators manage rules at run time and try them out.
//! Every route needs an admin token; every change records the admin's identity.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::activity::PerMinute;
use crate::auth::{Admin, AdminVerifier};
use crate::clock::Clock;
use crate::domain::Millis;
use crate::domain::{EventBody, EventId, StoredEvent, UserId};
use crate::http::{ApiError, JsonBytes, authorization};
use crate::intake;
use crate::ports::{
    AlertFilter, Browse, EventFilter, EventKind, EventStore, PortError, ProfileStore, RuleAction,
    RuleRecord, RuleState, RuleStore, RuleWriteError,
};
use crate::rules::{Action, Condition, InvalidRules, Rule, RuleId, RuleProblem};

#[derive(Clone)]
pub struct AdminApi {
    pub rules: Arc<dyn RuleStore>,
    pub browse: Arc<dyn Browse>,
    pub profiles: Arc<dyn ProfileStore>,
    pub events: Arc<dyn EventStore>,
    pub state: Arc<dyn RuleState>,
    pub verifier: AdminVerifier,
    pub clock: Arc<dyn Clock>,
}

/// The admin API and web UI routes, without fallbacks (see [`crate::http::with_error_fallbacks`]).
pub fn routes(api: AdminApi) -> Router {
    Router::new()
        .route("/admin/api/rules", get(list_rules))
        .route("/admin/api/rules/test", post(dry_run))
        .route(
            "/admin/api/rules/{id}",
            get(get_rule).put(put_rule).delete(delete_rule),
        )
        .route("/admin/api/rules/{id}/enabled", put(set_enabled))
        .route("/admin/api/rules/{id}/versions", get(rule_versions))
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
    crate::http::with_error_fallbacks(routes(api))
}

/// The admin a valid admin token names.
struct Authorized(Admin);

impl FromRequestParts<Arc<AdminApi>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<AdminApi>) -> Result<Self, ApiError> {
        Ok(Authorized(
            api.verifier.verify_header(authorization(parts)?)?,
        ))
    }
}

fn bad_request(code: &'static str, message: impl Into<String>, field: Option<&str>) -> ApiError {
    let error = ApiError::new(StatusCode::BAD_REQUEST, code, message);
    match field {
        Some(f) => error.with_field(f),
        None => error,
    }
}

fn invalid_rule(e: InvalidRules) -> ApiError {
    let mut error = bad_request(
        "invalid_rule",
        format!("the rule has {} problem(s); see `problems`", e.0.len()),
        None,
    );
    error.problems = e.0;
    error
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

impl From<RuleWriteError> for ApiError {
    fn from(e: RuleWriteError) -> Self {
        match e {
            RuleWriteError::Conflict { current } => conflict(current),
            RuleWriteError::Port(p) => p.into(),
        }
    }
}

fn record_json(record: &RuleRecord) -> Value {
    json!({
        "id": record.id,
        "version": record.version,
        "enabled": record.document.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        "updated_by": record.updated_by,
        "updated_at": record.updated_at,
        "rule": record.document,
    })
}

async fn list_rules(State(api): State<Arc<AdminApi>>, _: Authorized) -> Result<Response, ApiError> {
    let records = api.rules.current().await?.unwrap_or_default();
    let rules: Vec<Value> = records.iter().map(record_json).collect();
    Ok(axum::Json(json!({ "rules": rules })).into_response())
}

async fn get_rule(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let record = api.rules.get(&id).await?.ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(record_json(&record)).into_response())
}

/// Create (`version` 0 or absent) or replace (`version` = the version being replaced).
async fn put_rule(
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
            return Err(invalid_rule(InvalidRules(vec![RuleProblem::new(
                "$.id",
                "must match the id in the path",
            )])));
        }
    }
    let document = Value::Object(document);
    Rule::from_json(&document, "$").map_err(invalid_rule)?;
    let action = if expected == 0 {
        RuleAction::Created
    } else {
        RuleAction::Updated
    };
    let now = api.clock.now();
    let version = api
        .rules
        .write(&id, expected, Some(&document), action, &admin.0, now)
        .await?;
    tracing::info!(rule_id = %id, version, admin = %admin.0, action = action.as_str(), "rule saved");
    let record = RuleRecord {
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

async fn delete_rule(
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
    let version = api
        .rules
        .write(
            &id,
            expected,
            None,
            RuleAction::Deleted,
            &admin.0,
            api.clock.now(),
        )
        .await?;
    tracing::info!(rule_id = %id, version, admin = %admin.0, "rule deleted");
    Ok(axum::Json(json!({"id": id, "version": version, "status": "deleted"})).into_response())
}

async fn set_enabled(
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
    let record = api.rules.get(&id).await?.ok_or_else(|| not_found(&id))?;
    if record.version != expected {
        return Err(conflict(Some(record.version)));
    }
    let mut document = record.document;
    if let Some(object) = document.as_object_mut() {
        object.insert("enabled".into(), json!(enabled));
    }
    let action = if enabled {
        RuleAction::Enabled
    } else {
        RuleAction::Disabled
    };
    let now = api.clock.now();
    let version = api
        .rules
        .write(&id, expected, Some(&document), action, &admin.0, now)
        .await?;
    tracing::info!(rule_id = %id, version, admin = %admin.0, enabled, "rule switched");
    let record = RuleRecord {
        id,
        version,
        document,
        updated_by: admin.0,
        updated_at: now,
    };
    Ok(axum::Json(record_json(&record)).into_response())
}

async fn rule_versions(
    State(api): State<Arc<AdminApi>>,
    _: Authorized,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let versions = api.rules.history(&id).await?;
    if versions.is_empty() {
        return Err(not_found(&id));
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
    let field_error = |prefix: &str, e: intake::InvalidInput| {
        let field = e
            .field
            .map(|f| format!("{prefix}.{f}"))
            .unwrap_or_else(|| prefix.to_owned());
        bad_request(e.code.as_str(), e.message, Some(&field))
    };
    let event_body = if let Some(bytes) = nested("event")? {
        EventBody::Activity(
            intake::parse_activity(&bytes)
                .map_err(|e| field_error("event", e))?
                .activity,
        )
    } else if let Some(bytes) = nested("feedback")? {
        EventBody::Feedback(
            intake::parse_feedback(&bytes)
                .map_err(|e| field_error("feedback", e))?
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
    let alerts = crate::backtest::replay(&rule, &events, from, to, now);
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
    let kind = match query.kind.as_deref() {
        None => None,
        Some("activity") => Some(EventKind::Activity),
        Some("feedback") => Some(EventKind::Feedback),
        Some(_) => {
            return Err(bad_request(
                "invalid_value",
                "`kind` must be activity or feedback",
                Some("kind"),
            ));
        }
    };
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
    let user = user.parse::<u64>().map(UserId).map_err(|_| {
        bad_request(
            "invalid_value",
            "the user id must be an integer",
            Some("user"),
        )
    })?;
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
