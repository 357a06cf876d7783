//! Newest-first listings for operators: pages, filters and chart timestamps.

use crate::domain::{Millis, SessionId, UserId};

/// One page of a newest-first listing; `next` is an opaque cursor that resumes after it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Activity,
    Feedback,
    Web,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Activity, EventKind::Feedback, EventKind::Web];

    pub fn parse(raw: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Activity => "activity",
            EventKind::Feedback => "feedback",
            EventKind::Web => "web",
        }
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

/// Timestamps for a chart, and whether the cap cut them short.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Times {
    pub times: Vec<Millis>,
    pub truncated: bool,
}
