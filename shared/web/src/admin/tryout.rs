//! Trying rules and schemas out without storing or sending anything: the dry run (what a rule
//! would do with one event now), the backtest (what a saved rule would have fired over stored
//! events) and the schema test. The dry run and the backtest ask the core's one decision
//! ([`cuba_core::evaluation::decision::decide`]), like live evaluation.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::documents::{invalid, not_found};
use super::{AdminState, ClientTime, invalid_value, nested_input_error, parse_document_id, span};
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::request::JsonBody;
use cuba_core::console::backtest::{self, MessagePreview, WouldFire};
use cuba_core::console::tryout;
use cuba_core::evaluation::decision::{Decision, Quiet};
use cuba_core::intake;
use cuba_core::model::domain::{EventBody, EventId, Millis, StoredEvent, UserId};
use cuba_core::model::ports::PortError;
use cuba_core::rules::{
    Action, Condition, QuietHoursPolicy, Rule, RuleId, RuleSet, Severity, Translations,
    WindowTotals,
};
use cuba_core::schemas::{Schema, SchemaRef, SchemaSet, Verdict, Violation};

/// `{"rule": {...}}` (an unsaved rule) or `{"rule_id": "..."}` (a saved one), for `user`, with
/// the `event` (either envelope) or `feedback` to try.
#[derive(Deserialize)]
pub(super) struct DryRunRequest {
    rule: Option<Value>,
    rule_id: Option<String>,
    user: UserId,
    event: Option<Value>,
    feedback: Option<Value>,
}

/// A rule's action as the rule language spells it.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ActionView {
    SmsUser {
        quiet_hours: QuietHoursPolicy,
        expires_after_seconds: u32,
    },
    NotifyOperator {
        severity: Severity,
        #[serde(skip_serializing_if = "Option::is_none")]
        group_wait_seconds: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        group_interval_seconds: Option<u32>,
    },
}

impl From<Action> for ActionView {
    fn from(action: Action) -> Self {
        match action {
            Action::SmsUser {
                quiet_hours,
                expires_after_seconds,
            } => ActionView::SmsUser {
                quiet_hours,
                expires_after_seconds,
            },
            Action::NotifyOperator { severity, grouping } => ActionView::NotifyOperator {
                severity,
                group_wait_seconds: grouping.map(|g| g.wait_seconds),
                group_interval_seconds: grouping.map(|g| g.interval_seconds),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Fires,
    DoesNotFire,
    SchedulesCheck,
}

#[derive(Serialize)]
pub(super) struct DryRunAnswer {
    rule_id: RuleId,
    enabled: bool,
    matches: bool,
    action: ActionView,
    message: String,
    /// The message in each language the rule writes besides its default.
    #[serde(skip_serializing_if = "Translations::is_empty")]
    translations: Translations,
    outcome: Outcome,
    explanation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<WindowTotals>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check_due_at: Option<Millis>,
}

async fn saved_rule(api: &super::AdminApi, id: &RuleId) -> Result<(Rule, u64), ApiError> {
    let record = api
        .rules
        .get(id)
        .await?
        .ok_or_else(|| not_found::<RuleSet>(id))?;
    let rule = Rule::from_json(&record.document, "$")
        .map_err(|e| PortError::corrupt_from(format!("stored rule {id}"), e))?;
    Ok((rule, record.version))
}

fn placeholder_id(raw: &str) -> Result<EventId, ApiError> {
    EventId::parse(raw).map_err(|e| PortError::corrupt_from("a placeholder event id", e).into())
}

/// What a rule would do if the event arrived now, without storing or sending anything.
pub(super) async fn dry_run(
    State(api): State<AdminState>,
    _: Authorized,
    JsonBody(request): JsonBody<DryRunRequest>,
) -> Result<Json<DryRunAnswer>, ApiError> {
    let rule = match (&request.rule, request.rule_id.as_deref()) {
        (Some(document), None) => {
            Rule::from_json(document, "$.rule").map_err(invalid::<RuleSet>)?
        }
        (None, Some(raw)) => saved_rule(&api, &parse_document_id(raw)?).await?.0,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give either `rule` (a rule document) or `rule_id` (a saved rule)",
            )
            .with_field("rule"));
        }
    };
    let body = match (request.event, request.feedback) {
        (Some(event), _) => {
            let bytes =
                serde_json::to_vec(&event).map_err(|e| invalid_value("event", e.to_string()))?;
            EventBody::Activity(
                intake::parse_activity(&bytes)
                    .map_err(|e| nested_input_error("event", e))?
                    .activity,
            )
        }
        (None, Some(feedback)) => {
            let bytes = serde_json::to_vec(&feedback)
                .map_err(|e| invalid_value("feedback", e.to_string()))?;
            EventBody::Feedback(
                intake::parse_feedback(&bytes)
                    .map_err(|e| nested_input_error("feedback", e))?
                    .feedback,
            )
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing_field",
                "give the `event` (or `feedback`) to test",
            )
            .with_field("event"));
        }
    };
    let event = StoredEvent {
        user: request.user,
        id: placeholder_id("dry-run")?,
        received_at: api.clock.now(),
        body,
    };
    let decision = tryout::dry_run(
        &rule,
        &event,
        api.events.as_ref(),
        api.state.as_ref(),
        api.pipeline.groups.store.as_ref(),
    )
    .await?;
    Ok(Json(explain(&rule, &event, decision)))
}

