//! The three seed rules, each firing exactly once where it should and not where it should not.

use std::sync::Arc;
use std::time::Duration;

use cuba_core::model::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Options, TestStack, bill, s};

const FIRST: &str = "Thanks for your first bill payment";
const BURST: &str = "Cube alert:";

fn count(messages: &[String], prefix: &str) -> usize {
    messages.iter().filter(|m| m.starts_with(prefix)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_bill_payment_sends_one_sms_and_later_ones_none() {
    let t = TestStack::start().await;
    let phone = t.register_phone(1).await;

    t.accept("/api/v1/event/", 1, &bill(3000)).await;
    t.wait_for_stream(1).await;
    let sms = t.sms_to(&phone).await;
    assert_eq!(
        sms,
        ["Thanks for your first bill payment on Cube: 3000 for electricity."]
    );

    t.accept("/api/v1/event/", 1, &bill(100)).await;
    t.accept(
        "/api/v1/event/",
        1,
        &json!({"noun": "app", "verb": "opened"}),
    )
    .await;
    t.wait_for_stream(3).await;
    assert_eq!(count(&t.sms_to(&phone).await, FIRST), 1);

    let ledger = t.ledger_for("first-bill-payment").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(s(&ledger[0], "status"), "sent");
    assert_eq!(s(&ledger[0], "alert_id"), "first-bill-payment#1#first");
}

#[tokio::test(flavor = "multi_thread")]
async fn four_payments_do_not_alert_the_fifth_does_and_a_sixth_stays_quiet() {
    let t = TestStack::start().await;
    let phone = t.register_phone(7).await;

    for _ in 0..4 {
        t.accept("/api/v1/event/", 7, &bill(6000)).await;
    }
    t.wait_for_stream(4).await;
    assert_eq!(
        count(&t.sms_to(&phone).await, BURST),
        0,
        "four payments are not a burst"
    );

    t.accept("/api/v1/event/", 7, &bill(6000)).await;
    t.wait_for_stream(5).await;
    let sms = t.sms_to(&phone).await;
    assert_eq!(count(&sms, BURST), 1, "{sms:?}");
    assert!(
        sms.contains(
            &"Cube alert: 5 bill payments totalling 30000 in the last 5 minutes. Not you? Call us."
                .to_owned()
        )
    );

    t.accept("/api/v1/event/", 7, &bill(6000)).await;
    t.wait_for_stream(6).await;
    assert_eq!(
        count(&t.sms_to(&phone).await, BURST),
        1,
        "the cooldown holds the sixth"
    );

    let burst = t.ledger_for("bill-payment-burst").await;
    assert_eq!(burst.len(), 1);
    let ids = burst[0]["event_ids"].as_l().expect("event ids");
    assert_eq!(ids.len(), 5, "the alert names every payment in the window");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_payments_below_the_total_do_not_alert() {
    let t = TestStack::start().await;
    let phone = t.register_phone(8).await;
    for _ in 0..5 {
        t.accept("/api/v1/event/", 8, &bill(3999)).await;
    }
    t.wait_for_stream(5).await;
    assert_eq!(count(&t.sms_to(&phone).await, BURST), 0);
    assert!(t.ledger_for("bill-payment-burst").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn payments_spread_beyond_the_window_do_not_alert() {
    let clock = ManualClock::starting_now();
    let t = TestStack::start_with(Options {
        clock: Arc::new(clock.clone()),
        ..Options::default()
    })
    .await;
    let phone = t.register_phone(9).await;

    for _ in 0..3 {
        t.accept("/api/v1/event/", 9, &bill(9000)).await;
    }
    clock.advance_seconds(301);
    for _ in 0..2 {
        t.accept("/api/v1/event/", 9, &bill(9000)).await;
    }
    t.wait_for_stream(5).await;
    assert_eq!(
        count(&t.sms_to(&phone).await, BURST),
        0,
        "never five within 5 minutes"
    );

    // Three more within the window of the last two make five: now it fires.
    clock.advance_seconds(60);
    for _ in 0..3 {
        t.accept("/api/v1/event/", 9, &bill(9000)).await;
    }
    t.wait_for_stream(8).await;
    assert_eq!(count(&t.sms_to(&phone).await, BURST), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bill_without_feedback_alerts_the_operator_once() {
    let t = TestStack::start().await;
    let event_id = t.accept("/api/v1/event/", 4, &bill(1200)).await;

    let alerts = t.expect_operator_alerts(1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (body, attributes) = &alerts[0];
    assert_eq!(body["rule_id"], "bill-paid-no-feedback");
    assert_eq!(body["user"], 4);
    assert_eq!(body["event_ids"], json!([event_id]));
    assert_eq!(body["severity"], "warning");
    assert_eq!(
        body["text"],
        format!("we did not get any feedback for user 4 after bill payment {event_id}")
    );
    assert_eq!(attributes["rule_id"], "bill-paid-no-feedback");
    assert_eq!(attributes["severity"], "warning");

    let ledger = t.ledger_for("bill-paid-no-feedback").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(s(&ledger[0], "status"), "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_in_time_means_no_operator_alert() {
    let t = TestStack::start().await;
    t.accept("/api/v1/event/", 5, &bill(1200)).await;
    t.accept(
        "/api/v1/feedback/",
        5,
        &json!({"user": 5, "rating": 4, "comment": "test"}),
    )
    .await;

    // The check is posted into the user's stream once ripe and decided there, behind the
    // payment and the feedback: once it is decided nothing may have fired.
    t.wait_for_checks(1).await;
    assert!(t.ledger_for("bill-paid-no-feedback").await.is_empty());
    assert!(t.operator_alerts(Duration::from_secs(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_from_another_user_does_not_count() {
    let t = TestStack::start().await;
    t.accept("/api/v1/event/", 5, &bill(1200)).await;
    t.accept("/api/v1/feedback/", 6, &json!({"rating": 5}))
        .await;
    let alerts = t.expect_operator_alerts(1).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0["user"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sms_for_a_user_without_a_phone_is_recorded_as_undeliverable() {
    let t = TestStack::start().await;
    t.accept("/api/v1/event/", 11, &bill(500)).await;
    t.wait_for_stream(1).await;
    let ledger = t.ledger_for("first-bill-payment").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(s(&ledger[0], "status"), "undeliverable");
    assert_eq!(
        s(&ledger[0], "reason"),
        "user 11 has no phone number on file"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_event_id_is_stored_once_and_fires_once() {
    let t = TestStack::start().await;
    let phone = t.register_phone(12).await;
    let mut payment = bill(2500);
    payment["id"] = json!("pay-0001");

    t.accept("/api/v1/event/", 12, &payment).await;
    let (status, answer) = t.post("/api/v1/event", 12, &payment).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"id": "pay-0001", "status": "duplicate"}));

    // The same id from another user is another event.
    let (status, _) = t.post("/api/v1/event/", 13, &payment).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // One stored event, one absence check, one alert: the re-post changes nothing.
    let alerts = t.expect_operator_alerts(2).await;
    t.wait_for_checks(2).await;
    let alerts_for_12: Vec<_> = alerts.iter().filter(|(b, _)| b["user"] == 12).collect();
    assert_eq!(alerts_for_12.len(), 1, "{alerts:?}");
    assert_eq!(count(&t.sms_to(&phone).await, FIRST), 1);
    assert_eq!(
        t.stack
            .progress
            .stream_records
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );

    let events = aws_sdk_dynamodb::Client::new(&t.sdk)
        .query()
        .table_name(
            t.stack
                .provisioned
                .table("EventsTable")
                .expect("events table"),
        )
        .key_condition_expression("#u = :u")
        // Events, not the absence check posted beside them.
        .filter_expression("attribute_exists(received_at)")
        .expression_attribute_names("#u", "user")
        .expression_attribute_values(
            ":u",
            aws_sdk_dynamodb::types::AttributeValue::N("12".into()),
        )
        .send()
        .await
        .expect("query events");
    assert_eq!(events.count, 1);
}
