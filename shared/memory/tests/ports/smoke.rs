//! The deployment smoke test on the memory ports: what it records, that it sends nothing, and
//! that a failing store is a failed report, not a panic.

use std::sync::Arc;

use cuba_core::delivery::alert::AlertStatus;
use cuba_core::delivery::limits::OperatorLimit;
use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::pipeline::smoke::{NoOneNotified, SMOKE_RULE, SmokeTest, smoke_documents};
use cuba_memory::{Fault, MemoryPorts};

use crate::common::START;

fn smoke_test(ports: &MemoryPorts) -> SmokeTest {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(START));
    let (rules, schemas) = smoke_documents().expect("the smoke test's documents");
    let mut stream = ports.stream_ports(clock.clone());
    stream.dispatcher.notifier = Arc::new(NoOneNotified);
    SmokeTest {
        pipeline: stream.pipeline(Arc::new(rules), Arc::new(schemas), clock.clone()),
        events: stream.events.clone(),
        ledger: stream.dispatcher.ledger.clone(),
        clock,
    }
}

#[tokio::test]
async fn a_smoke_run_stores_evaluates_and_records_and_sends_nothing() {
    let ports = MemoryPorts::new();
    let smoke = smoke_test(&ports);
    let report = smoke.run("d-1").await;
    assert!(report.passed, "{report:?}");
    assert_eq!(report.alert_status, Some(AlertStatus::Sent));
    let ledger = ports.ledger.entries();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].rule_id.as_str(), SMOKE_RULE);
    assert_eq!(ledger[0].user, report.user);
    assert!(ports.notifier.sms().is_empty());
    assert!(ports.notifier.operator_alerts().is_empty());
    assert!(
        ports
            .events
            .all()
            .iter()
            .any(|e| e.event.id == report.event_id)
    );

    let again = smoke.run("d-1").await;
    assert!(again.passed, "a repeated run finds its alert: {again:?}");
    assert_eq!(ports.ledger.entries().len(), 1);
}

#[tokio::test]
async fn a_store_that_fails_fails_the_run_with_the_step_named() {
    let ports = MemoryPorts::new();
    let smoke = smoke_test(&ports);
    ports.faults.fail_next("events.insert", Fault::Before);
    let report = smoke.run("d-2").await;
    assert!(!report.passed);
    let failure = report.failure.expect("a failure");
    assert!(failure.starts_with("storing the event"), "{failure}");
    assert!(ports.ledger.entries().is_empty());
}

#[tokio::test]
async fn a_run_over_the_operator_cap_passes_its_alert_recorded_suppressed() {
    let ports = MemoryPorts::new();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(START));
    let (rules, schemas) = smoke_documents().expect("the smoke test's documents");
    let mut stream = ports.stream_ports(clock.clone());
    stream.dispatcher.notifier = Arc::new(NoOneNotified);
    // A deployment that keeps one operator alert per rule and hour, deployed twice in the hour.
    stream.dispatcher.operators = OperatorLimit::new(1, ports.operators.clone());
    let smoke = SmokeTest {
        pipeline: stream.pipeline(Arc::new(rules), Arc::new(schemas), clock.clone()),
        events: stream.events.clone(),
        ledger: stream.dispatcher.ledger.clone(),
        clock,
    };
    assert!(smoke.run("first-deployment").await.passed);
    let second = smoke.run("second-deployment").await;
    assert!(second.passed, "{second:?}");
    assert_eq!(second.alert_status, Some(AlertStatus::Suppressed));
    assert!(ports.notifier.operator_alerts().is_empty());
}