/// The decision as the operator reads it.
fn explain(rule: &Rule, event: &StoredEvent, decision: Decision) -> DryRunAnswer {
    let user = event.user;
    let (window_seconds, distinct_field) = match &rule.condition {
        Condition::Window(w) => (
            w.seconds.get(),
            w.threshold.distinct().map(|d| d.field.as_str()),
        ),
        _ => (0, None),
    };
    let mut window = None;
    let mut check_due_at = None;
    let (outcome, explanation) = match decision {
        Decision::Quiet(Quiet::NoMatch | Quiet::Disabled) => (
            Outcome::DoesNotFire,
            "the event does not match `when`".to_owned(),
        ),
        Decision::Quiet(Quiet::AlreadyHadFirst(first)) => (
            Outcome::DoesNotFire,
            format!("user {user} already had a first matching event ({first})"),
        ),
        Decision::Quiet(Quiet::BelowThreshold(totals)) => {
            window = Some(totals);
            (
                Outcome::DoesNotFire,
                format!(
                    "{} matching event(s) summing to {}{} in the last {window_seconds} s do not reach the threshold",
                    totals.count,
                    totals.sum,
                    distinct_field
                        .map(|field| format!(" with {} different {field}", totals.distinct))
                        .unwrap_or_default()
                ),
            )
        }
        Decision::Quiet(Quiet::CoolingDown { totals, until }) => {
            window = Some(totals);
            (
                Outcome::DoesNotFire,
                format!(
                    "the threshold is reached but the rule is cooling down for user {user} until {}",
                    until.0
                ),
            )
        }
        Decision::Quiet(Quiet::NoGroup { group_by }) => (
            Outcome::DoesNotFire,
            format!("the event has no `{group_by}`, so no group's window counts it"),
        ),
        Decision::Quiet(Quiet::GroupFiring {
            group,
            since,
            totals,
        }) => {
            window = Some(totals);
            (
                Outcome::DoesNotFire,
                format!(
                    "the threshold is reached, but group {} fires already (since {}): told once \
                     until the sweeper finds it resolved",
                    group.as_str(),
                    since.0
                ),
            )
        }
        Decision::Quiet(Quiet::DecidedOnTheClock { totals }) => {
            window = Some(totals);
            (
                Outcome::DoesNotFire,
                format!(
                    "a drop in volume is decided each minute on the clock, not by an event: with \
                     this one the fleet's window holds {} event(s)",
                    totals.count
                ),
            )
        }
        // Live evaluation's alone (a dry run reads the window): kept in step all the same.
        Decision::Quiet(Quiet::CoolingDownUnread { until }) => (
            Outcome::DoesNotFire,
            format!("the rule is cooling down for user {user} until {}", until.0),
        ),
        Decision::Quiet(Quiet::KeepsHeartbeat { silent_after }) => (
            Outcome::DoesNotFire,
            format!(
                "the event keeps the heartbeat alive: the rule fires (checked every minute) only \
                 if no matching event from anyone follows by {}",
                silent_after.0
            ),
        ),
        Decision::Fires(firing) => match firing.totals {
            Some(totals) => {
                window = Some(totals);
                (
                    Outcome::Fires,
                    format!(
                        "{} matching event(s) summing to {} reach the threshold",
                        totals.count, totals.sum
                    ),
                )
            }
            None => (
                Outcome::Fires,
                format!("this would be user {user}'s first matching event"),
            ),
        },
        Decision::SchedulesCheck { due_at } => {
            check_due_at = Some(due_at);
            let seconds = event.received_at.seconds_until(due_at);
            (
                Outcome::SchedulesCheck,
                format!(
                    "a check runs in {seconds} s and fires unless an event matching `expect` arrives first"
                ),
            )
        }
    };
    // What firing means for a rule that groups its operator alerts.
    let explanation = match (outcome, rule.action) {
        (
            Outcome::Fires | Outcome::SchedulesCheck,
            Action::NotifyOperator {
                grouping: Some(grouping),
                ..
            },
        ) => format!(
            "{explanation}; its alert is gathered, not sent alone: ops get one message for the \
             rule's alerts {} s after a quiet rule's first, then one per {} s",
            grouping.wait_seconds, grouping.interval_seconds
        ),
        _ => explanation,
    };
    DryRunAnswer {
        rule_id: rule.id.clone(),
        enabled: rule.enabled,
        matches: rule.when.matches(&event.view()),
        action: rule.action.into(),
        message: rule.render_message(event, window.as_ref()),
        translations: rule.render_translations(event, window.as_ref()),
        outcome,
        explanation,
        window,
        check_due_at,
    }
}

