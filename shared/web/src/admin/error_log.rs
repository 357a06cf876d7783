//! The error log: events that failed their schema, browsed and replayed once the schema is
//! fixed. A replay validates the event against the schemas as stored now and, when valid, runs
//! it through the stream consumer's processing, exactly once whatever else replays it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::browsing::{ListingQuery, check_unscoped};
use super::cursor::listing;
use super::{AdminState, ClientTime, invalid_value, parse_event_id, parse_user, span};
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::request::{JsonBody, QueryParams};
use cuba_core::console::activity::MinuteCounts;
use cuba_core::console::rule_health::RuleDays;
use cuba_core::model::domain::{EventId, UserId};
use cuba_core::model::listing::Page;
use cuba_core::pipeline::ReplayOutcome;
use cuba_core::schemas::error_log::{ErrorEntry, ErrorFilter, ErrorStatus};

/// At most this many entries are replayed per request; `next` continues.
pub const MAX_REPLAY_BATCH: usize = 100;

#[derive(Deserialize)]
pub(super) struct ErrorQuery {
    user: Option<String>,
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
        Some(raw) => serde_json::from_value(serde_json::Value::String(raw.to_owned()))
            .map(Some)
            .map_err(|_| invalid_value("status", "`status` must be open, replaying or replayed")),
    }
}

/// What an error-log cursor is sealed for: the log and the filter values.
fn errors_listing(filter: &ErrorFilter) -> String {
    listing(
        "errors",
        &[
            ("user", filter.user.map(|u| u.to_string())),
            ("type", filter.event_type.clone()),
            ("violation", filter.violation.clone()),
            ("status", filter.status.map(|s| format!("{s:?}"))),
        ],
    )
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.is_empty())
}

/// The error log, newest first: `user`, `type`, `violation` (a kind such as `unknown_field`),
/// `status`, `from`, `to`, `limit`, `cursor`.
pub(super) async fn list(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<ErrorQuery>,
) -> Result<Json<Page<ErrorEntry>>, ApiError> {
    let span = ListingQuery::bounds(query.user, query.from, query.to, query.limit)
        .span(api.clock.now(), false)?;
    let filter = ErrorFilter {
        user: span.user,
        event_type: non_empty(query.event_type),
        violation: non_empty(query.violation),
        status: parse_status(query.status.as_deref())?,
        from: span.from,
        to: span.to,
    };
    let listing = errors_listing(&filter);
    let cursor = api.cursors.open_query(&listing, query.cursor.as_deref())?;
    let page = api
        .errors
        .list(&filter, span.limit, cursor.as_deref())
        .await?;
    Ok(Json(api.cursors.seal_page(&listing, page)))
}

fn entry_key(user: &str, id: &str) -> Result<(UserId, EventId), ApiError> {
    Ok((parse_user(user)?, parse_event_id(id)?))
}

fn entry_not_found(user: UserId, id: &EventId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "error_not_found",
        format!("no error-log entry for event {id} of user {user}"),
    )
}

