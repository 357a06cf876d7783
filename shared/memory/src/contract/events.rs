//! The [`EventStore`](cuba_core::model::ports::EventStore) contract: storing and reading events.

use cuba_core::model::domain::{
    EventId, IdOrigin, Insert, MAX_ITEM_BYTES, Millis, ReceivedEvent, UserId,
};
use cuba_core::model::ports::EventStore;

use super::{at, feedback, id, ids, paid, trace};

/// Storing events: idempotent by (user, id), raw text kept, reads by time, the invalid flag.
pub async fn event_store(store: &dyn EventStore, base: Millis) {
    let first = paid(1, "e1", at(base, 10), 100);
    assert_eq!(store.insert(&first).await, Ok(Insert::Inserted));
    assert_eq!(
        store.insert(&first).await,
        Ok(Insert::Inserted),
        "the same write again (a put retried after its answer was lost) is that insert"
    );
    let retry = paid(1, "e1", at(base, 20), 999);
    assert_eq!(
        store.insert(&retry).await,
        Ok(Insert::Duplicate(first.event.clone())),
        "a retry with the same id answers the stored copy, receive time included"
    );
    assert_eq!(
        store.get(UserId(1), &id("e1")).await,
        Ok(Some(first.clone())),
        "the raw text is kept exactly"
    );
    assert_eq!(
        store
            .get_received(UserId(1), &id("e1"), first.event.received_at)
            .await
            .map(|found| found.map(|r| r.event)),
        Ok(Some(first.event.clone())),
        "read by its receive time"
    );
    assert_eq!(
        store
            .get_received(UserId(1), &id("e1"), retry.event.received_at)
            .await
            .map(|found| found.is_some()),
        Ok(false),
        "not received at another time"
    );
    assert_eq!(
        store.insert(&paid(2, "e1", at(base, 30), 5)).await,
        Ok(Insert::Inserted),
        "ids are unique per user, not globally"
    );
    let mut traced = paid(4, "traced", at(base, 700_000), 7);
    traced.trace = Some(trace());
    assert_eq!(store.insert(&traced).await, Ok(Insert::Inserted));
    assert_eq!(
        store.get(UserId(4), &id("traced")).await,
        Ok(Some(traced.clone())),
        "the trace it was received in is kept"
    );
    let mut huge = paid(3, "huge", at(base, 900_000), 1);
    huge.raw = format!("{{\"pad\": \"{}\"}}", "x".repeat(MAX_ITEM_BYTES));
    let refused = store.insert(&huge).await.expect("an answer, not an outage");
    assert!(matches!(refused, Insert::Refused { .. }), "{refused:?}");
    assert_eq!(store.get(UserId(3), &id("huge")).await, Ok(None));
    let outcomes = store
        .insert_many(&[huge.clone(), paid(3, "small", at(base, 900_001), 1)])
        .await
        .expect("a batch is stored");
    assert!(
        matches!(outcomes[0], Insert::Refused { .. }),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[1],
        Insert::Inserted,
        "the rest of the batch is stored"
    );

    let batch = [
        paid(1, "e2", at(base, 40), 200),
        paid(1, "e1", at(base, 41), 1),
        feedback(1, "e3", at(base, 50)),
        paid(1, "e2", at(base, 42), 7),
        paid(1, "e1", at(base, 43), 2),
    ];
    let outcomes = store.insert_many(&batch).await.expect("a batch is stored");
    assert_eq!(
        outcomes,
        vec![
            Insert::Inserted,
            Insert::Duplicate(first.event.clone()),
            Insert::Inserted,
            Insert::Duplicate(batch[0].event.clone()),
            Insert::Duplicate(first.event.clone()),
        ],
        "one answer per event, in order; a repeat inside the batch is a duplicate of what its \
         first occurrence stored or found"
    );
    assert_eq!(
        store.get(UserId(1), &id("e2")).await,
        Ok(Some(batch[0].clone())),
        "the first body of a repeated id is the one stored"
    );
    assert_eq!(store.insert_many(&[]).await, Ok(vec![]));

    let window = store
        .received_between(UserId(1), at(base, 10), at(base, 50))
        .await
        .expect("a window read");
    assert_eq!(
        ids(&window),
        ["e1", "e2", "e3"],
        "bounds are inclusive, oldest first"
    );
    let inner = store
        .received_between(UserId(1), at(base, 11), at(base, 49))
        .await
        .expect("a window read");
    assert_eq!(ids(&inner), ["e2"]);

    store
        .set_invalid(UserId(1), &id("e2"), batch[0].event.received_at, true)
        .await
        .expect("flagging a stored event");
    let window = store
        .received_between(UserId(1), at(base, 0), at(base, 100))
        .await
        .expect("a window read");
    assert_eq!(ids(&window), ["e1", "e3"], "invalid events never count");
    let (all, truncated) = store
        .all_received_between(at(base, 0), at(base, 100), 10)
        .await
        .expect("a span read");
    assert_eq!((all.len(), truncated), (3, false), "{all:?}");
    assert!(all.iter().all(|e| e.id.as_str() != "e2"));
    assert_eq!(
        store.get(UserId(1), &id("e2")).await.map(|e| e.is_some()),
        Ok(true),
        "an invalid event is still stored"
    );
    store
        .set_invalid(UserId(1), &id("e2"), batch[0].event.received_at, false)
        .await
        .expect("unflagging");
    let window = store
        .received_between(UserId(1), at(base, 0), at(base, 100))
        .await
        .expect("a window read");
    assert_eq!(ids(&window), ["e1", "e2", "e3"]);
    assert!(
        store
            .set_invalid(UserId(9), &id("nope"), at(base, 1), true)
            .await
            .is_err(),
        "flagging an event that is not stored is an error, not a new item"
    );

    let (some, truncated) = store
        .all_received_between(at(base, 0), at(base, 100), 2)
        .await
        .expect("a span read");
    assert_eq!((some.len(), truncated), (2, true));

    minted_ids(store, at(base, 500_000)).await;
}