/// The most events one backtest replays; past that the operator narrows the range or the user.
pub const BACKTEST_MAX_EVENTS: usize = 50_000;
/// The longest span one backtest covers.
pub const BACKTEST_MAX_DAYS: u64 = 31;

#[derive(Deserialize)]
pub(super) struct BacktestRequest {
    from: Option<ClientTime>,
    to: Option<ClientTime>,
    user: Option<UserId>,
}

/// A backtest of an unsaved rule: the rule builder's live preview.
#[derive(Deserialize)]
pub(super) struct DraftBacktestRequest {
    rule: Value,
    #[serde(flatten)]
    span: BacktestRequest,
}

#[derive(Serialize)]
pub(super) struct BacktestAnswer {
    rule_id: RuleId,
    /// The saved version replayed; absent for an unsaved rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    from: Millis,
    to: Millis,
    user: Option<UserId>,
    events_replayed: usize,
    /// How many distinct users the alerts would have gone to (or been about).
    users: usize,
    /// How many messages they would have made: one per alert, or for a rule that groups its
    /// operator alerts, its group messages.
    messages: usize,
    alerts: Vec<WouldFire>,
    /// The message as a real event in the span renders it; none without a matching event.
    preview: Option<MessagePreview>,
}

/// Replays stored events through a saved rule and lists what it would have fired.
pub(super) async fn backtest(
    State(api): State<AdminState>,
    _: Authorized,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<BacktestRequest>,
) -> Result<Json<BacktestAnswer>, ApiError> {
    let id = parse_document_id(&id)?;
    let (rule, version) = saved_rule(&api, &id).await?;
    replay_span(&api, &rule, Some(version), request)
        .await
        .map(Json)
}

