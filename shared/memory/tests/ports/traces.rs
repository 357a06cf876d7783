//! One request's trace followed through the pipeline: the alert its event fires, the absence
//! check it schedules (queued and decided), and the operator alert that check fires, each as
//! the ledger records it.

use cuba_core::absence::scheduling::AbsenceOutcome;
use cuba_core::model::trace::TraceContext;

use crate::common::{World, paid};

fn request_trace() -> TraceContext {
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        .parse()
        .expect("a trace header")
}

#[tokio::test]
async fn a_payments_trace_reaches_its_sms_its_absence_check_and_the_operators_alert() {
    let w = World::new();
    w.phone(1).await;
    let received = w
        .ingest_in_trace(1, "p1", paid(3000), Some(request_trace()))
        .await;
    w.pipeline.process(&received).await.expect("processed");

    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1, "the first payment's SMS: {ledger:?}");
    assert_eq!(ledger[0].rule_id.as_str(), "first-bill-payment");
    assert_eq!(ledger[0].trace, Some(request_trace()));

    let checks = w.queued();
    assert_eq!(checks.len(), 1, "the no-feedback check: {checks:?}");
    assert_eq!(checks[0].trace, Some(request_trace()));

    // No feedback: a quarter of an hour later the check fires, in the payment's trace.
    w.at_seconds(16 * 60);
    let outcome = w.checker.run(&checks[0]).await.expect("decided");
    assert!(matches!(outcome, AbsenceOutcome::Fired(..)), "{outcome:?}");
    let operator = w
        .ledger()
        .into_iter()
        .find(|entry| entry.rule_id.as_str() == "bill-paid-no-feedback")
        .expect("the operator's alert is recorded");
    assert_eq!(operator.trace, Some(request_trace()));
}

#[tokio::test]
async fn an_event_received_without_a_trace_fires_alerts_without_one() {
    let w = World::new();
    w.phone(2).await;
    w.deliver(2, "p1", paid(3000)).await;
    let ledger = w.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(ledger[0].trace, None);
    assert!(w.queued().iter().all(|check| check.trace.is_none()));
}
