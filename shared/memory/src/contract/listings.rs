//! The [`Browse`](cuba_core::console::ports::Browse) contract: the listings operators page through.

use cuba_core::console::listing_pages::paginate;
use cuba_core::console::ports::{Browse, ListingPages};
use cuba_core::delivery::alert::{AlertFilter, AlertStatus, Claim, Delivery, Lease};
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::model::domain::{Insert, Millis, SessionId, UserId};
use cuba_core::model::listing::{EventFilter, EventKind};
use cuba_core::model::ports::{EventStore, PortError};
use cuba_core::rules::{Action, Severity};

use super::{alert, all_pages, at, feedback, id, ids, paid, rule, web};

/// The ledger as operators browse it: entries with their status, action and severity.
pub async fn alert_listing(ledger: &dyn AlertLedger, browse: &dyn Browse, base: Millis) {
    let sms = alert("list-sms", 1, at(base, 1), Action::SMS_USER);
    let op = alert(
        "list-op",
        2,
        at(base, 2),
        Action::NotifyOperator {
            severity: Severity::Info,
            grouping: None,
        },
    );
    for a in [&sms, &op] {
        assert_eq!(
            ledger.claim(a, base, &Lease::new(at(base, 10_000))).await,
            Ok(Claim::Claimed {
                lease_until: at(base, 10_000)
            })
        );
    }
    ledger
        .settle(
            &sms.id,
            &Delivery::Sent {
                message_id: "m-9".into(),
            },
            at(base, 3),
        )
        .await
        .expect("settled");
    let everyone = AlertFilter {
        user: None,
        rule: None,
        from: base,
        to: at(base, 10),
    };
    let page = browse.alerts(&everyone, 10, None).await.expect("listed");
    assert_eq!(page.next, None);
    let listed: Vec<(&str, AlertStatus, Action)> = page
        .items
        .iter()
        .map(|e| (e.rule_id.as_str(), e.status, e.action))
        .collect();
    assert_eq!(
        listed,
        [
            ("list-op", AlertStatus::Pending, op.action),
            ("list-sms", AlertStatus::Sent, Action::SMS_USER),
        ],
        "newest first"
    );
    assert_eq!(page.items[1].message_id.as_deref(), Some("m-9"));
    assert_eq!(page.items[1].settled_at, Some(at(base, 3)));
    assert_eq!(page.items[1].event_ids, vec![id("t")]);
    let of_user = AlertFilter {
        user: Some(UserId(1)),
        ..everyone.clone()
    };
    let page = browse.alerts(&of_user, 10, None).await.expect("listed");
    assert_eq!(page.items.len(), 1);
    let of_rule = AlertFilter {
        rule: Some(rule("list-op")),
        ..everyone.clone()
    };
    let page = browse.alerts(&of_rule, 10, None).await.expect("listed");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].user, UserId(2));
}