/// Replays stored events through a rule as edited, saved or not.
pub(super) async fn backtest_draft(
    State(api): State<AdminState>,
    _: Authorized,
    JsonBody(request): JsonBody<DraftBacktestRequest>,
) -> Result<Json<BacktestAnswer>, ApiError> {
    let rule = Rule::from_json(&request.rule, "$.rule").map_err(invalid::<RuleSet>)?;
    replay_span(&api, &rule, None, request.span).await.map(Json)
}

async fn replay_span(
    api: &super::AdminApi,
    rule: &Rule,
    version: Option<u64>,
    request: BacktestRequest,
) -> Result<BacktestAnswer, ApiError> {
    let now = api.clock.now();
    let (from, to) = span(request.from.map(|t| t.0), request.to.map(|t| t.0), now)?;
    if to.0 - from.0 > BACKTEST_MAX_DAYS * 24 * 60 * 60 * 1000 {
        return Err(invalid_value(
            "from",
            format!("a backtest covers at most {BACKTEST_MAX_DAYS} days"),
        ));
    }
    // Context beyond the span: a window needs the events before it, an absence the events after.
    let (context_from, context_to) = match &rule.condition {
        Condition::Window(w) => (w.starts_after(from), to),
        Condition::Absence(a) => (from, a.due_at(to)),
        // The silence running into the span began at the last matching event before it.
        Condition::Heartbeat(h) => (from.minus_seconds(u64::from(h.seconds.get())), to),
        Condition::First => (from, to),
    };
    let events = match request.user {
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
                return Err(ApiError::bad_request(
                    "too_many_events",
                    format!(
                        "more than {BACKTEST_MAX_EVENTS} events in range; narrow it or give a `user`"
                    ),
                )
                .with_field("from"));
            }
            events
        }
    };
    let alerts = backtest::replay(rule, &events, from, to, now);
    let users = alerts
        .iter()
        .map(|a| a.user)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let messages = match rule.action {
        Action::NotifyOperator {
            grouping: Some(grouping),
            ..
        } => grouping.messages_for(alerts.iter().map(|a| a.fired_at)),
        _ => alerts.len(),
    };
    Ok(BacktestAnswer {
        preview: backtest::preview(rule, &events, &alerts, from, to),
        alerts,
        users,
        messages,
        rule_id: rule.id.clone(),
        version,
        from,
        to,
        user: request.user,
        events_replayed: events.len(),
    })
}

/// `{"schema": {...}?, "event": <either envelope>}`: checks the event against the schema
/// document (unsaved) or, without one, against the registry as stored.
#[derive(Deserialize)]
pub(super) struct SchemaTestRequest {
    schema: Option<Value>,
    event: Value,
}

#[derive(Serialize)]
pub(super) struct SchemaTestAnswer {
    valid: bool,
    schema: Option<SchemaRef>,
    violations: Vec<Violation>,
}

pub(super) async fn test_schema(
    State(api): State<AdminState>,
    _: Authorized,
    JsonBody(request): JsonBody<SchemaTestRequest>,
) -> Result<Json<SchemaTestAnswer>, ApiError> {
    let set = match request.schema {
        Some(document) => {
            let schema = Schema::from_json(&document, 0).map_err(invalid::<SchemaSet>)?;
            std::sync::Arc::new(SchemaSet::new(vec![schema]))
        }
        None => api.pipeline.schemas.fresh().await?,
    };
    let body = match intake::parse_event_value(request.event)
        .map_err(|e| nested_input_error("event", e))?
    {
        intake::EventSubmission::Mobile(m) => EventBody::Activity(m.activity),
        intake::EventSubmission::Web(w) => EventBody::Web(w.event),
    };
    let event = StoredEvent {
        user: UserId(0),
        id: placeholder_id("schema-test")?,
        received_at: api.clock.now(),
        body,
    };
    Ok(Json(match set.validate(&event) {
        Verdict::Valid { schema } => SchemaTestAnswer {
            valid: true,
            schema,
            violations: Vec::new(),
        },
        Verdict::Invalid { schema, violations } => SchemaTestAnswer {
            valid: false,
            schema,
            violations,
        },
    }))
}
