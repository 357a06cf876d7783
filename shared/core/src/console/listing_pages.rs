//! The listings across everyone and by web session, written by the stream consumer as pages:
//! one item per stream batch, listing and second of receipt, holding the keys of that batch's
//! events, instead of an index entry per event. A busy fleet then writes a few items per
//! hundred events where an index wrote one per event (a write unit each); a reader merges the
//! pages of a second across their shards and drops the repeats a retried batch wrote.

use std::collections::BTreeMap;

use crate::model::domain::{EventBody, EventId, Millis, SessionId, StoredEvent, UserId};
use crate::model::listing::EventKind;

/// One event as a listing page holds it: enough to order it, filter it by kind and user, and
/// read it from the events table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageEntry {
    pub user: UserId,
    pub id: EventId,
    pub received_at: Millis,
    pub kind: EventKind,
}

impl PageEntry {
    pub fn of(event: &StoredEvent) -> Self {
        PageEntry {
            user: event.user,
            id: event.id.clone(),
            received_at: event.received_at,
            kind: kind_of(&event.body),
        }
    }
}

pub fn kind_of(body: &EventBody) -> EventKind {
    match body {
        EventBody::Activity(_) => EventKind::Activity,
        EventBody::Feedback(_) => EventKind::Feedback,
        EventBody::Web(_) => EventKind::Web,
    }
}

/// Which listing a page belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Listed {
    /// Everyone's events.
    Everyone,
    /// One web session's events (of any user).
    Session(SessionId),
}

/// The entries of one listing received in one second, from one stream batch.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingPage {
    pub listing: Listed,
    /// Seconds since the epoch: every entry was received in it.
    pub second: u64,
    pub entries: Vec<PageEntry>,
}

/// The second an event received at `at` is paged under.
pub fn second_of(at: Millis) -> u64 {
    at.0 / 1000
}

/// A batch's events as pages: one per listing (everyone's, and each web session's) and second
/// of receipt, its entries in the batch's order. A web event is on two pages: everyone's and
/// its session's.
pub fn paginate<'a>(events: impl IntoIterator<Item = &'a StoredEvent>) -> Vec<ListingPage> {
    let mut pages: BTreeMap<(Listed, u64), Vec<PageEntry>> = BTreeMap::new();
    for event in events {
        let entry = PageEntry::of(event);
        let second = second_of(event.received_at);
        if let EventBody::Web(web) = &event.body {
            pages
                .entry((Listed::Session(web.session_id.clone()), second))
                .or_default()
                .push(entry.clone());
        }
        pages
            .entry((Listed::Everyone, second))
            .or_default()
            .push(entry);
    }
    pages
        .into_iter()
        .map(|((listing, second), entries)| ListingPage {
            listing,
            second,
            entries,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::model::domain::WebEvent;

    #[test]
    fn a_batch_is_paged_per_listing_and_second() {
        let session = SessionId::parse("0190c5a2-7b1e-7cc0-8000-1234567890ab").expect("a uuid");
        let web = |user, id, seconds| {
            fixtures::at(
                user,
                id,
                seconds,
                EventBody::Web(WebEvent {
                    session_id: session.clone(),
                    category: Some("page".to_owned()),
                    name: "viewed".to_owned(),
                    data: serde_json::Value::Null,
                    timestamp: Millis(0),
                }),
            )
        };
        // fixtures::at receives at 1,000 s plus `seconds`.
        let events = [
            fixtures::paid(1, "a", 0, 10),
            web(2, "b", 0),
            fixtures::paid(3, "c", 1, 10),
            web(2, "d", 1),
        ];
        let pages = paginate(&events);
        let shape: Vec<(Listed, u64, Vec<&str>)> = pages
            .iter()
            .map(|p| {
                (
                    p.listing.clone(),
                    p.second,
                    p.entries.iter().map(|e| e.id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (Listed::Everyone, 1000, vec!["a", "b"]),
                (Listed::Everyone, 1001, vec!["c", "d"]),
                (Listed::Session(session.clone()), 1000, vec!["b"]),
                (Listed::Session(session.clone()), 1001, vec!["d"]),
            ]
        );
        assert_eq!(pages[0].entries[1].kind, EventKind::Web);
        assert_eq!(pages[0].entries[1].user, UserId(2));
        assert!(paginate(&[]).is_empty());
    }
}
