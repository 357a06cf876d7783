//! Grouped operator notifications on the local stack: a rule that fires for every user, its
//! alerts gathered into one SNS message per interval (the first `group_wait_seconds` after the
//! rule's first alert, the next at the interval's end), every alert kept in the ledger naming
//! its message. The stack's clock is held by the test, so the interval's bounds are known.

use std::sync::Arc;
use std::time::Duration;

use cuba_core::model::clock::{Clock, ManualClock, SystemClock};
use cuba_core::model::domain::Millis;
use serde_json::json;

use crate::harness::{ABSENCE_RULE, Options, TestStack, bill, n, rules_with_grouping, s};

const RULE: &str = "every-payment-watch";
const INTERVAL_MS: u64 = 60_000;

/// One rule: every bill payment (a window of one, no cooldown), told to the operators in groups.
fn grouping_rules() -> std::path::PathBuf {
    let rules = json!({"rules": [{
        "id": RULE,
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 60, "count_at_least": 1, "cooldown_seconds": 0},
        "action": {"type": "notify_operator", "severity": "info",
                   "group_wait_seconds": 5, "group_interval_seconds": INTERVAL_MS / 1000},
        "message": "user {{user}} paid a bill of {{properties.amount}}"
    }]});
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-grouping-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write the rules");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_operator_alerts_goes_out_as_one_message_per_interval() {
    // A second into the next interval: the first wait ends well inside it.
    let slot_start = (SystemClock.now().0 / INTERVAL_MS + 1) * INTERVAL_MS;
    let clock = ManualClock::at(Millis(slot_start + 1_000));
    let slot_end = Millis(slot_start + INTERVAL_MS);
    let t = TestStack::start_with(Options {
        clock: Arc::new(clock.clone()),
        rules_file: Some(grouping_rules()),
        ..Options::default()
    })
    .await;

    // One user's payments, which the stream consumer takes one after another: moto applies
    // concurrent updates of one item without DynamoDB's atomicity (an ADD can be lost), so the
    // exact count is checked on a sequence here; the contract tests and the memory twin check
    // the same gathering, and DynamoDB's ADD is atomic.
    const FLOOD: u64 = 120;
    for n in 1..=FLOOD {
        t.accept("/api/v1/event/", 7, &bill(1000 + n)).await;
    }
    t.wait_for_stream(FLOOD).await;
    let grouped = |ledger: &[std::collections::HashMap<
        String,
        aws_sdk_dynamodb::types::AttributeValue,
    >]| {
        ledger
            .iter()
            .filter(|item| s(item, "status") == "grouped")
            .count() as u64
    };
    assert_eq!(
        grouped(&t.ledger_for(RULE).await),
        FLOOD,
        "every alert is recorded"
    );
    assert!(
        t.operator_alerts(Duration::from_secs(3)).await.is_empty(),
        "nothing goes out before the wait ends"
    );

    clock.advance_seconds(6);
    let messages = t.expect_operator_alerts(1).await;
    assert_eq!(
        messages.len(),
        1,
        "one message for {FLOOD} alerts: {messages:?}"
    );
    let (body, attributes) = &messages[0];
    assert_eq!(body["kind"], "group");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["group_key"], "all");
    assert_eq!(body["rule_id"], RULE);
    assert_eq!(body["severity"], "info");
    assert_eq!(body["count"], FLOOD);
    let carried = body["alerts"].as_array().expect("the first alerts");
    assert_eq!(carried.len(), 5);
    assert!(
        carried.iter().all(|a| a["rule_id"] == RULE
            && a["text"]
                .as_str()
                .is_some_and(|t| t.contains("user 7 paid a bill"))),
        "{carried:?}"
    );
    assert_eq!(attributes["rule_id"], RULE);
    let message_id = body["alert_id"]
        .as_str()
        .expect("the message's id")
        .to_owned();
    let ledger = t.ledger_for(RULE).await;
    let members: Vec<_> = ledger
        .iter()
        .filter(|item| s(item, "status") == "grouped")
        .collect();
    assert!(
        members
            .iter()
            .all(|item| s(item, "grouped_in") == message_id),
        "each alert names the message that carried it"
    );
    let message = ledger
        .iter()
        .find(|item| s(item, "alert_id") == message_id)
        .expect("the message's own entry");
    assert_eq!(s(message, "status"), "sent");
    assert_eq!(n(message, "members"), Some(FLOOD));

    // Later in the interval: the next alerts wait for its end.
    const LATER: u64 = 10;
    for n in FLOOD + 1..=FLOOD + LATER {
        t.accept("/api/v1/event/", 7, &bill(1000 + n)).await;
    }
    t.wait_for_stream(FLOOD + LATER).await;
    clock.advance_seconds(20);
    assert!(
        t.operator_alerts(Duration::from_secs(3)).await.is_empty(),
        "one message per interval: the second waits for the interval's end"
    );
    clock.set(slot_end.plus_seconds(1));
    let second = t.expect_operator_alerts(1).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].0["count"], LATER);
    assert_eq!(
        grouped(&t.ledger_for(RULE).await),
        FLOOD + LATER,
        "no alert lost or doubled"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_no_feedback_rule_tells_ops_once_for_many_unanswered_payments() {
    // The shipped rule groups per 5 minutes: a second into the next such interval, its wait
    // shortened to 30 s.
    const SHIPPED_INTERVAL_MS: u64 = 300_000;
    let slot_start = (SystemClock.now().0 / SHIPPED_INTERVAL_MS + 1) * SHIPPED_INTERVAL_MS;
    let clock = ManualClock::at(Millis(slot_start + 1_000));
    let t = TestStack::start_with(Options {
        clock: Arc::new(clock.clone()),
        rules_file: Some(rules_with_grouping(30)),
        ..Options::default()
    })
    .await;
    // One user's unanswered payments: their checks come back through that user's stream, in
    // order, so moto's non-atomic updates (see the flood's note) cannot lose a count.
    const UNANSWERED: u64 = 8;
    // The first unanswered payment opens the message: its check is past due (and settled) when
    // it comes back from the delay queue.
    t.accept("/api/v1/event/", 101, &bill(500)).await;
    t.wait_for_stream(1).await;
    clock.advance_seconds(60);
    t.wait_for_checks(1).await;
    // The message goes out 30 s after that first alert; the others' checks come due before.
    for _ in 2..=UNANSWERED {
        t.accept("/api/v1/event/", 101, &bill(500)).await;
    }
    t.wait_for_stream(UNANSWERED).await;
    clock.advance_seconds(20);
    t.wait_for_checks(UNANSWERED).await;
    let ledger = t.ledger_for(ABSENCE_RULE).await;
    let grouped = ledger
        .iter()
        .filter(|item| s(item, "status") == "grouped")
        .count() as u64;
    assert_eq!(grouped, UNANSWERED, "{ledger:?}");
    assert!(t.operator_alerts(Duration::from_secs(2)).await.is_empty());

    clock.advance_seconds(11);
    let messages = t.expect_operator_alerts(1).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let body = &messages[0].0;
    assert_eq!(body["count"], UNANSWERED);
    assert_eq!(body["rule_id"], ABSENCE_RULE);
    assert!(
        body["text"].as_str().is_some_and(|text| text
            .starts_with(&format!("Rule {ABSENCE_RULE} fired {UNANSWERED} alerts"))
            && text.contains("we did not get any feedback for user")),
        "{body}"
    );
}
