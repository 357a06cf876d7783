//! The stream consumer, the absence checker, alert delivery and replays on the memory ports: the
//! seed rules end to end in milliseconds, with the clock under the test's control.

use std::sync::Arc;

use crate::common::{World, feedback, paid, paid_without_type};
use cuba_core::absence::AbsenceCheck;
use cuba_core::absence::scheduling::AbsenceOutcome;
use cuba_core::delivery::alert::{Alert, AlertId, AlertStatus, Claim, Delivery, Lease};
use cuba_core::delivery::alerting::Dispatched;
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::evaluation::ports::RuleState;
use cuba_core::model::clock::Clock;
use cuba_core::model::document::DocumentAction;
use cuba_core::model::domain::{
    EventId, IdOrigin, PhoneNumber, ReceivedEvent, StoredEvent, UserId,
};
use cuba_core::model::ports::{DocumentStore, EventStore};
use cuba_core::pipeline::{Processed, ReplayOutcome};
use cuba_core::rules::{Action, RuleId, RuleSet, Severity};
use cuba_core::schemas::SchemaSet;
use cuba_core::schemas::error_log::ErrorStatus;
use cuba_core::schemas::ports::ErrorLog;
use serde_json::json;

fn rule(id: &str) -> RuleId {
    RuleId::parse(id).expect("a rule id")
}

#[tokio::test]
async fn a_first_payment_sends_one_sms_however_often_it_is_delivered() {
    let w = World::new();
    let phone = w.phone(1).await;
    let received = w.ingest(1, "p1", paid(3000)).await;
    for _ in 0..3 {
        let processed = w.pipeline.process(&received).await.expect("processed");
        assert!(matches!(processed, Processed::Valid { .. }));
    }
    let sms = w.ports.notifier.sms();
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0].phone, phone);
    assert_eq!(
        sms[0].text,
        "Thanks for your first bill payment on Cube: 3000 for electricity."
    );
    w.at_seconds(10);
    w.deliver(1, "p2", paid(10)).await;
    assert_eq!(w.ports.notifier.sms().len(), 1, "only the first payment");
    assert_eq!(
        w.ports
            .rule_state
            .first_holder(&rule("first-bill-payment"), UserId(1))
            .await,
        Ok(Some(EventId::parse("p1").expect("an id")))
    );
}

#[tokio::test]
async fn a_burst_alerts_once_per_cooldown() {
    let w = World::new();
    w.phone(2).await;
    for i in 0..4 {
        w.at_seconds(i * 10);
        w.deliver(2, &format!("b{i}"), paid(5000)).await;
    }
    let bursts = |w: &World| {
        w.sms_texts()
            .into_iter()
            .filter(|t| t.starts_with("Cube alert"))
            .count()
    };
    assert_eq!(bursts(&w), 0, "four payments are not a burst");
    w.at_seconds(40);
    w.deliver(2, "b4", paid(5000)).await;
    assert_eq!(bursts(&w), 1);
    assert!(
        w.sms_texts().contains(
            &"Cube alert: 5 bill payments totalling 25000 in the last 5 minutes. Not you? Call us."
                .to_owned()
        )
    );
    w.at_seconds(50);
    w.deliver(2, "b5", paid(5000)).await;
    assert_eq!(bursts(&w), 1, "cooling down");
    // The cooldown (300 s from b4 at 40 s) has ended at 340 s; five more payments alert again.
    for i in 0..5 {
        w.at_seconds(340 + i);
        w.deliver(2, &format!("c{i}"), paid(5000)).await;
    }
    assert_eq!(bursts(&w), 2);
}

#[tokio::test]
async fn a_payment_that_reaches_the_stream_late_completes_the_burst_it_belongs_to() {
    let w = World::new();
    w.phone(3).await;
    // Five payments of 5000 within a minute; the fourth reaches the stream after the fifth (two
    // requests of the user racing, stored in the other order).
    let mut stored = Vec::new();
    for i in 0..5u64 {
        w.at_seconds(i * 10);
        stored.push(w.ingest(3, &format!("r{i}"), paid(5000)).await);
    }
    for i in [0, 1, 2, 4, 3] {
        w.pipeline.process(&stored[i]).await.expect("processed");
    }
    let bursts: Vec<String> = w
        .ledger()
        .iter()
        .filter(|a| a.rule_id.as_str() == "bill-payment-burst")
        .map(|a| a.alert_id.as_str().to_owned())
        .collect();
    assert_eq!(
        bursts,
        ["bill-payment-burst#3#r4"],
        "the fifth payment's window counts the fourth once it arrives"
    );
    assert!(
        w.sms_texts().contains(
            &"Cube alert: 5 bill payments totalling 25000 in the last 5 minutes. Not you? Call us."
                .to_owned()
        )
    );
}

