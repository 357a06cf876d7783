//! Silences at delivery: an operator alert a silence covers is claimed and recorded `silenced`,
//! never published, and spends none of its rule's hourly cap; a silence for one user leaves the
//! others alone; an ended silence stops applying.

use std::sync::Arc;

use crate::common::World;
use cuba_core::delivery::alert::{Alert, AlertId, AlertStatus, Delivery};
use cuba_core::delivery::alerting::Dispatched;
use cuba_core::delivery::silences::{Every, Recurrence, SilenceRequest, SilenceStore};
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::{EventId, UserId};
use cuba_core::rules::{Action, RuleId, Severity};

fn rule(id: &str) -> RuleId {
    RuleId::parse(id).expect("a rule id")
}

fn operator_alert(w: &World, rule_id: &str, user: u64, event: &str) -> Alert {
    let trigger = EventId::parse(event).expect("an id");
    Alert {
        trace: None,
        id: AlertId::for_trigger(&rule(rule_id), UserId(user), &trigger),
        rule_id: rule(rule_id),
        user: UserId(user),
        event_ids: vec![trigger],
        action: Action::NotifyOperator {
            severity: Severity::Warning,
            grouping: None,
        },
        text: "no feedback".into(),
        translations: Default::default(),
        fired_at: w.clock.now(),
    }
}

async fn status(w: &World, alert: &Alert) -> (AlertStatus, Option<String>) {
    let dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    match dispatcher.dispatch(alert).await {
        Ok(Dispatched::Delivered(delivery)) => {
            let reason = match delivery {
                Delivery::Silenced { ref reason } => Some(reason.clone()),
                _ => None,
            };
            (delivery.status(), reason)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silenced_operator_alert_is_recorded_not_published_until_the_silence_ends() {
    let w = World::new();
    let now = w.clock.now();
    let silence = SilenceRequest {
        rule_id: rule("bill-paid-no-feedback"),
        user: None,
        starts_at: None,
        ends_at: now.plus_seconds(3600),
        repeat: None,
        reason: "payments provider maintenance".into(),
    }
    .silence("ops@cube.test", now)
    .expect("a silence");
    w.ports
        .silences
        .create(&silence, now)
        .await
        .expect("created");
    let one_user = SilenceRequest {
        rule_id: rule("login-failures"),
        user: Some(UserId(7)),
        starts_at: None,
        ends_at: now.plus_seconds(3600),
        repeat: None,
        reason: "user 7 is a load test".into(),
    }
    .silence("ops@cube.test", now)
    .expect("a silence");
    w.ports
        .silences
        .create(&one_user, now)
        .await
        .expect("created");

    let (silenced, reason) =
        status(&w, &operator_alert(&w, "bill-paid-no-feedback", 1, "p1")).await;
    assert_eq!(silenced, AlertStatus::Silenced);
    let reason = reason.expect("a reason");
    assert!(
        reason.contains("ops@cube.test")
            && reason.contains(silence.id.as_str())
            && reason.contains("payments provider maintenance"),
        "{reason}"
    );
    assert_eq!(
        status(&w, &operator_alert(&w, "login-failures", 7, "l1"))
            .await
            .0,
        AlertStatus::Silenced,
        "the silenced user"
    );
    assert_eq!(
        status(&w, &operator_alert(&w, "login-failures", 8, "l2"))
            .await
            .0,
        AlertStatus::Sent,
        "another user of the same rule"
    );
    assert_eq!(
        status(&w, &operator_alert(&w, "other-rule", 1, "o1"))
            .await
            .0,
        AlertStatus::Sent,
        "another rule"
    );
    assert_eq!(
        w.ports.notifier.operator_alerts().len(),
        2,
        "only the two unsilenced alerts were published"
    );
    assert_eq!(
        w.ports.faults.count("operators.take"),
        2,
        "silenced alerts spend none of their rule's cap"
    );

    // Ended early: the next alert goes out.
    w.ports
        .silences
        .end(&silence.id, w.clock.now(), "lead@cube.test")
        .await
        .expect("ended");
    assert_eq!(
        status(&w, &operator_alert(&w, "bill-paid-no-feedback", 2, "p2"))
            .await
            .0,
        AlertStatus::Sent
    );
    // And a silence that ran out by itself stops applying too.
    w.clock.advance_seconds(3600);
    assert_eq!(
        status(&w, &operator_alert(&w, "login-failures", 7, "l3"))
            .await
            .0,
        AlertStatus::Sent
    );
}

/// A maintenance window: a daily silence holds the rule's alerts in its window, lets them out
/// between windows, holds them again the next day, and stops once it ends.
#[tokio::test]
async fn a_recurring_silence_holds_alerts_in_each_window_only() {
    let w = World::new();
    let start = w.clock.now();
    let nightly = SilenceRequest {
        rule_id: rule("bill-paid-no-feedback"),
        user: None,
        starts_at: None,
        ends_at: start.plus_seconds(3 * 24 * 3600),
        repeat: Some(Recurrence {
            every: Every::Day,
            window_minutes: 30,
        }),
        reason: "nightly maintenance".into(),
    }
    .silence("ops@cube.test", start)
    .expect("a silence");
    w.ports
        .silences
        .create(&nightly, start)
        .await
        .expect("created");
    let mut n = 0;
    let mut next = |w: &World| {
        n += 1;
        operator_alert(w, "bill-paid-no-feedback", 1, &format!("p{n}"))
    };
    let (held, reason) = status(&w, &next(&w)).await;
    assert_eq!(held, AlertStatus::Silenced);
    assert!(reason.expect("a reason").contains("until "));
    for (to, expected) in [
        (31 * 60, AlertStatus::Sent),
        (24 * 3600 + 60, AlertStatus::Silenced),
        (24 * 3600 + 40 * 60, AlertStatus::Sent),
        (3 * 24 * 3600 + 60, AlertStatus::Sent),
    ] {
        w.clock.set(start.plus_seconds(to));
        assert_eq!(status(&w, &next(&w)).await.0, expected, "{to} s on");
    }
}
