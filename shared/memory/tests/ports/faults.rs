//! Every port call of a flow failed in turn, before and after it takes effect, then the flow
//! retried as its source would (the stream redelivers the record, the queue the message) and
//! the sweeper run once the leases lapsed: every message goes out exactly once, and the ledger
//! says how each ended ([`expected_status`]).

use crate::common::{World, paid};
use cuba_core::delivery::alert::AlertStatus;
use cuba_core::model::domain::ReceivedEvent;
use cuba_core::rules::Action;
use cuba_memory::Fault;

/// Retries of one record before the test gives up (Lambda retries a stream record until it
/// succeeds or expires; a handful is enough for one injected fault).
const RETRIES: usize = 5;

/// Processes `received` until it succeeds, the clock moving past any lease between tries as
/// time passes between Lambda's retries.
async fn process_until_done(w: &World, received: &ReceivedEvent) -> usize {
    for attempt in 1..=RETRIES {
        if w.pipeline.process(received).await.is_ok() {
            return attempt;
        }
        w.clock.advance_seconds(w.lease_seconds());
    }
    panic!("the event was never processed");
}

/// Runs every queued check until each succeeds (a failed message stays on the queue).
async fn run_checks_until_done(w: &World) {
    let mut queued = w.ports.queue.take();
    for _ in 0..RETRIES {
        let mut failed = Vec::new();
        for q in queued {
            if w.checker.run(&q.check).await.is_err() {
                failed.push(q);
            }
        }
        queued = failed;
        queued.extend(w.ports.queue.take());
        if queued.is_empty() {
            return;
        }
        w.clock.advance_seconds(w.lease_seconds());
    }
    panic!("a check never ran");
}

/// How the alert ends when this call fails: a publish whose answer was lost went out, but
/// nothing can tell, so the ledger says `unconfirmed` (and nothing publishes it again).
fn expected_status(op: &str, fault: Fault) -> AlertStatus {
    match (op, fault) {
        (op, Fault::After) if op.starts_with("notifier.") => AlertStatus::Unconfirmed,
        _ => AlertStatus::Sent,
    }
}

/// What the sweeper finds once every lease has lapsed: alerts a retry found still held
/// (a claim whose answer was lost, then re-tried under a different lease) are finished here.
async fn sweep_after_leases(w: &World) {
    w.clock.advance_seconds(w.lease_seconds());
    w.sweep().await;
}

/// The ops of the stream step for a user's first bill payment, from a fault-free run.
async fn stream_ops() -> Vec<&'static str> {
    let w = World::new();
    w.phone(1).await;
    let received = w.ingest(1, "p1", paid(3000)).await;
    let before = w.ports.faults.log().len();
    w.pipeline.process(&received).await.expect("processed");
    w.ports.faults.log()[before..].to_vec()
}