#[tokio::test]
async fn an_absence_check_fires_unless_feedback_arrives_in_time() {
    let w = World::new();
    w.deliver(3, "p1", paid(100)).await;
    w.deliver(4, "p2", paid(100)).await;
    let queued = w.ports.queue.take();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].delay_seconds, 900);
    assert_eq!(
        queued[0].check.due_at,
        crate::common::START.plus_seconds(900)
    );
    w.at_seconds(600);
    w.deliver(4, "f1", feedback(5)).await;

    // Delivered early (SQS may), a check goes back on the queue for the rest of its delay.
    let early = w.checker.run(&queued[0].check).await;
    assert_eq!(early, Ok(AbsenceOutcome::Requeued { delay_seconds: 300 }));
    assert_eq!(w.ports.queue.take().len(), 1);

    w.at_seconds(900);
    let outcomes: Vec<_> = {
        let mut out = Vec::new();
        for q in &queued {
            out.push(w.checker.run(&q.check).await);
        }
        out
    };
    assert!(matches!(
        outcomes[0],
        Ok(AbsenceOutcome::Fired(Dispatched::Delivered(_), _))
    ));
    assert_eq!(outcomes[1], Ok(AbsenceOutcome::Satisfied));
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].user, UserId(3));
    assert_eq!(
        alerts[0].text,
        "we did not get any feedback for user 3 after bill payment p1"
    );
    // A redelivered check finds the alert settled.
    assert_eq!(
        w.checker.run(&queued[0].check).await,
        Ok(AbsenceOutcome::Fired(
            Dispatched::AlreadySettled,
            Action::NotifyOperator {
                severity: Severity::Warning,
                grouping: None,
            }
        ))
    );
    assert_eq!(w.ports.notifier.operator_alerts().len(), 1);
}

#[tokio::test]
async fn an_absence_cooldown_makes_one_alert_of_a_run_of_unanswered_payments() {
    let mut document: serde_json::Value =
        serde_json::from_str(cuba_core::rules::DEFAULT_RULES_JSON).expect("the seed rules");
    document["rules"][2]["condition"]["cooldown_seconds"] = json!(3_600);
    // Published one by one, so each alert is a message.
    document["rules"][2]["action"] = json!({"type": "notify_operator", "severity": "warning"});
    let w = World::with_rules(RuleSet::from_json(&document).expect("valid rules"));
    for i in 0..5 {
        w.at_seconds(i * 60);
        w.deliver(3, &format!("p{i}"), paid(100)).await;
    }
    w.at_seconds(5_000);
    let queued = w.ports.queue.take();
    let mut outcomes = Vec::new();
    for q in &queued {
        outcomes.push(w.checker.run(&q.check).await.expect("a check runs"));
    }
    let fired = outcomes
        .iter()
        .filter(|o| matches!(o, AbsenceOutcome::Fired(..)))
        .count();
    let quiet = outcomes
        .iter()
        .filter(|o| **o == AbsenceOutcome::CoolingDown)
        .count();
    assert_eq!((fired, quiet), (1, 4), "{outcomes:?}");
    assert_eq!(w.ports.notifier.operator_alerts().len(), 1);
    // A redelivery of the check that fired finds its alert settled; the others stay quiet.
    assert_eq!(
        w.checker.run(&queued[0].check).await,
        Ok(AbsenceOutcome::Fired(
            Dispatched::AlreadySettled,
            Action::NotifyOperator {
                severity: Severity::Warning,
                grouping: None,
            }
        ))
    );
    assert_eq!(
        w.checker.run(&queued[1].check).await,
        Ok(AbsenceOutcome::CoolingDown)
    );
    assert_eq!(w.ports.notifier.operator_alerts().len(), 1);
}

