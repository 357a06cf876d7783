//! The contract every implementation of the ports must keep: the memory ports run it in their
//! unit tests, the DynamoDB adapters against moto in the local crate's integration tests, with
//! the same assertions. Each check takes fresh, empty stores and a `base` time near now (so
//! time-bucketed indexes stay small); it panics on the first broken promise.

use cuba_core::activity::{MinuteCounts, Tally};
use cuba_core::alert::{Alert, AlertFilter, AlertId, AlertStatus, Claim, Delivery};
use cuba_core::document::{DocumentAction, DocumentId};
use cuba_core::domain::{
    Activity, EventBody, EventId, Feedback, Insert, MAX_ITEM_BYTES, Millis, PendingCode,
    PhoneNumber, Rating, ReceivedEvent, SessionId, StoredEvent, UserId, UserProfile, WebEvent,
};
use cuba_core::error_log::{ErrorEntry, ErrorFilter, ErrorStatus};
use cuba_core::listing::{EventFilter, EventKind, Page};
use cuba_core::ports::{
    ActivityTally, AlertLedger, Browse, DocumentStore, DocumentWriteError, ErrorLog, EventStore,
    PortError, ProfileStore, RuleState, SmsQuota, SmsQuotas, WindowStore,
};
use cuba_core::rules::{Action, RuleId, Severity};
use cuba_core::schemas::{SchemaRef, Violation};
use cuba_core::window::{MAX_BUCKET_MEMBERS, WindowKey, WindowMember, WindowRead};
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
        raw: format!(r#"{{"noun": "bill", "verb": "paid", "properties": {{"amount": {amount}}}}}"#),
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
        raw: r#"{"rating": 4}"#.into(),
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
        raw: r#"{"name": "pageview"}"#.into(),
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

fn ids(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

/// Storing events: idempotent by (user, id), raw text kept, reads by time, the invalid flag.
pub async fn event_store(store: &dyn EventStore, base: Millis) {
    let first = paid(1, "e1", at(base, 10), 100);
    assert_eq!(store.insert(&first).await, Ok(Insert::Inserted));
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
        store.insert(&paid(2, "e1", at(base, 30), 5)).await,
        Ok(Insert::Inserted),
        "ids are unique per user, not globally"
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
        .set_invalid(UserId(1), &id("e2"), true)
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
        .set_invalid(UserId(1), &id("e2"), false)
        .await
        .expect("unflagging");
    let window = store
        .received_between(UserId(1), at(base, 0), at(base, 100))
        .await
        .expect("a window read");
    assert_eq!(ids(&window), ["e1", "e2", "e3"]);
    assert!(
        store
            .set_invalid(UserId(9), &id("nope"), true)
            .await
            .is_err(),
        "flagging an event that is not stored is an error, not a new item"
    );

    let (some, truncated) = store
        .all_received_between(at(base, 0), at(base, 100), 2)
        .await
        .expect("a span read");
    assert_eq!((some.len(), truncated), (2, true));
}

/// Profiles: written with optimistic concurrency on their version.
pub async fn profile_store(store: &dyn ProfileStore, base: Millis) {
    assert_eq!(store.profile(UserId(5)).await, Ok(None));
    let phone = |raw: &str| PhoneNumber::parse(raw).expect("a phone number");
    let profile = UserProfile {
        user: UserId(5),
        phone: phone("+15555550100"),
        updated_at: base,
        phone_verified: false,
        pending_code: Some(PendingCode {
            hash: "h".into(),
            expires_at: at(base, 600_000),
            attempts_left: 5,
        }),
        codes_sent: vec![base],
        version: 0,
    };
    assert_eq!(store.save(&profile, 0).await, Ok(true));
    let stored = UserProfile {
        version: 1,
        ..profile.clone()
    };
    assert_eq!(store.profile(UserId(5)).await, Ok(Some(stored.clone())));
    assert_eq!(
        store.save(&profile, 0).await,
        Ok(true),
        "a repeat of the same write (its answer was lost) is the writer's own"
    );
    let rival = UserProfile {
        phone: phone("+15555550111"),
        ..profile.clone()
    };
    assert_eq!(
        store.save(&rival, 0).await,
        Ok(false),
        "a writer that read no profile loses to the one that created it"
    );
    let changed = UserProfile {
        phone: phone("+15555550199"),
        phone_verified: true,
        pending_code: None,
        updated_at: at(base, 1),
        ..stored
    };
    assert_eq!(store.save(&changed, 1).await, Ok(true));
    let stale = UserProfile {
        phone_verified: false,
        ..changed.clone()
    };
    assert_eq!(
        store.save(&stale, 1).await,
        Ok(false),
        "a stale version loses"
    );
    assert_eq!(
        store.profile(UserId(5)).await,
        Ok(Some(UserProfile {
            version: 2,
            ..changed
        }))
    );
}

/// First markers and cooldowns: one winner, a redelivery of the winner wins again.
pub async fn rule_state(state: &dyn RuleState, base: Millis) {
    let (r, u) = (rule("first-rule"), UserId(1));
    assert_eq!(state.first_holder(&r, u).await, Ok(None));
    assert_eq!(state.claim_first(&r, u, &id("a")).await, Ok(true));
    assert_eq!(state.claim_first(&r, u, &id("b")).await, Ok(false));
    assert_eq!(
        state.claim_first(&r, u, &id("a")).await,
        Ok(true),
        "a redelivery"
    );
    assert_eq!(state.first_holder(&r, u).await, Ok(Some(id("a"))));
    assert_eq!(
        state.claim_first(&r, UserId(2), &id("b")).await,
        Ok(true),
        "per user"
    );
    assert_eq!(
        state.claim_first(&rule("other"), u, &id("b")).await,
        Ok(true),
        "per rule"
    );

    let w = rule("window-rule");
    assert_eq!(state.cooldown_until(&w, u).await, Ok(None));
    let until = at(base, 300_000);
    assert_eq!(
        state.claim_cooldown(&w, u, &id("t1"), base, until).await,
        Ok(true)
    );
    assert_eq!(state.cooldown_until(&w, u).await, Ok(Some(until)));
    assert_eq!(
        state
            .claim_cooldown(&w, u, &id("t2"), at(base, 1_000), at(base, 301_000))
            .await,
        Ok(false),
        "another trigger during the cooldown"
    );
    assert_eq!(
        state.claim_cooldown(&w, u, &id("t1"), base, until).await,
        Ok(true),
        "a redelivery of the trigger that started it"
    );
    assert_eq!(
        state
            .claim_cooldown(&w, u, &id("t3"), until, at(base, 600_000))
            .await,
        Ok(true),
        "the cooldown has ended at `until`"
    );
    assert_eq!(
        state.cooldown_until(&w, u).await,
        Ok(Some(at(base, 600_000)))
    );
}

fn alert(key: &str, user: u64, fired_at: Millis, action: Action) -> Alert {
    let rule_id = rule(key);
    Alert {
        id: AlertId::for_trigger(&rule_id, UserId(user), &id("t")),
        rule_id,
        user: UserId(user),
        event_ids: vec![id("t")],
        action,
        text: format!("alert of {key}"),
        fired_at,
    }
}

/// Claims, leases, the `sending` mark, settling and releasing: an alert is handed to the
/// provider by one worker, once.
pub async fn alert_ledger(ledger: &dyn AlertLedger, base: Millis) {
    let a = alert("ledger-rule", 1, base, Action::SmsUser);
    let lease = at(base, 10_000);
    let claimed = |lease_until| Ok(Claim::Claimed { lease_until });
    assert_eq!(ledger.claim(&a, base, lease).await, claimed(lease));
    assert_eq!(
        ledger.claim(&a, base, lease).await,
        claimed(lease),
        "a repeat of the same claim (its answer was lost) is the caller's own"
    );
    assert_eq!(
        ledger.claim(&a, at(base, 5_000), at(base, 15_000)).await,
        Ok(Claim::InFlight { lease_until: lease }),
        "held by the first worker"
    );
    assert_eq!(
        ledger.claim(&a, lease, at(base, 20_000)).await,
        Ok(Claim::InFlight { lease_until: lease }),
        "the lease still holds at its last millisecond"
    );
    let taken = at(base, 30_000);
    assert_eq!(
        ledger.claim(&a, at(base, 10_001), taken).await,
        claimed(taken),
        "a lapsed lease is taken over"
    );
    assert_eq!(
        ledger.mark_sending(&a.id, lease, at(base, 40_000)).await,
        Ok(false),
        "the overtaken worker cannot start sending"
    );
    ledger
        .release(&a.id, "SNS said no")
        .await
        .expect("released");
    let again = at(base, 40_000);
    assert_eq!(
        ledger.claim(&a, at(base, 10_002), again).await,
        claimed(again),
        "a released alert is claimed again at once"
    );
    let sending = at(base, 50_000);
    assert_eq!(ledger.mark_sending(&a.id, again, sending).await, Ok(true));
    assert_eq!(
        ledger.mark_sending(&a.id, again, sending).await,
        Ok(true),
        "a repeat of the mark"
    );
    assert_eq!(
        ledger.claim(&a, at(base, 45_000), at(base, 60_000)).await,
        Ok(Claim::InFlight {
            lease_until: sending
        }),
        "being sent"
    );
    assert_eq!(
        ledger.stuck(at(base, 45_000), 10).await.map(|e| e.len()),
        Ok(0),
        "not stuck while its lease holds"
    );
    let stuck = ledger
        .stuck(at(base, 50_001), 10)
        .await
        .expect("stuck alerts");
    assert_eq!(
        stuck
            .iter()
            .map(|e| (&e.alert_id, e.status))
            .collect::<Vec<_>>(),
        vec![(&a.id, AlertStatus::Sending)]
    );
    assert_eq!(
        ledger.claim(&a, at(base, 50_001), at(base, 60_000)).await,
        Ok(Claim::Abandoned),
        "a lapsed `sending` is never handed out again"
    );
    ledger
        .settle(
            &a.id,
            &Delivery::Sent {
                message_id: "m-1".into(),
            },
            at(base, 10_003),
        )
        .await
        .expect("settled");
    assert_eq!(
        ledger.claim(&a, at(base, 99_000), at(base, 109_000)).await,
        Ok(Claim::AlreadySettled)
    );
    assert_eq!(
        ledger.stuck(at(base, 999_000), 10).await.map(|e| e.len()),
        Ok(0),
        "settled alerts are not stuck"
    );
    ledger
        .release(&a.id, "late")
        .await
        .expect("releasing a settled alert is a no-op");
    assert_eq!(
        ledger.claim(&a, at(base, 99_000), at(base, 109_000)).await,
        Ok(Claim::AlreadySettled),
        "a settled alert stays settled"
    );

    let b = alert(
        "ledger-op",
        2,
        base,
        Action::NotifyOperator {
            severity: Severity::Critical,
        },
    );
    assert_eq!(ledger.claim(&b, base, lease).await, claimed(lease));
    let stuck = ledger
        .stuck(at(base, 10_001), 10)
        .await
        .expect("stuck alerts");
    assert_eq!(
        stuck
            .iter()
            .map(|e| (&e.alert_id, e.status))
            .collect::<Vec<_>>(),
        vec![(&b.id, AlertStatus::Pending)],
        "a pending alert past its lease is stuck"
    );
    assert_eq!(stuck[0].action, b.action);
    assert_eq!(stuck[0].text, b.text);
    for (delivery, status) in [
        (
            Delivery::Suppressed {
                reason: "cap".into(),
            },
            AlertStatus::Suppressed,
        ),
        (
            Delivery::Unconfirmed {
                reason: "no answer".into(),
            },
            AlertStatus::Unconfirmed,
        ),
        (
            Delivery::Undeliverable {
                reason: "no phone".into(),
            },
            AlertStatus::Undeliverable,
        ),
    ] {
        ledger
            .settle(&b.id, &delivery, base)
            .await
            .expect("settled");
        assert_eq!(delivery.status(), status);
    }
    assert_eq!(
        ledger.claim(&b, at(base, 99_000), at(base, 109_000)).await,
        Ok(Claim::AlreadySettled)
    );
}

/// SMS quotas: a rolling 24 hours per user or phone, keyed by alert; a daily budget count.
pub async fn sms_quotas(quotas: &dyn SmsQuotas, base: Millis) {
    let user = SmsQuota::User(UserId(7));
    let alert_id =
        |n: u64| AlertId::for_trigger(&rule("quota-rule"), UserId(7), &id(&format!("t{n}")));
    for n in 0..3 {
        assert_eq!(
            quotas.take(&user, 3, &alert_id(n), at(base, n)).await,
            Ok(true)
        );
    }
    assert_eq!(
        quotas.take(&user, 3, &alert_id(3), at(base, 10)).await,
        Ok(false),
        "the cap is reached"
    );
    assert_eq!(
        quotas.take(&user, 3, &alert_id(1), at(base, 11)).await,
        Ok(true),
        "an alert already counted counts again (a retry)"
    );
    let phone = SmsQuota::Phone(PhoneNumber::parse("+15555550100").expect("a phone number"));
    assert_eq!(
        quotas.take(&phone, 3, &alert_id(3), at(base, 12)).await,
        Ok(true),
        "quotas are separate"
    );
    let next_day = at(base, 24 * 3600 * 1000);
    assert_eq!(
        quotas.take(&user, 3, &alert_id(3), next_day).await,
        Ok(true),
        "the oldest count left the 24 hours"
    );
    assert_eq!(
        quotas.take(&user, 0, &alert_id(9), next_day).await,
        Ok(false),
        "a cap of 0 sends nothing"
    );

    let day = base.0 / (24 * 3600 * 1000);
    assert_eq!(quotas.take_budget(day, 2).await, Ok(true));
    assert_eq!(quotas.take_budget(day, 2).await, Ok(true));
    assert_eq!(quotas.take_budget(day, 2).await, Ok(false));
    assert_eq!(quotas.take_budget(day + 1, 2).await, Ok(true), "per day");
}

/// The ledger as operators browse it: entries with their status, action and severity.
pub async fn alert_listing(ledger: &dyn AlertLedger, browse: &dyn Browse, base: Millis) {
    let sms = alert("list-sms", 1, at(base, 1), Action::SmsUser);
    let op = alert(
        "list-op",
        2,
        at(base, 2),
        Action::NotifyOperator {
            severity: Severity::Info,
        },
    );
    for a in [&sms, &op] {
        assert_eq!(
            ledger.claim(a, base, at(base, 10_000)).await,
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
            ("list-sms", AlertStatus::Sent, Action::SmsUser),
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
            Some(next) => cursor = Some(next),
            None => return items,
        }
    }
    panic!("a listing that never ends");
}

/// Stored events as operators browse them: newest first, by user, session and kind, in pages.
pub async fn event_listing(store: &dyn EventStore, browse: &dyn Browse, base: Millis) {
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
    let filter = |user, session, kind| EventFilter {
        user,
        session,
        kind,
        from: base,
        to: at(base, 10),
    };
    let list = |f: EventFilter| async move {
        all_pages(2, |cursor| {
            let f = f.clone();
            async move { browse.events(&f, 2, cursor.as_deref()).await }
        })
        .await
    };
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
/// every item exactly once, never an older one before a newer one.
pub async fn long_event_listing(store: &dyn EventStore, browse: &dyn Browse, base: Millis) {
    const DAY: u64 = 86_400_000;
    let mut stored = Vec::new();
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
        let times: Vec<Millis> = listed.iter().map(|e| e.received_at).collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest first in pages of {limit}: {times:?}"
        );
        let mut got: Vec<(Millis, String)> = listed
            .iter()
            .map(|e| (e.received_at, e.id.as_str().to_owned()))
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

/// Window buckets: members recorded once however often, read back exactly (amounts included),
/// the window ending at an instant read from at most its two buckets, overflow past capacity.
pub async fn window_store(windows: &dyn WindowStore, base: Millis) {
    let rule = rule("burst");
    let key = WindowKey {
        rule: rule.clone(),
        definition: 7,
        user: UserId(5),
        bucket_ms: 300_000,
    };
    let start = Millis(base.0 / 300_000 * 300_000);
    let member = |n: u32, at: Millis, amount: f64| WindowMember {
        id: id(&format!("wm-{n}")),
        received_at: at,
        amount,
    };
    let early = member(1, Millis(start.0 + 10), 0.1);
    let late = member(2, Millis(start.0 + 299_999), 1e300);
    let next = member(3, Millis(start.0 + 300_000), -2.5);
    for m in [&early, &late, &next, &early, &late] {
        windows.record(&key, m).await.expect("recorded");
    }
    let key = &key;
    let read = |at: Millis| async move {
        match windows.window(key, at).await.expect("read") {
            WindowRead::Members(mut members) => {
                members.sort_by_key(|m| m.id.as_str().to_owned());
                Some(members)
            }
            WindowRead::Overflowed => None,
        }
    };
    assert_eq!(
        read(Millis(start.0 + 299_999)).await,
        Some(vec![early.clone(), late.clone()]),
        "the first bucket, each member once, amounts exact"
    );
    assert_eq!(
        read(Millis(start.0 + 300_000)).await,
        Some(vec![early.clone(), late.clone(), next.clone()]),
        "a window ending in the second bucket reads both"
    );
    assert_eq!(
        read(Millis(start.0 + 600_010)).await,
        Some(vec![next.clone()]),
        "a window past the first bucket leaves it alone"
    );
    let other = WindowKey {
        definition: 8,
        ..key.clone()
    };
    assert_eq!(
        windows.window(&other, late.received_at).await,
        Ok(WindowRead::Members(Vec::new())),
        "another definition of the rule has its own buckets"
    );
    let busy = WindowKey {
        user: UserId(6),
        ..key.clone()
    };
    for n in 0..MAX_BUCKET_MEMBERS as u32 {
        windows
            .record(&busy, &member(100 + n, Millis(start.0 + u64::from(n)), 1.0))
            .await
            .expect("recorded");
    }
    let full_at = Millis(start.0 + 1_000);
    windows
        .record(&busy, &member(100, Millis(start.0), 1.0))
        .await
        .expect("a repeat in a full bucket");
    assert!(
        matches!(windows.window(&busy, full_at).await, Ok(WindowRead::Members(m)) if m.len() == MAX_BUCKET_MEMBERS),
        "a full bucket still reads while no member was refused"
    );
    windows
        .record(&busy, &member(9_999, full_at, 1.0))
        .await
        .expect("recorded as overflow");
    assert_eq!(
        windows.window(&busy, full_at).await,
        Ok(WindowRead::Overflowed)
    );
}

/// The dashboard's per-minute tally: counts add up, minutes outside the span are left out.
pub async fn activity_tally(tally: &dyn ActivityTally, base: Millis) {
    let minute = |m: u64| Millis((base.0 / 60_000 + m) * 60_000);
    let mut batch = MinuteCounts::default();
    batch.event(minute(0));
    batch.event(Millis(minute(0).0 + 59_999));
    batch.alert(minute(0));
    batch.event(minute(61));
    tally.add(&batch).await.expect("added");
    let mut again = MinuteCounts::default();
    again.event(minute(0));
    again.alert(minute(2));
    tally.add(&again).await.expect("added");
    tally
        .add(&MinuteCounts::default())
        .await
        .expect("nothing to add");
    let counts = tally.counts(minute(0), minute(62)).await.expect("read");
    let first = MinuteCounts::minute_of(minute(0));
    assert_eq!(
        counts.get(first),
        Tally {
            events: 3,
            alerts: 1
        }
    );
    assert_eq!(counts.get(first + 1), Tally::default());
    assert_eq!(
        counts.get(first + 2),
        Tally {
            events: 0,
            alerts: 1
        }
    );
    assert_eq!(
        counts.get(first + 61),
        Tally {
            events: 1,
            alerts: 0
        },
        "the next hour too"
    );
    let narrow = tally.counts(minute(1), minute(61)).await.expect("read");
    assert_eq!(
        narrow.minutes().collect::<Vec<_>>(),
        [(
            first + 2,
            Tally {
                events: 0,
                alerts: 1
            }
        )],
        "only the minutes of [from, to)"
    );
    assert!(
        tally
            .counts(minute(5), minute(5))
            .await
            .expect("read")
            .is_empty()
    );
}

/// Versioned documents: seeding once, optimistic writes, deletion, history.
pub async fn document_store(store: &dyn DocumentStore, base: Millis) {
    let doc = |raw: &str| DocumentId::parse(raw).expect("a document id");
    assert_eq!(store.current().await, Ok(None), "an unseeded store");
    let seed = [
        (doc("zeta"), json!({"id": "zeta", "n": 1})),
        (doc("alpha"), json!({"id": "alpha", "n": 1})),
    ];
    assert_eq!(store.seed(&seed, "seeder", base).await, Ok(true));
    assert_eq!(
        store.seed(&seed, "seeder", base).await,
        Ok(false),
        "seeded once"
    );
    let current = store.current().await.expect("read").expect("seeded");
    let listed: Vec<(&str, u64)> = current.iter().map(|r| (r.id.as_str(), r.version)).collect();
    assert_eq!(listed, [("alpha", 1), ("zeta", 1)], "sorted by id");
    assert_eq!(current[0].updated_by, "seeder");

    let v2 = json!({"id": "alpha", "n": 2});
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                1,
                Some(&v2),
                DocumentAction::Updated,
                "ann",
                at(base, 1)
            )
            .await,
        Ok(2)
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                1,
                Some(&v2),
                DocumentAction::Updated,
                "bob",
                at(base, 2)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: Some(2) }),
        "a writer that saw version 1"
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                0,
                Some(&v2),
                DocumentAction::Created,
                "bob",
                at(base, 2)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: Some(2) }),
        "creating what exists"
    );
    let record = store
        .get(&doc("alpha"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (record.version, &record.document, record.updated_by.as_str()),
        (2, &v2, "ann")
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                2,
                None,
                DocumentAction::Deleted,
                "ann",
                at(base, 3)
            )
            .await,
        Ok(3)
    );
    assert_eq!(store.get(&doc("alpha")).await, Ok(None));
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                3,
                Some(&v2),
                DocumentAction::Updated,
                "ann",
                at(base, 4)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: None }),
        "updating a deleted document"
    );
    assert_eq!(
        store
            .write(
                &doc("alpha"),
                0,
                Some(&v2),
                DocumentAction::Created,
                "cy",
                at(base, 5)
            )
            .await,
        Ok(4),
        "re-created, its history continuing"
    );
    assert_eq!(
        store
            .write(
                &doc("new-one"),
                5,
                Some(&v2),
                DocumentAction::Updated,
                "cy",
                at(base, 5)
            )
            .await,
        Err(DocumentWriteError::Conflict { current: None })
    );
    let history = store.history(&doc("alpha")).await.expect("history");
    let actions: Vec<(u64, DocumentAction, bool)> = history
        .iter()
        .map(|r| (r.version, r.action, r.document.is_some()))
        .collect();
    assert_eq!(
        actions,
        [
            (4, DocumentAction::Created, true),
            (3, DocumentAction::Deleted, false),
            (2, DocumentAction::Updated, true),
            (1, DocumentAction::Seeded, true),
        ],
        "newest first"
    );
    assert_eq!(store.history(&doc("never")).await, Ok(vec![]));
    let current = store.current().await.expect("read").expect("seeded");
    assert_eq!(current.len(), 2);
}