/// Stored events as operators browse them: newest first, by user, session and kind, in pages.
/// Across everyone and by session, what the stream consumer recorded in the listing pages
/// (each event once, though a retried batch recorded some twice); by user, what is stored.
pub async fn event_listing(
    store: &dyn EventStore,
    pages: &dyn ListingPages,
    browse: &dyn Browse,
    base: Millis,
) {
    let session = SessionId::parse("0190c5a2-7b1e-7cc0-8000-1234567890ab").expect("a session");
    let events = [
        paid(1, "b1", at(base, 1), 10),
        feedback(1, "b2", at(base, 2)),
        paid(2, "b3", at(base, 3), 20),
        web(2, "b4", at(base, 4), &session),
        paid(1, "b5", at(base, 5), 30),
    ];
    for e in &events {
        assert_eq!(store.insert(e).await, Ok(Insert::Inserted));
    }
    let stored: Vec<_> = events.iter().map(|e| e.event.clone()).collect();
    pages
        .record("batch-1", &paginate(&stored[..4]))
        .await
        .expect("recorded");
    // The batch retried from its third record: those pages hold b3 and b4 again.
    pages
        .record("batch-1-retried", &paginate(&stored[2..]))
        .await
        .expect("recorded");
    // Stored, and not yet read by the stream consumer: listed by its user alone.
    let unread = web(3, "b6", at(base, 6), &session);
    assert_eq!(store.insert(&unread).await, Ok(Insert::Inserted));
    let filter = |user, session, kind| EventFilter {
        user,
        session,
        kind,
        from: base,
        to: at(base, 10),
    };
    store
        .set_invalid(UserId(2), &id("b3"), at(base, 3), true)
        .await
        .expect("flagged");
    let list = |f: EventFilter| async move {
        let listed = all_pages(2, |cursor| {
            let f = f.clone();
            async move { browse.events(&f, 2, cursor.as_deref()).await }
        })
        .await;
        let invalid: Vec<String> = listed
            .iter()
            .filter(|l| l.invalid)
            .map(|l| l.event.id.as_str().to_owned())
            .collect();
        assert!(
            invalid.iter().all(|i| i == "b3"),
            "only the event that failed its schema is listed invalid: {invalid:?}"
        );
        listed.into_iter().map(|l| l.event).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&list(filter(Some(UserId(2)), None, None)).await),
        ["b4", "b3"]
    );
    let all = all_pages(10, |cursor| async move {
        browse
            .events(&filter(None, None, None), 10, cursor.as_deref())
            .await
    })
    .await;
    assert_eq!(
        all.iter().filter(|l| l.invalid).count(),
        1,
        "the invalid flag is listed"
    );
    assert_eq!(
        ids(&list(filter(None, None, None)).await),
        ["b5", "b4", "b3", "b2", "b1"],
        "newest first, across pages"
    );
    assert_eq!(
        ids(&list(filter(Some(UserId(1)), None, None)).await),
        ["b5", "b2", "b1"]
    );
    assert_eq!(
        ids(&list(filter(Some(UserId(1)), None, Some(EventKind::Activity))).await),
        ["b5", "b1"]
    );
    assert_eq!(
        ids(&list(filter(None, Some(session.clone()), None)).await),
        ["b4"]
    );
    assert_eq!(
        ids(&list(filter(Some(UserId(3)), None, None)).await),
        ["b6"]
    );
    assert_eq!(
        ids(&list(filter(Some(UserId(3)), Some(session.clone()), None)).await),
        Vec::<String>::new(),
        "a session's listing, filtered by user, holds what was recorded"
    );
    assert_eq!(
        ids(&list(filter(Some(UserId(2)), Some(session.clone()), None)).await),
        ["b4"]
    );
    let narrow = EventFilter {
        from: at(base, 2),
        to: at(base, 4),
        ..filter(None, None, None)
    };
    assert_eq!(ids(&list(narrow).await), ["b4", "b3", "b2"]);
    assert_eq!(
        browse
            .events(&filter(None, None, None), 2, Some("%%% not a cursor"))
            .await,
        Err(PortError::InvalidCursor)
    );
}

/// A listing across many days and many items, some received at the same instant, read in
/// small pages, whole and filtered by kind (a filter that leaves most of a page's reads out):
/// every item exactly once, never an older one before a newer one. Recorded in batches of
/// seven, every third batch twice under another name (a retry).
pub async fn long_event_listing(
    store: &dyn EventStore,
    pages: &dyn ListingPages,
    browse: &dyn Browse,
    base: Millis,
) {
    const DAY: u64 = 86_400_000;
    let mut stored = Vec::new();
    let mut events = Vec::new();
    for i in 0..60u64 {
        // Three days; every other event shares its instant with the one before it; one in five
        // is feedback.
        let at = Millis(base.0 + (i % 3) * DAY + (i / 2) * 1_000);
        let e = if i % 5 == 0 {
            feedback(10 + i % 7, &format!("long-{i:02}"), at)
        } else {
            paid(10 + i % 7, &format!("long-{i:02}"), at, 10)
        };
        assert_eq!(store.insert(&e).await, Ok(Insert::Inserted));
        stored.push((at, e.event.id.as_str().to_owned(), i % 5 == 0));
        events.push(e.event);
    }
    for (n, batch) in events.chunks(7).enumerate() {
        let recorded = paginate(batch);
        pages
            .record(&format!("long-{n}"), &recorded)
            .await
            .expect("recorded");
        if n % 3 == 0 {
            pages
                .record(&format!("long-{n}-again"), &recorded)
                .await
                .expect("recorded");
        }
    }
    let everything = EventFilter {
        user: None,
        session: None,
        kind: None,
        from: base,
        to: Millis(base.0 + 3 * DAY),
    };
    let feedback_only = EventFilter {
        kind: Some(EventKind::Feedback),
        ..everything.clone()
    };
    for (filter, limit) in [
        (&everything, 1),
        (&everything, 7),
        (&everything, 60),
        (&feedback_only, 1),
        (&feedback_only, 5),
    ] {
        let listed = all_pages(limit, |cursor| {
            let f = filter.clone();
            async move { browse.events(&f, limit, cursor.as_deref()).await }
        })
        .await;
        let times: Vec<Millis> = listed.iter().map(|e| e.event.received_at).collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first in pages of {limit}: {times:?}"
        );
        let mut got: Vec<(Millis, String)> = listed
            .iter()
            .map(|e| (e.event.received_at, e.event.id.as_str().to_owned()))
            .collect();
        got.sort();
        let mut want: Vec<(Millis, String)> = stored
            .iter()
            .filter(|(_, _, is_feedback)| filter.kind.is_none() || *is_feedback)
            .map(|(at, id, _)| (*at, id.clone()))
            .collect();
        want.sort();
        assert_eq!(
            got, want,
            "every event once in pages of {limit}, kind {:?}",
            filter.kind
        );
    }
}