#[tokio::test]
async fn a_check_for_a_withdrawn_rule_or_a_missing_trigger_does_nothing() {
    let w = World::new();
    let check = AbsenceCheck {
        trace: None,
        rule_id: rule("bill-paid-no-feedback"),
        user: UserId(5),
        event_id: EventId::parse("never-stored").expect("an id"),
        received_at: crate::common::START,
        due_at: crate::common::START,
    };
    assert_eq!(
        w.checker.run(&check).await,
        Ok(AbsenceOutcome::TriggerMissing)
    );
    let gone = AbsenceCheck {
        trace: None,
        rule_id: rule("deleted-rule"),
        ..check
    };
    assert_eq!(
        w.checker.run(&gone).await,
        Ok(AbsenceOutcome::RuleWithdrawn)
    );
    assert!(w.ports.notifier.operator_alerts().is_empty());
}

#[tokio::test]
async fn an_sms_to_a_user_without_a_phone_is_settled_as_undeliverable() {
    let w = World::new();
    w.deliver(6, "p1", paid(100)).await;
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].status, AlertStatus::Undeliverable);
    assert_eq!(
        ledger[0].reason.as_deref(),
        Some("user 6 has no phone number on file")
    );
    assert!(w.ports.notifier.sms().is_empty());
}

#[tokio::test]
async fn an_invalid_event_is_logged_flagged_and_never_counted() {
    let w = World::new();
    w.phone(7).await;
    let processed = w.deliver(7, "bad", paid_without_type(100)).await;
    let Processed::Invalid(violations) = processed else {
        panic!("the schema requires `type`");
    };
    assert_eq!(violations[0].kind, "required");
    assert!(w.ports.notifier.sms().is_empty(), "no rule saw it");
    assert!(w.queued().is_empty(), "no absence check for it");
    let entry = w
        .ports
        .errors
        .get(UserId(7), &EventId::parse("bad").expect("an id"))
        .await
        .expect("read")
        .expect("logged");
    assert_eq!(entry.status, ErrorStatus::Open);
    assert_eq!(entry.event_type, "activity bill/paid");
    let window = w
        .ports
        .events
        .received_between(UserId(7), crate::common::START, crate::common::START)
        .await
        .expect("read");
    assert!(window.is_empty(), "flagged out of windows");
    // A valid payment afterwards is the user's first.
    w.deliver(7, "good", paid(100)).await;
    assert_eq!(w.ports.notifier.sms().len(), 1);
}

#[tokio::test]
async fn an_event_valid_at_intake_but_not_when_processed_is_logged_as_stored() {
    let w = World::new();
    // Ingest found it valid (under the schemas it had then) and kept only the parsed fields;
    // the schema in force when the stream delivers it requires `type`.
    let id = EventId::parse("late").expect("an id");
    let received = ReceivedEvent {
        trace: None,
        raw: String::new(),
        origin: IdOrigin::Client,
        event: StoredEvent {
            user: UserId(8),
            id: id.clone(),
            received_at: w.clock.now(),
            body: paid_without_type(100),
        },
    };
    w.ports.events.insert(&received).await.expect("stored");
    let processed = w.pipeline.process(&received).await.expect("processed");
    assert!(matches!(processed, Processed::Invalid(_)), "{processed:?}");
    let entry = w
        .ports
        .errors
        .get(UserId(8), &id)
        .await
        .expect("read")
        .expect("logged");
    let shown: serde_json::Value = serde_json::from_str(&entry.raw).expect("JSON");
    assert_eq!(
        (&shown["id"], &shown["noun"], &shown["properties"]["amount"]),
        (&json!("late"), &json!("bill"), &json!(100)),
        "the event as stored: {shown}"
    );
}