/// Ids ingest minted (UUIDv7s of the receive time), alone and in batches larger than one
/// write request takes, beside a client's own UUIDv7 id.
async fn minted_ids(store: &dyn EventStore, base: Millis) {
    let minted = |user: u64, ms: u64| {
        let received_at = at(base, ms);
        let mut event = paid(user, "unused", received_at, ms);
        event.event.id = EventId::minted_at(received_at);
        event.origin = IdOrigin::Minted;
        event
    };
    let one = minted(4, 1);
    assert_eq!(one.event.id.minted_time(), Some(at(base, 1)));
    assert_eq!(store.insert(&one).await, Ok(Insert::Inserted));
    assert_eq!(
        store.insert(&one).await,
        Ok(Insert::Inserted),
        "the same write again (an SDK retry) is that insert"
    );
    // Read back, an event is its fields and raw text (who chose its id is not stored).
    let body = |found: Result<Option<ReceivedEvent>, _>| found.map(|e| e.map(|r| (r.event, r.raw)));
    assert_eq!(
        body(store.get(UserId(4), &one.event.id).await),
        Ok(Some((one.event.clone(), one.raw.clone())))
    );

    let mut batch: Vec<ReceivedEvent> = (0..30).map(|i| minted(5, 10 + i)).collect();
    let mut huge = minted(5, 60);
    huge.raw = format!("{{\"pad\": \"{}\"}}", "x".repeat(MAX_ITEM_BYTES));
    batch.insert(7, huge.clone());
    batch.push(paid(5, "chosen", at(base, 70), 1));
    let outcomes = store.insert_many(&batch).await.expect("a batch is stored");
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 7 {
            assert!(matches!(outcome, Insert::Refused { .. }), "{outcome:?}");
        } else {
            assert_eq!(outcome, &Insert::Inserted, "event {i}");
        }
    }
    let stored = store
        .received_between(UserId(5), at(base, 0), at(base, 100))
        .await
        .expect("a window read");
    assert_eq!(stored.len(), 31, "every event but the refused one");
    assert!(
        stored
            .windows(2)
            .all(|pair| pair[0].received_at <= pair[1].received_at),
        "oldest first"
    );
    assert_eq!(store.get(UserId(5), &huge.event.id).await, Ok(None));
    assert_eq!(
        body(store.get(UserId(5), &batch[20].event.id).await),
        Ok(Some((batch[20].event.clone(), batch[20].raw.clone())))
    );

    // A client may mint UUIDv7s too, even at the very millisecond the server receives one: its
    // retry, whenever it comes, is still the duplicate.
    let mut chosen = paid(6, "unused", at(base, 200), 1);
    chosen.event.id = EventId::minted_at(at(base, 200));
    assert_eq!(store.insert(&chosen).await, Ok(Insert::Inserted));
    let mut retry = chosen.clone();
    retry.event.received_at = at(base, 9_000);
    assert_eq!(
        store.insert(&retry).await,
        Ok(Insert::Duplicate(chosen.event.clone()))
    );
    let mut later_chosen = paid(6, "unused", at(base, 300), 1);
    later_chosen.event.id = EventId::minted_at(at(base, 250));
    assert_eq!(store.insert(&later_chosen).await, Ok(Insert::Inserted));
    let mut retry = later_chosen.clone();
    retry.event.received_at = at(base, 9_500);
    assert_eq!(
        store.insert(&retry).await,
        Ok(Insert::Duplicate(later_chosen.event.clone()))
    );
    assert_eq!(
        store.get(UserId(6), &later_chosen.event.id).await,
        Ok(Some(later_chosen.clone())),
        "a client's UUIDv7 is found by its entry, not its timestamp"
    );
}