#[tokio::test(start_paused = true)]
async fn every_step_of_the_stream_consumer_can_fail_and_be_retried() {
    let ops = stream_ops().await;
    assert!(
        ops.contains(&"notifier.send_sms") && ops.contains(&"queue.schedule"),
        "{ops:?}"
    );
    for (i, op) in ops.iter().enumerate() {
        for fault in [Fault::Before, Fault::After] {
            let w = World::new();
            w.phone(1).await;
            let received = w.ingest(1, "p1", paid(3000)).await;
            let n = w.ports.faults.calls() + 1 + u64::try_from(i).unwrap_or(0);
            w.ports.faults.fail_call(n, fault);
            let attempts = process_until_done(&w, &received).await;
            sweep_after_leases(&w).await;
            let case = format!("{op} failing {fault:?} (call {})", i + 1);
            assert!(attempts >= 1, "{case}: {:?}", w.ledger());
            assert_eq!(
                w.ports.notifier.sms().len(),
                1,
                "{case}: the first-payment SMS {:?}",
                w.ledger()
            );
            let ledger: Vec<_> = w
                .ledger()
                .into_iter()
                .filter(|e| matches!(e.action, Action::SmsUser { .. }))
                .collect();
            assert_eq!(ledger.len(), 1, "{case}");
            assert_eq!(
                ledger[0].status,
                expected_status(op, fault),
                "{case}: settled"
            );

            // The absence check, however often it was queued, alerts the operator once.
            w.at_seconds(100_000);
            run_checks_until_done(&w).await;
            sweep_after_leases(&w).await;
            assert_eq!(w.ports.notifier.operator_alerts().len(), 1, "{case}");
            assert!(w.pending().is_empty(), "{case}: nothing left pending");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_step_of_an_absence_check_can_fail_and_be_retried() {
    let reference = World::new();
    reference.deliver(1, "p1", paid(3000)).await;
    let checks = reference.ports.queue.take();
    reference.at_seconds(1_000);
    let before = reference.ports.faults.log().len();
    reference
        .checker
        .run(&checks[0].check)
        .await
        .expect("the check runs");
    let ops = reference.ports.faults.log()[before..].to_vec();
    assert!(ops.contains(&"notifier.notify_operator"), "{ops:?}");

    for (i, op) in ops.iter().enumerate() {
        for fault in [Fault::Before, Fault::After] {
            let w = World::new();
            w.deliver(1, "p1", paid(3000)).await;
            w.at_seconds(1_000);
            let n = w.ports.faults.calls() + 1 + u64::try_from(i).unwrap_or(0);
            w.ports.faults.fail_call(n, fault);
            run_checks_until_done(&w).await;
            sweep_after_leases(&w).await;
            let case = format!("{op} failing {fault:?} (call {})", i + 1);
            assert_eq!(
                w.ports.notifier.operator_alerts().len(),
                1,
                "{case}: the operator alert"
            );
            let ledger: Vec<_> = w
                .ledger()
                .into_iter()
                .filter(|e| matches!(e.action, Action::NotifyOperator { .. }))
                .collect();
            assert_eq!(ledger.len(), 1, "{case}");
            assert_eq!(
                ledger[0].status,
                expected_status(op, fault),
                "{case}: settled"
            );
            assert!(w.pending().is_empty(), "{case}: nothing left pending");
        }
    }
}

/// The shipped no-feedback rule groups its alerts: every port call of deciding the check,
/// gathering its alert and publishing the group message fails in turn, and still one message
/// goes out, the alert is recorded `grouped` once, and nothing stays pending. (The message's
/// count may say 2 for the one alert: an alert gathered whose settle then failed is gathered
/// again when retried; the count errs on the side of more.)
#[tokio::test(start_paused = true)]
async fn every_step_of_a_grouped_alert_can_fail_and_be_retried() {
    let shipped =
        || cuba_core::rules::RuleSet::default_rules().expect("the seed rules, grouping as shipped");
    let reference = World::with_rules(shipped());
    reference.deliver(1, "p1", paid(3000)).await;
    reference.at_seconds(1_000);
    let before = reference.ports.faults.log().len();
    run_checks_until_done(&reference).await;
    reference.at_seconds(1_100);
    reference.sweep().await;
    let ops = reference.ports.faults.log()[before..].to_vec();
    assert!(
        ops.contains(&"ledger.gather") && ops.contains(&"ledger.claim_notice"),
        "{ops:?}"
    );
    assert_eq!(reference.ports.notifier.operator_groups().len(), 1);

    for (i, op) in ops.iter().enumerate() {
        for fault in [Fault::Before, Fault::After] {
            let w = World::with_rules(shipped());
            w.deliver(1, "p1", paid(3000)).await;
            w.at_seconds(1_000);
            let n = w.ports.faults.calls() + 1 + u64::try_from(i).unwrap_or(0);
            w.ports.faults.fail_call(n, fault);
            run_checks_until_done(&w).await;
            let case = format!("{op} failing {fault:?} (call {})", i + 1);
            // Past the group's wait, then past every lease, as the sweeper's minutes pass.
            for seconds in [1_100, 1_200, 1_300] {
                w.at_seconds(seconds);
                // A sweep the fault stops is the next minute's to finish.
                let _ = cuba_core::delivery::alerting::AlertSweeper {
                    dispatcher: w.ports.dispatcher(std::sync::Arc::new(w.clock.clone())),
                    batch: 100,
                }
                .sweep()
                .await;
            }
            let groups = w.ports.notifier.operator_groups();
            assert_eq!(groups.len(), 1, "{case}: one message {:?}", w.ledger());
            assert!(
                (1..=2).contains(&groups[0].count),
                "{case}: {}",
                groups[0].count
            );
            assert!(w.ports.notifier.operator_alerts().is_empty(), "{case}");
            let ledger = w.ledger();
            let grouped: Vec<_> = ledger
                .iter()
                .filter(|e| e.status == AlertStatus::Grouped)
                .collect();
            assert_eq!(grouped.len(), 1, "{case}: {ledger:?}");
            assert_eq!(
                grouped[0].group.grouped_in.as_ref(),
                Some(&groups[0].alert_id),
                "{case}"
            );
            assert!(w.pending().is_empty(), "{case}: nothing left pending");
        }
    }
}