#[tokio::test]
async fn a_replay_after_a_schema_fix_processes_the_event_exactly_once() {
    let w = World::new();
    w.phone(8).await;
    w.deliver(8, "bad", paid_without_type(100)).await;
    let id = EventId::parse("bad").expect("an id");
    assert!(matches!(
        w.pipeline.replay(UserId(8), &id, "ann").await,
        Ok(ReplayOutcome::StillInvalid { .. })
    ));
    // The operator seeds the registry and relaxes the bill schema.
    let documents = cuba_core::schemas::documents_of_file(cuba_core::schemas::DEFAULT_SCHEMAS)
        .expect("the shipped schemas");
    let seed: Vec<_> = documents
        .iter()
        .map(|d| {
            (
                RuleId::parse(d["id"].as_str().unwrap_or_default()).expect("an id"),
                d.clone(),
            )
        })
        .collect();
    w.ports
        .schemas
        .seed(&seed, "test", w.clock.now())
        .await
        .expect("seeded");
    let mut relaxed = seed
        .iter()
        .find(|(id, _)| id.as_str() == "mobile-bill-paid")
        .map(|(_, d)| d.clone())
        .expect("the bill schema");
    relaxed["schema"]["required"] = json!(["amount"]);
    w.ports
        .schemas
        .write(
            &rule("mobile-bill-paid"),
            1,
            Some(&relaxed),
            DocumentAction::Updated,
            "ann",
            w.clock.now(),
        )
        .await
        .expect("saved");
    assert!(matches!(
        w.pipeline.replay(UserId(8), &id, "ann").await,
        Ok(ReplayOutcome::Replayed { fired: 1, .. })
    ));
    assert_eq!(
        w.pipeline.replay(UserId(8), &id, "bob").await,
        Ok(ReplayOutcome::AlreadyReplayed)
    );
    assert_eq!(w.ports.notifier.sms().len(), 1);
    assert_eq!(w.queued().len(), 1, "its absence check, once");
    let entry = w.ports.errors.get(UserId(8), &id).await.expect("read");
    assert_eq!(
        entry.map(|e| (e.status, e.replayed_by)),
        Some((ErrorStatus::Replayed, Some("ann".to_owned())))
    );
    assert_eq!(
        w.pipeline
            .replay(UserId(8), &EventId::parse("nope").expect("an id"), "ann")
            .await,
        Ok(ReplayOutcome::NotFound)
    );
}

/// Dispatches each alert in turn, each to a settled delivery: their statuses.
async fn settled(
    dispatcher: &cuba_core::delivery::alerting::AlertDispatcher,
    alerts: impl IntoIterator<Item = Alert>,
) -> Vec<AlertStatus> {
    let mut statuses = Vec::new();
    for alert in alerts {
        match dispatcher.dispatch(&alert).await {
            Ok(Dispatched::Delivered(delivery)) => statuses.push(delivery.status()),
            other => panic!("{other:?}"),
        }
    }
    statuses
}

fn sms_alert(w: &World) -> Alert {
    Alert {
        trace: None,
        id: AlertId::first(&rule("first-bill-payment"), UserId(9)),
        rule_id: rule("first-bill-payment"),
        user: UserId(9),
        event_ids: vec![EventId::parse("p1").expect("an id")],
        action: Action::SMS_USER,
        text: "hello".into(),
        translations: Default::default(),
        fired_at: w.clock.now(),
    }
}