pub(super) async fn get_one(
    State(api): State<AdminState>,
    _: Authorized,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<ErrorEntry>, ApiError> {
    let (user, id) = entry_key(&user, &id)?;
    let entry = api
        .errors
        .get(user, &id)
        .await?
        .ok_or_else(|| entry_not_found(user, &id))?;
    Ok(Json(entry))
}

/// One entry's replay, as the API reports it.
#[derive(Serialize)]
pub(super) struct Replayed {
    user: UserId,
    id: EventId,
    #[serde(flatten)]
    outcome: ReplayOutcome,
}

/// Validates one entry's event against the schemas as stored now and, when valid, processes it.
pub(super) async fn replay_one(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
    Path((user, id)): Path<(String, String)>,
) -> Result<Json<Replayed>, ApiError> {
    let (user, id) = entry_key(&user, &id)?;
    let outcome = api
        .pipeline
        .replay(user, &id, &admin.0)
        .await
        .map_err(ApiError::from)?;
    if outcome == ReplayOutcome::NotFound {
        return Err(entry_not_found(user, &id));
    }
    count_replayed(&api, std::slice::from_ref(&outcome)).await;
    Ok(Json(Replayed { user, id, outcome }))
}

/// Which open entries to replay. `user`, `type`, `violation` and `cursor` as in the listing.
#[derive(Deserialize)]
pub(super) struct ReplayRequest {
    user: Option<u64>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    violation: Option<String>,
    from: Option<ClientTime>,
    to: Option<ClientTime>,
    limit: Option<u64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub(super) struct ReplayedBatch {
    replayed: usize,
    still_invalid: usize,
    results: Vec<Replayed>,
    next: Option<String>,
}

/// Replays every open entry matching the request, at most `limit` (default and cap
/// [`MAX_REPLAY_BATCH`]) per call; `next` continues.
pub(super) async fn replay_matching(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
    JsonBody(request): JsonBody<ReplayRequest>,
) -> Result<Json<ReplayedBatch>, ApiError> {
    let limit = match request.limit {
        None => MAX_REPLAY_BATCH,
        Some(limit) => usize::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_REPLAY_BATCH).contains(l))
            .ok_or_else(|| {
                invalid_value("limit", format!("`limit` must be 1 to {MAX_REPLAY_BATCH}"))
            })?,
    };
    let (from, to) = span(
        request.from.map(|t| t.0),
        request.to.map(|t| t.0),
        api.clock.now(),
    )?;
    let user = request.user.map(UserId);
    if user.is_none() {
        check_unscoped(from, to)?;
    }
    let filter = ErrorFilter {
        user,
        event_type: non_empty(request.event_type),
        violation: non_empty(request.violation),
        status: Some(ErrorStatus::Open),
        from,
        to,
    };
    let listing = errors_listing(&filter);
    let cursor = api
        .cursors
        .open_query(&listing, request.cursor.as_deref())?;
    let page = api.cursors.seal_page(
        &listing,
        api.errors.list(&filter, limit, cursor.as_deref()).await?,
    );
    let mut results = Vec::with_capacity(page.items.len());
    for entry in page.items {
        let outcome = api
            .pipeline
            .replay(entry.user, &entry.id, &admin.0)
            .await
            .map_err(ApiError::from)?;
        results.push(Replayed {
            user: entry.user,
            id: entry.id,
            outcome,
        });
    }
    let outcomes: Vec<ReplayOutcome> = results.iter().map(|r| r.outcome.clone()).collect();
    count_replayed(&api, &outcomes).await;
    let count =
        |wanted: fn(&ReplayOutcome) -> bool| results.iter().filter(|r| wanted(&r.outcome)).count();
    Ok(Json(ReplayedBatch {
        replayed: count(|o| matches!(o, ReplayOutcome::Replayed { .. })),
        still_invalid: count(|o| matches!(o, ReplayOutcome::StillInvalid { .. })),
        next: page.next,
        results,
    }))
}

/// Counts what the replayed events' rules did, as the stream consumer counts a record: in their
/// rules' days (the rule health must not call a rule dead whose events were all replayed), and
/// their alerts on the dashboard at the minute they went out, now (they carry the event's own
/// time, which may be long past). Logged, not raised: the replay happened.
async fn count_replayed(api: &super::AdminApi, outcomes: &[ReplayOutcome]) {
    let now = api.clock.now();
    let mut days = RuleDays::default();
    let mut minutes = MinuteCounts::default();
    for outcome in outcomes {
        if let ReplayOutcome::Replayed {
            received_at,
            matched,
            outcomes,
            ..
        } = outcome
        {
            days.processed(*received_at, matched, outcomes);
            for _ in outcomes.iter().filter(|o| o.dispatched.is_first()) {
                minutes.alert(now);
            }
        }
    }
    let written = async {
        if !days.is_empty() {
            api.tally.add_rule_days(&days).await?;
        }
        if !minutes.is_empty() {
            api.tally.add(&minutes).await?;
        }
        Ok::<_, cuba_core::model::ports::PortError>(())
    };
    if let Err(error) = written.await {
        tracing::warn!(error = %cuba_core::model::ports::ErrorChain(&error), "the replayed events' counts were not updated");
    }
}
