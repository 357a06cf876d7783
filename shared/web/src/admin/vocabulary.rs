//! What the rule builder builds from: the rule language described by the core
//! (`GET /admin/api/rule-language`) and the event types seen lately or named by the schema
//! registry, with their fields and a sample (`GET /admin/api/event-types`).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{AdminState, MAX_PAGE, MAX_UNSCOPED_DAYS, whole_number};
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::request::QueryParams;
use cuba_core::model::domain::Millis;
use cuba_core::model::listing::EventFilter;
use cuba_core::rules::catalogue::{self, EventTypeEntry};
use cuba_core::rules::language::{self, RuleLanguage};
use cuba_core::schemas::{DEFAULT_SCHEMAS, SchemaSet, documents_of_file};

/// The most recent events one catalogue reads: enough to find the types in use and a sample of
/// each without walking a busy week of events.
pub const EVENT_TYPES_SAMPLE: usize = 1_000;
const DEFAULT_DAYS: u64 = 7;

pub(super) async fn rule_language(_: Authorized) -> Json<RuleLanguage> {
    Json(language::describe())
}

#[derive(Deserialize)]
pub(super) struct EventTypesQuery {
    days: Option<String>,
}

#[derive(Serialize)]
pub(super) struct EventTypes {
    from: Millis,
    to: Millis,
    /// How many recent events were read (newest first).
    events_read: usize,
    /// True when the span held more than [`EVENT_TYPES_SAMPLE`] events: rarer types may be
    /// missing from `types` unless the registry names them.
    truncated: bool,
    types: Vec<EventTypeEntry>,
}

pub(super) async fn event_types(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<EventTypesQuery>,
) -> Result<Json<EventTypes>, ApiError> {
    let days = whole_number(
        query.days.as_deref(),
        "days",
        1..=MAX_UNSCOPED_DAYS,
        DEFAULT_DAYS,
    )?;
    let to = api.clock.now();
    let from = to.minus_seconds(days * 24 * 60 * 60);
    let filter = EventFilter {
        user: None,
        session: None,
        kind: None,
        from,
        to,
    };
    let mut recent = Vec::new();
    let mut cursor: Option<String> = None;
    let truncated = loop {
        let want = (EVENT_TYPES_SAMPLE - recent.len()).min(MAX_PAGE);
        let page = api.browse.events(&filter, want, cursor.as_deref()).await?;
        recent.extend(page.items);
        match page.next {
            Some(next) if recent.len() < EVENT_TYPES_SAMPLE => cursor = Some(next),
            Some(_) => break true,
            None => break false,
        }
    };
    let documents = match api.schemas.current().await? {
        Some(records) => records
            .into_iter()
            .filter(|r| r.enabled())
            .map(|r| r.document)
            .collect(),
        // Never seeded: the registry in force is the default one.
        None => documents_of_file(DEFAULT_SCHEMAS).unwrap_or_default(),
    };
    let (registry, _broken) = SchemaSet::from_documents(documents.iter().map(|d| (0, d)));
    Ok(Json(EventTypes {
        from,
        to,
        events_read: recent.len(),
        truncated,
        types: catalogue::event_types(&documents, &registry, &recent),
    }))
}