#[tokio::test]
async fn a_dead_workers_claim_is_left_to_the_sweeper_which_sends_once() {
    let w = World::new();
    w.phone(9).await;
    let alert = sms_alert(&w);
    let dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    // A worker claims the alert and dies before sending.
    let now = w.clock.now();
    let lease = Lease::new(now.plus_seconds(30));
    assert_eq!(
        w.ports.ledger.claim(&alert, now, &lease).await,
        Ok(Claim::Claimed {
            lease_until: lease.until
        })
    );
    // While the lease holds, a retry leaves the alert to its holder: the record is done.
    assert_eq!(dispatcher.dispatch(&alert).await, Ok(Dispatched::InFlight));
    assert_eq!(w.sweep().await.stuck, 0, "not stuck while the lease holds");
    assert!(w.ports.notifier.sms().is_empty());
    // Once it has lapsed, the sweeper delivers it, once.
    w.clock.advance_seconds(31);
    let report = w.sweep().await;
    assert_eq!((report.stuck, report.settled, report.remaining), (1, 1, 0));
    assert_eq!(
        dispatcher.dispatch(&alert).await,
        Ok(Dispatched::AlreadySettled)
    );
    assert_eq!(w.ports.notifier.sms().len(), 1);
    assert!(w.pending().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_publish_the_ledger_cannot_record_is_never_repeated() {
    let w = World::new();
    w.phone(9).await;
    let alert = sms_alert(&w);
    let dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    // claim, profile, two quotas, budget, mark, send: then every settle attempt fails.
    let first_settle = w.ports.faults.calls() + 8;
    for n in 0..u64::from(cuba_core::delivery::alerting::SETTLE_ATTEMPTS) {
        w.ports
            .faults
            .fail_call(first_settle + n, cuba_memory::Fault::Before);
    }
    assert!(dispatcher.dispatch(&alert).await.is_err());
    let log = w.ports.faults.log();
    assert_eq!(
        &log[log.len() - 4..],
        [
            "notifier.send_sms",
            "ledger.settle",
            "ledger.settle",
            "ledger.settle"
        ]
    );
    assert_eq!(w.ports.notifier.sms().len(), 1);
    assert_eq!(w.pending()[0].status, AlertStatus::Sending, "not released");
    // The source retries: the alert is being sent, so nothing goes out again.
    assert_eq!(dispatcher.dispatch(&alert).await, Ok(Dispatched::InFlight));
    w.clock.advance_seconds(w.lease_seconds());
    assert_eq!(w.sweep().await.unconfirmed, 1);
    assert_eq!(w.ports.notifier.sms().len(), 1, "published once");
    assert_eq!(w.ledger()[0].status, AlertStatus::Unconfirmed);
}

#[tokio::test]
async fn a_worker_that_died_while_publishing_is_never_repeated() {
    let w = World::new();
    w.phone(9).await;
    let alert = sms_alert(&w);
    let now = w.clock.now();
    let lease = Lease::new(now.plus_seconds(30));
    w.ports
        .ledger
        .claim(&alert, now, &lease)
        .await
        .expect("claimed");
    let sending = now.plus_seconds(40);
    assert_eq!(
        w.ports
            .ledger
            .mark_sending(&alert.id, &lease.holder, sending)
            .await,
        Ok(true)
    );
    w.clock.advance_seconds(41);
    let report = w.sweep().await;
    assert_eq!((report.stuck, report.unconfirmed), (1, 1));
    assert!(w.ports.notifier.sms().is_empty(), "not published again");
    let entry = &w.ledger()[0];
    assert_eq!(entry.status, AlertStatus::Unconfirmed);
    assert!(
        entry
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("outcome was never recorded")
    );
}

#[tokio::test]
async fn a_send_the_provider_refused_is_not_retried_but_one_it_did_not_take_is() {
    let w = World::new();
    let phone = w.phone(9).await;
    let alert = sms_alert(&w);
    let dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    // Throttled: released for the retry.
    w.ports
        .faults
        .fail_next("notifier.send_sms", cuba_memory::Fault::Before);
    assert!(dispatcher.dispatch(&alert).await.is_err());
    let pending = w.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, Some(1));
    assert_eq!(pending[0].status, AlertStatus::Pending);
    assert!(pending[0].last_error.is_some());
    assert!(matches!(
        dispatcher.dispatch(&alert).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
    assert_eq!(w.ports.notifier.sms().len(), 1);

    // Refused for good (an invalid or opted-out number): undeliverable with SNS's reason.
    w.ports
        .notifier
        .refuse(&phone, "InvalidParameter: not a mobile number");
    let other = Alert {
        trace: None,
        id: AlertId::for_trigger(&rule("r"), UserId(9), &EventId::parse("p2").expect("an id")),
        ..sms_alert(&w)
    };
    assert_eq!(
        dispatcher.dispatch(&other).await,
        Ok(Dispatched::Delivered(Delivery::Undeliverable {
            reason: "InvalidParameter: not a mobile number".into()
        }))
    );
    assert!(w.pending().is_empty());
}

#[tokio::test]
async fn sms_go_only_to_verified_numbers_within_the_caps() {
    let w = World::new();
    let phone = PhoneNumber::parse("+15555550999").expect("a phone");
    w.profile(9, &phone, false).await;
    let dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    let alert_n = |n: u64| Alert {
        trace: None,
        id: AlertId::for_trigger(
            &rule("r"),
            UserId(9),
            &EventId::parse(&format!("p{n}")).expect("an id"),
        ),
        ..sms_alert(&w)
    };
    let outcome = dispatcher.dispatch(&alert_n(0)).await;
    assert!(
        matches!(&outcome, Ok(Dispatched::Delivered(Delivery::Undeliverable { reason })) if reason.contains("not verified")),
        "{outcome:?}"
    );
    assert!(
        w.ports.notifier.sms().is_empty(),
        "an unverified number gets nothing"
    );

    w.profile(9, &phone, true).await;
    let per_user = dispatcher.sms.per_user;
    for n in 1..=u64::from(per_user) {
        assert!(matches!(
            dispatcher.dispatch(&alert_n(n)).await,
            Ok(Dispatched::Delivered(Delivery::Sent { .. }))
        ));
    }
    let over = dispatcher.dispatch(&alert_n(99)).await;
    assert!(
        matches!(&over, Ok(Dispatched::Delivered(Delivery::Suppressed { reason })) if reason.contains("this user already had 10 SMS")),
        "{over:?}"
    );
    assert_eq!(w.ports.notifier.sms().len(), per_user as usize);
    let suppressed: Vec<_> = w
        .ledger()
        .into_iter()
        .filter(|e| e.status == AlertStatus::Suppressed)
        .collect();
    assert_eq!(suppressed.len(), 1, "recorded, with its reason");

    // Another user naming the same number shares its per-phone cap.
    w.profile(10, &phone, true).await;
    let theirs = Alert {
        trace: None,
        id: AlertId::for_trigger(
            &rule("r"),
            UserId(10),
            &EventId::parse("q1").expect("an id"),
        ),
        user: UserId(10),
        ..sms_alert(&w)
    };
    assert!(matches!(
        dispatcher.dispatch(&theirs).await,
        Ok(Dispatched::Delivered(Delivery::Suppressed { reason })) if reason.contains("this phone number")
    ));
    // The next day the user's window has moved on.
    w.clock.advance_seconds(24 * 3600);
    assert!(matches!(
        dispatcher.dispatch(&alert_n(100)).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
}

#[tokio::test]
async fn the_daily_budget_suppresses_sms_and_tells_the_operators_once() {
    let w = World::new();
    let mut dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    dispatcher.sms.daily_budget = 2;
    for user in 1..=4 {
        w.phone(user).await;
    }
    let alert_of = |user: u64| Alert {
        trace: None,
        id: AlertId::for_trigger(
            &rule("r"),
            UserId(user),
            &EventId::parse("p1").expect("an id"),
        ),
        user: UserId(user),
        ..sms_alert(&w)
    };
    let statuses = settled(&dispatcher, (1..=4).map(alert_of)).await;
    assert_eq!(
        statuses,
        [
            AlertStatus::Sent,
            AlertStatus::Sent,
            AlertStatus::Suppressed,
            AlertStatus::Suppressed
        ]
    );
    assert_eq!(w.ports.notifier.sms().len(), 2);
    let notices = w.ports.notifier.operator_alerts();
    assert_eq!(
        notices.len(),
        1,
        "one operator alert for the day: {notices:?}"
    );
    assert_eq!(notices[0].rule_id.as_str(), "sms-budget");
    assert!(notices[0].text.contains("daily budget of 2 SMS"));
}

#[tokio::test]
async fn an_sms_that_is_not_sent_is_charged_nowhere() {
    let w = World::new();
    let mut dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    dispatcher.sms.daily_budget = 2;
    dispatcher.sms.per_phone = 1;
    let alert_of = |user: u64, event: &str| Alert {
        trace: None,
        id: AlertId::for_trigger(
            &rule("r"),
            UserId(user),
            &EventId::parse(event).expect("an id"),
        ),
        user: UserId(user),
        ..sms_alert(&w)
    };
    let refused = w.phone(1).await;
    w.ports
        .notifier
        .refuse(&refused, "InvalidParameter: not a mobile number");
    assert!(matches!(
        dispatcher.dispatch(&alert_of(1, "p1")).await,
        Ok(Dispatched::Delivered(Delivery::Undeliverable { .. }))
    ));
    // Throttled once, then sent: counted once.
    w.phone(2).await;
    w.ports
        .faults
        .fail_next("notifier.send_sms", cuba_memory::Fault::Before);
    assert!(dispatcher.dispatch(&alert_of(2, "p1")).await.is_err());
    assert!(matches!(
        dispatcher.dispatch(&alert_of(2, "p1")).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
    // The budget of 2 still holds this one: neither the refused SMS nor the retry spent it.
    w.phone(3).await;
    assert!(matches!(
        dispatcher.dispatch(&alert_of(3, "p1")).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
    // And the refused number's quota (1 a day) is whole: once it takes SMS again, it gets one.
    w.ports.notifier.accept_again(&refused);
    dispatcher.sms.daily_budget = 3;
    assert!(matches!(
        dispatcher.dispatch(&alert_of(1, "p2")).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
    assert_eq!(w.ports.notifier.sms().len(), 3);
}

#[tokio::test]
async fn a_rule_over_its_operator_cap_is_recorded_not_published_and_told_once() {
    let w = World::new();
    let mut dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    dispatcher.operators.per_rule_per_hour = 2;
    let operator_alert = |rule_id: &str, user: u64| Alert {
        trace: None,
        id: AlertId::for_trigger(
            &rule(rule_id),
            UserId(user),
            &EventId::parse("p1").expect("an id"),
        ),
        rule_id: rule(rule_id),
        user: UserId(user),
        action: Action::NotifyOperator {
            severity: Severity::Warning,
            grouping: None,
        },
        ..sms_alert(&w)
    };
    let statuses = settled(
        &dispatcher,
        (1..=5).map(|user| operator_alert("noisy", user)),
    )
    .await;
    assert_eq!(
        statuses,
        [
            AlertStatus::Sent,
            AlertStatus::Sent,
            AlertStatus::Suppressed,
            AlertStatus::Suppressed,
            AlertStatus::Suppressed
        ]
    );
    let published = w.ports.notifier.operator_alerts();
    let notices: Vec<_> = published
        .iter()
        .filter(|a| a.rule_id.as_str() == "operator-cap")
        .collect();
    assert_eq!(notices.len(), 1, "told once: {published:?}");
    assert!(
        notices[0]
            .text
            .contains("Rule noisy published its cap of 2")
    );
    assert_eq!(published.len(), 3, "two alerts and the notice");
    assert!(
        w.ports.faults.count("operators.take") <= 3,
        "a capped rule is not counted again by this instance"
    );
    // Another rule is not held up; the next hour the noisy one publishes again.
    assert!(matches!(
        dispatcher.dispatch(&operator_alert("quiet", 1)).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
    w.clock.advance_seconds(3600);
    assert!(matches!(
        dispatcher.dispatch(&operator_alert("noisy", 6)).await,
        Ok(Dispatched::Delivered(Delivery::Sent { .. }))
    ));
}

#[tokio::test]
async fn long_client_text_is_cut_to_the_segment_limit() {
    let w = World::new();
    w.phone(9).await;
    let dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    let alert = Alert {
        trace: None,
        text: "x".repeat(1500),
        translations: Default::default(),
        ..sms_alert(&w)
    };
    dispatcher.dispatch(&alert).await.expect("sent");
    let sent = w.ports.notifier.sms();
    assert_eq!(sent.len(), 1);
    assert_eq!(cuba_core::delivery::sms::segments(&sent[0].text), 2);
    assert!(sent[0].text.ends_with("..."));
}

#[tokio::test]
async fn the_rules_in_force_come_from_the_store_once_seeded() {
    let w = World::new();
    let source = w.ports.rule_source(RuleSet::default());
    assert!(
        source.current().await.expect("read").all().is_empty(),
        "unseeded"
    );
    let defaults = RuleSet::default_rules().expect("the seed rules");
    let text = cuba_core::rules::DEFAULT_RULES_JSON;
    let document: serde_json::Value = serde_json::from_str(text).expect("JSON");
    let seed: Vec<_> = defaults
        .all()
        .iter()
        .map(|r| r.id.clone())
        .zip(document["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    w.ports
        .rules
        .seed(&seed, "test", w.clock.now())
        .await
        .expect("seeded");
    assert_eq!(source.current().await.expect("read").all().len(), 3);
    // A stored document that no longer parses is skipped, the others stay in force.
    w.ports
        .rules
        .write(
            &rule("broken"),
            0,
            Some(&json!({"id": "broken"})),
            DocumentAction::Created,
            "hand edit",
            w.clock.now(),
        )
        .await
        .expect("written behind the API's back");
    assert_eq!(source.current().await.expect("read").all().len(), 3);

    let schemas = w.ports.schema_source(SchemaSet::default());
    let documents = cuba_core::schemas::documents_of_file(cuba_core::schemas::DEFAULT_SCHEMAS)
        .expect("the shipped schemas");
    let mut seed: Vec<_> = documents
        .iter()
        .map(|d| {
            (
                RuleId::parse(d["id"].as_str().unwrap_or_default()).expect("an id"),
                d.clone(),
            )
        })
        .collect();
    seed[0].1["enabled"] = json!(false);
    w.ports
        .schemas
        .seed(&seed, "test", w.clock.now())
        .await
        .expect("seeded");
    assert_eq!(
        schemas.fresh().await.expect("read").len(),
        seed.len() - 1,
        "a disabled schema is not in force"
    );
}
