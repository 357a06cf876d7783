//! The contract every implementation of the ports must keep: the memory ports run it in their
//! unit tests, the DynamoDB adapters against moto in the local crate's integration tests, with
//! the same assertions. Each check takes fresh, empty stores and a `base` time near now (so
//! time-bucketed indexes stay small); it panics on the first broken promise.
//!
//! One file per port; the builders the suites share are here.

mod alerts;
mod documents;
mod error_log;
mod events;
mod group_windows;
mod listings;
mod operator_quotas;
mod profiles;
mod rate_counter;
mod rule_state;
mod silences;
mod sms_quotas;
mod tally;
mod windows;

pub use alerts::*;
pub use documents::*;
pub use error_log::*;
pub use events::*;
pub use group_windows::*;
pub use listings::*;
pub use operator_quotas::*;
pub use profiles::*;
pub use rate_counter::*;
pub use rule_state::*;
pub use silences::*;
pub use sms_quotas::*;
pub use tally::*;
pub use windows::*;

use cuba_core::delivery::alert::{Alert, AlertId};
use cuba_core::model::domain::{
    Activity, EventBody, EventId, Feedback, IdOrigin, Millis, Rating, ReceivedEvent, SessionId,
    StoredEvent, UserId, WebEvent,
};
use cuba_core::model::listing::{MAX_CURSOR_CHARS, Page};
use cuba_core::model::ports::PortError;
use cuba_core::model::trace::TraceContext;
use cuba_core::rules::{Action, RuleId};
use serde_json::json;

fn id(raw: &str) -> EventId {
    EventId::parse(raw).expect("a valid event id")
}

fn rule(raw: &str) -> RuleId {
    RuleId::parse(raw).expect("a valid rule id")
}

fn at(base: Millis, ms: u64) -> Millis {
    Millis(base.0 + ms)
}

fn paid(user: u64, event: &str, received_at: Millis, amount: u64) -> ReceivedEvent {
    let body = EventBody::Activity(Activity::new(
        "bill",
        "paid",
        json!({"amount": amount})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ));
    ReceivedEvent {
        trace: None,
        raw: format!(r#"{{"noun": "bill", "verb": "paid", "properties": {{"amount": {amount}}}}}"#),
        origin: IdOrigin::Client,
        event: StoredEvent {
            user: UserId(user),
            id: id(event),
            received_at,
            body,
        },
    }
}

fn feedback(user: u64, event: &str, received_at: Millis) -> ReceivedEvent {
    ReceivedEvent {
        trace: None,
        raw: r#"{"rating": 4}"#.into(),
        origin: IdOrigin::Client,
        event: StoredEvent {
            user: UserId(user),
            id: id(event),
            received_at,
            body: EventBody::Feedback(Feedback {
                rating: Rating::try_from(4).expect("a rating"),
                comment: None,
            }),
        },
    }
}

fn web(user: u64, event: &str, received_at: Millis, session: &SessionId) -> ReceivedEvent {
    ReceivedEvent {
        trace: None,
        raw: r#"{"name": "pageview"}"#.into(),
        origin: IdOrigin::Client,
        event: StoredEvent {
            user: UserId(user),
            id: id(event),
            received_at,
            body: EventBody::Web(WebEvent {
                session_id: session.clone(),
                category: Some("page interaction".into()),
                name: "pageview".into(),
                data: json!({"host": "cube.example"}),
                timestamp: received_at,
            }),
        },
    }
}

/// A trace an event or alert was received in, as API Gateway writes it.
fn trace() -> TraceContext {
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        .parse()
        .expect("a trace header")
}

fn ids(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

fn alert(key: &str, user: u64, fired_at: Millis, action: Action) -> Alert {
    let rule_id = rule(key);
    Alert {
        trace: None,
        id: AlertId::for_trigger(&rule_id, UserId(user), &id("t")),
        rule_id,
        user: UserId(user),
        event_ids: vec![id("t")],
        action,
        text: format!("alert of {key}"),
        translations: Default::default(),
        fired_at,
    }
}

/// Reads every page of a listing; `limit` per page.
async fn all_pages<T, F, Fut>(limit: usize, mut read: F) -> Vec<T>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, PortError>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = read(cursor.take()).await.expect("a page");
        assert!(
            page.items.len() <= limit,
            "a page holds at most `limit` items"
        );
        items.extend(page.items);
        match page.next {
            Some(next) => {
                assert!(
                    next.len() <= MAX_CURSOR_CHARS,
                    "a cursor of {} characters",
                    next.len()
                );
                cursor = Some(next);
            }
            None => return items,
        }
    }
    panic!("a listing that never ends");
}
