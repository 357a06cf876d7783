//! Newest-first listings for operators: pages and filters.

use crate::model::domain::{Millis, SessionId, StoredEvent, UserId};
use crate::model::trace::TraceContext;

/// The longest cursor a listing port hands out, at any shard count: it travels in a URL, sealed
/// by the admin API (whose own limit is twice this).
pub const MAX_CURSOR_CHARS: usize = 1024;

/// One page of a newest-first listing; `next` is an opaque cursor that resumes after it, at
/// most [`MAX_CURSOR_CHARS`] long.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// An event as the operators' listings show it: whether it failed its schema is part of what
/// an operator reads (it is in the error log, and no rule counted it), not a detail to look up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListedEvent {
    #[serde(flatten)]
    pub event: StoredEvent,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invalid: bool,
    /// The trace of the request that sent it: where to look for what it caused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::model::trace::lenient"
    )]
    pub trace: Option<TraceContext>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Activity,
    Feedback,
    Web,
}

impl EventKind {
    /// The kind serde names `raw` (`activity`, `feedback`, `web`), if any.
    pub fn parse(raw: &str) -> Option<EventKind> {
        serde_json::from_value(serde_json::Value::String(raw.to_owned())).ok()
    }
}

/// Which stored events to list.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub user: Option<UserId>,
    /// A web session; takes precedence over `user`.
    pub session: Option<SessionId>,
    pub kind: Option<EventKind>,
    pub from: Millis,
    pub to: Millis,
}
