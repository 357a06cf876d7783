//! Carrier receipts through the dispatcher and the sweeper on the memory ports: a receipt that
//! comes before the dispatcher linked the message id is applied by the link; a sent SMS without
//! a receipt is counted overdue by one sweep once its timeout passed; a duplicate receipt
//! changes nothing.

use std::sync::Arc;

use cuba_core::delivery::alert::{Alert, AlertId, AlertStatus, Delivery};
use cuba_core::delivery::alerting::{AlertSweeper, Dispatched};
use cuba_core::delivery::receipt_desk::{ReceiptDesk, ReceiptTaken};
use cuba_core::delivery::receipts::{ReceiptOutcome, SmsReceipt};
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::{EventId, UserId};
use cuba_core::rules::{Action, RuleId};

use crate::common::World;

fn sms(w: &World, trigger: &str) -> Alert {
    let rule = RuleId::parse("receipted").expect("a rule id");
    Alert {
        trace: None,
        id: AlertId::for_trigger(&rule, UserId(9), &EventId::parse(trigger).expect("an id")),
        rule_id: rule,
        user: UserId(9),
        event_ids: vec![EventId::parse(trigger).expect("an id")],
        action: Action::SMS_USER,
        text: "Your bill is paid".into(),
        translations: Default::default(),
        fired_at: w.clock.now(),
    }
}

fn receipt(message_id: &str, outcome: ReceiptOutcome) -> SmsReceipt {
    SmsReceipt {
        message_id: message_id.into(),
        outcome,
        provider_response: "Message has been accepted by phone carrier".into(),
        price_usd: Some(0.00645),
        dwell_ms: Some(599),
        carrier: None,
        published_at: cuba_core::model::domain::Millis(0),
    }
}

fn status_of(w: &World, id: &AlertId) -> AlertStatus {
    w.ledger()
        .into_iter()
        .find(|e| &e.alert_id == id)
        .map(|e| e.status)
        .expect("the alert")
}

#[tokio::test]
async fn receipts_settle_sent_sms_in_either_order_and_missing_ones_are_counted_once() {
    let w = World::new();
    w.phone(9).await;
    let clock = Arc::new(w.clock.clone());
    let dispatcher = w.ports.dispatcher(clock.clone());
    let desk = ReceiptDesk {
        ledger: w.ports.ledger.clone(),
        clock: clock.clone(),
    };

    // The receipt after the send: applied at once.
    let first = sms(&w, "p1");
    let Ok(Dispatched::Delivered(Delivery::Sent { message_id })) =
        dispatcher.dispatch(&first).await
    else {
        panic!("sent");
    };
    assert_eq!(status_of(&w, &first.id), AlertStatus::Sent);
    let delivered = receipt(&message_id, ReceiptOutcome::Delivered);
    assert_eq!(
        desk.take(&delivered).await,
        Ok(ReceiptTaken::Applied(first.id.clone()))
    );
    assert_eq!(status_of(&w, &first.id), AlertStatus::Delivered);
    assert_eq!(
        desk.take(&delivered).await,
        Ok(ReceiptTaken::Applied(first.id.clone())),
        "a duplicate receipt is applied again, to the same end"
    );
    assert_eq!(status_of(&w, &first.id), AlertStatus::Delivered);

    // The receipt before the link: the memory notifier's next message id is known, so the
    // receipt can be taken before the SMS is even dispatched.
    let second = sms(&w, "p2");
    let next_id = w.ports.notifier.next_message_id();
    assert_eq!(
        desk.take(&receipt(&next_id, ReceiptOutcome::Failed)).await,
        Ok(ReceiptTaken::Kept)
    );
    assert!(matches!(
        dispatcher.dispatch(&second).await,
        Ok(Dispatched::Delivered(Delivery::Sent { message_id })) if message_id == next_id
    ));
    assert_eq!(
        status_of(&w, &second.id),
        AlertStatus::Failed,
        "the link found the early receipt"
    );

    // No receipt: overdue after the timeout, counted by one sweep.
    let third = sms(&w, "p3");
    dispatcher.dispatch(&third).await.expect("sent");
    let sweeper = AlertSweeper {
        dispatcher: dispatcher.clone(),
        batch: 100,
    };
    assert_eq!(sweeper.sweep().await.map(|r| r.receipts_overdue), Ok(0));
    w.clock.set(
        w.clock
            .now()
            .plus_seconds(dispatcher.receipt_timeout.as_secs() + 1),
    );
    assert_eq!(sweeper.sweep().await.map(|r| r.receipts_overdue), Ok(1));
    assert_eq!(
        sweeper.sweep().await.map(|r| r.receipts_overdue),
        Ok(0),
        "counted once"
    );
    assert_eq!(status_of(&w, &third.id), AlertStatus::Sent);
}