fn error_entry(user: u64, event: &str, received_at: Millis, kind: &str) -> ErrorEntry {
    let violations = vec![Violation {
        path: "$.properties.amount".into(),
        kind: kind.into(),
        message: "broken".into(),
    }];
    ErrorEntry {
        user: UserId(user),
        id: id(event),
        received_at,
        event_type: "activity bill/paid".into(),
        raw: "{}".into(),
        violation_kinds: vec![kind.into()],
        violations,
        schema: Some(SchemaRef {
            id: "bill-paid".into(),
            version: 1,
        }),
        status: ErrorStatus::Open,
        logged_at: received_at,
        claimed_at: None,
        replayed_at: None,
        replayed_by: None,
    }
}

/// The error log: entries refreshed while open, replays claimed once, stale claims taken over.
pub async fn error_log(log: &dyn ErrorLog, base: Millis) {
    let entry = error_entry(1, "x1", at(base, 1), "invalid_type");
    log.record(&entry).await.expect("recorded");
    assert_eq!(log.get(UserId(1), &id("x1")).await, Ok(Some(entry.clone())));
    let refreshed = ErrorEntry {
        logged_at: at(base, 9),
        ..entry.clone()
    };
    log.record(&refreshed).await.expect("refreshed");
    assert_eq!(
        log.get(UserId(1), &id("x1")).await,
        Ok(Some(refreshed.clone())),
        "an open entry is refreshed"
    );

    let now = at(base, 100_000);
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), now, at(base, 40_000))
            .await,
        Ok(true)
    );
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), now, at(base, 40_000))
            .await,
        Ok(false),
        "claimed by a live replayer"
    );
    log.record(&entry).await.expect("a late stream retry");
    let replaying = log
        .get(UserId(1), &id("x1"))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (replaying.status, replaying.claimed_at),
        (ErrorStatus::Replaying, Some(now)),
        "recording leaves a claimed entry alone"
    );
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), at(base, 200_000), at(base, 100_001))
            .await,
        Ok(true),
        "a stale claim is taken over"
    );
    let still = vec![Violation {
        path: "$.properties.type".into(),
        kind: "missing_field".into(),
        message: "required".into(),
    }];
    log.reopen(UserId(1), &id("x1"), &still, None)
        .await
        .expect("reopened");
    let reopened = log
        .get(UserId(1), &id("x1"))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(reopened.status, ErrorStatus::Open);
    assert_eq!(reopened.violations, still);
    assert_eq!(reopened.violation_kinds, vec!["missing_field".to_owned()]);
    assert_eq!((reopened.schema, reopened.claimed_at), (None, None));
    log.reopen(UserId(1), &id("x1"), &[], None)
        .await
        .expect("reopening an open entry is a no-op");
    assert_eq!(
        log.get(UserId(1), &id("x1"))
            .await
            .expect("read")
            .map(|e| e.violations),
        Some(still)
    );

    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), at(base, 300_000), base)
            .await,
        Ok(true)
    );
    log.mark_replayed(UserId(1), &id("x1"), "ann", at(base, 300_001))
        .await
        .expect("marked");
    let done = log
        .get(UserId(1), &id("x1"))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(
        (
            done.status,
            done.replayed_by.as_deref(),
            done.replayed_at,
            done.claimed_at
        ),
        (
            ErrorStatus::Replayed,
            Some("ann"),
            Some(at(base, 300_001)),
            None
        )
    );
    log.record(&entry).await.expect("a late stream retry");
    assert_eq!(
        log.get(UserId(1), &id("x1"))
            .await
            .expect("read")
            .map(|e| e.status),
        Some(ErrorStatus::Replayed),
        "a replayed entry is never reopened by a retry"
    );
    assert_eq!(
        log.claim_replay(UserId(1), &id("x1"), at(base, 900_000), at(base, 900_000))
            .await,
        Ok(false)
    );
    assert_eq!(
        log.claim_replay(UserId(7), &id("none"), now, now).await,
        Ok(false)
    );

    for (i, kind) in ["unknown_field", "invalid_type", "unknown_field"]
        .iter()
        .enumerate()
    {
        let n = u64::try_from(i).unwrap_or(0);
        log.record(&error_entry(2, &format!("y{i}"), at(base, 10 + n), kind))
            .await
            .expect("recorded");
    }
    let filter = |violation: Option<&str>, status| ErrorFilter {
        event_type: None,
        violation: violation.map(str::to_owned),
        status,
        from: base,
        to: at(base, 100),
    };
    let list = |f: ErrorFilter| async move {
        all_pages(2, |cursor| {
            let f = f.clone();
            async move { log.list(&f, 2, cursor.as_deref()).await }
        })
        .await
    };
    let keys = |entries: Vec<ErrorEntry>| -> Vec<String> {
        entries.iter().map(|e| e.id.as_str().to_owned()).collect()
    };
    assert_eq!(
        keys(list(filter(None, None)).await),
        ["y2", "y1", "y0", "x1"],
        "newest first, across pages"
    );
    assert_eq!(
        keys(list(filter(Some("unknown_field"), None)).await),
        ["y2", "y0"]
    );
    assert_eq!(
        keys(list(filter(None, Some(ErrorStatus::Replayed))).await),
        ["x1"]
    );
    let of_type = ErrorFilter {
        event_type: Some("web page interaction/pageview".into()),
        ..filter(None, None)
    };
    assert_eq!(keys(list(of_type).await), Vec::<String>::new());
}
