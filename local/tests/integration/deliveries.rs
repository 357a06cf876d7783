//! Delivery semantics: redelivered stream batches, racing invocations, requeued absence checks,
//! and records that can never succeed.

use std::time::Duration;

use aws_lambda_events::dynamodb::EventRecord;
use cuba_core::absence::AbsenceCheck;
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::{EventId, Millis, UserId};
use cuba_core::rules::RuleId;
use cuba_lambda::handlers::{DynamoDbEvent, SqsEvent};
use cuba_local::runner::to_lambda_record;
use serde_json::json;

use crate::harness::{Options, TestStack, bill};
use cuba_core::delivery::alert::{Alert, AlertId, Claim, Lease};
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::rules::Action;

/// The shards of the events table's stream.
pub async fn stream_shards(t: &TestStack) -> Vec<String> {
    aws_sdk_dynamodbstreams::Client::new(&t.sdk)
        .describe_stream()
        .stream_arn(&t.stack.stream_arn)
        .send()
        .await
        .expect("describe stream")
        .stream_description
        .expect("a description")
        .shards
        .unwrap_or_default()
        .into_iter()
        .map(|shard| shard.shard_id.expect("shard id"))
        .collect()
}

/// Every record on the events table's stream so far, as Lambda would deliver them.
pub async fn stream_records(t: &TestStack) -> Vec<EventRecord> {
    let streams = aws_sdk_dynamodbstreams::Client::new(&t.sdk);
    let mut records = Vec::new();
    for shard_id in stream_shards(t).await {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&t.stack.stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("records");
            let batch = page.records.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            records.extend(
                batch
                    .into_iter()
                    .map(|r| to_lambda_record(r, &t.stack.stream_arn)),
            );
            iterator = page.next_shard_iterator;
        }
    }
    records
}

pub fn batch_of(records: Vec<EventRecord>) -> DynamoDbEvent {
    let mut batch = DynamoDbEvent::default();
    batch.records = records;
    batch
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redelivered_stream_batch_sends_nothing_twice() {
    let t = TestStack::start().await;
    let phone = t.register_phone(20).await;
    for _ in 0..5 {
        t.accept("/api/v1/event/", 20, &bill(4000)).await;
    }
    t.wait_for_stream(5).await;
    let before = t.sms_to(&phone).await;
    assert_eq!(before.len(), 2, "first payment and burst: {before:?}");

    // The five payments (and any absence check already posted behind them: the handler
    // decides those again just as harmlessly).
    let records = stream_records(&t).await;
    assert_eq!(
        records
            .iter()
            .filter(|r| !cuba_aws::StreamItem::is_due_check(&r.change.new_image))
            .count(),
        5
    );
    for _ in 0..2 {
        let response = t
            .stack
            .stream_handler
            .handle(batch_of(records.clone()))
            .await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(t.sms_to(&phone).await, before);
    assert_eq!(t.ledger_without_absence().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_first_payments_send_one_sms() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let phone = t.register_phone(21).await;
    let (first, second) = (bill(100), bill(200));
    let (a, b) = tokio::join!(
        t.post("/api/v1/event/", 21, &first),
        t.post("/api/v1/event/", 21, &second)
    );
    assert_eq!((a.0.as_u16(), b.0.as_u16()), (202, 202));

    let records = stream_records(&t).await;
    assert_eq!(records.len(), 2);
    // Two invocations racing, one record each, as two shards or two retries might.
    let invocations: Vec<_> = records
        .into_iter()
        .map(|record| {
            let handler = t.stack.stream_handler.clone();
            tokio::spawn(async move { handler.handle(batch_of(vec![record])).await })
        })
        .collect();
    for invocation in invocations {
        let response = invocation.await.expect("the invocation completes");
        assert!(response.batch_item_failures.is_empty());
    }
    let sms = t.sms_to(&phone).await;
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(t.ledger_for("first-bill-payment").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_waits_on_the_queue_until_ripe_then_is_decided_from_the_stream() {
    // Without the stream consumer: this test hands the rules handler the stream's records.
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let event_id = t
        .accept(
            "/api/v1/event/",
            30,
            &json!({"noun": "app", "verb": "opened"}),
        )
        .await;
    let now = SystemClock.now();
    let check = AbsenceCheck {
        trace: None,
        rule_id: RuleId::parse("bill-paid-no-feedback").expect("rule id"),
        user: UserId(30),
        event_id: EventId::parse(&event_id).expect("event id"),
        received_at: now.minus_seconds(60),
        due_at: Millis(now.0 + 3_000),
    };
    let mut message = aws_lambda_events::sqs::SqsMessage::default();
    message.message_id = Some("m-1".into());
    message.body = Some(serde_json::to_string(&check).expect("json"));
    let mut batch = SqsEvent::default();
    batch.records = vec![message];

    let response = t.stack.absence_handler.handle(batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        stream_records(&t).await.len(),
        1,
        "not ripe: only the event"
    );

    // The queue hands the check back once due (plus the local settling second), and the
    // absence function posts it behind the user's events.
    let mut records = Vec::new();
    t.wait_until("the check in the stream", || {
        let t = &t;
        async move { stream_records(t).await.len() == 2 }
    })
    .await;
    assert!(
        SystemClock.now() >= check.due_at,
        "the requeued check was posted only once due"
    );
    // Only the check: the event itself, an unschematised mobile event, would be flagged
    // invalid if processed, and an invalid trigger has nothing to alert about.
    records.extend(
        stream_records(&t)
            .await
            .into_iter()
            .filter(|r| cuba_aws::StreamItem::is_due_check(&r.change.new_image)),
    );
    assert_eq!(records.len(), 1);
    assert!(t.ledger().await.is_empty(), "posted, not yet decided");
    let response = t.stack.stream_handler.handle(batch_of(records)).await;
    assert!(response.batch_item_failures.is_empty());
    let alerts = t.expect_operator_alerts(1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0["event_ids"], json!([event_id]));
}

#[tokio::test(flavor = "multi_thread")]
async fn records_that_can_never_succeed_are_reported_not_dropped() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;

    let mut garbage = aws_lambda_events::sqs::SqsMessage::default();
    garbage.message_id = Some("bad".into());
    garbage.body = Some("not an absence check".into());
    let mut batch = SqsEvent::default();
    batch.records = vec![garbage];
    let response = t.stack.absence_handler.handle(batch).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, [Some("bad".to_owned())]);

    // A stream image that is neither an event nor a check fails the batch at that record: it
    // is reported, so Lambda retries from it rather than skipping it, and the other users'
    // records beside it, which ran, change nothing when they are run again.
    t.accept("/api/v1/event/", 31, &bill(100)).await;
    let mut good = stream_records(&t).await;
    assert_eq!(good.len(), 1);
    let mut poison = EventRecord::default();
    poison.event_name = "INSERT".into();
    poison.change.sequence_number = Some("0".into());
    poison.change.new_image = serde_dynamo::to_item(json!({"user": "not a number"})).expect("item");
    let mut records = vec![poison];
    records.append(&mut good);
    for attempt in 0..2 {
        let response = t
            .stack
            .stream_handler
            .handle(batch_of(records.clone()))
            .await;
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed, [Some("0".to_owned())]);
        assert_eq!(
            t.ledger_without_absence().await.len(),
            1,
            "attempt {attempt}: user 31's first payment alerted once"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_claimed_by_a_worker_that_died_is_delivered_by_the_sweeper_once() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let phone = t.register_phone(40).await;
    t.accept("/api/v1/event/", 40, &bill(700)).await;
    let records = stream_records(&t).await;

    // A worker claimed the alert and died before sending: its lease runs 10 more seconds (long
    // enough that the redelivery below meets it live, however slow the machine).
    let ledger = t.alert_ledger();
    let rule_id = RuleId::parse("first-bill-payment").expect("a rule id");
    let alert = Alert {
        trace: None,
        id: AlertId::first(&rule_id, UserId(40)),
        rule_id,
        user: UserId(40),
        event_ids: Vec::new(),
        action: Action::SMS_USER,
        text: "Welcome aboard: your first bill payment went through.".into(),
        translations: Default::default(),
        fired_at: SystemClock.now(),
    };
    let now = SystemClock.now();
    let lease = Lease::new(Millis(now.0 + 10_000));
    assert_eq!(
        ledger.claim(&alert, now, &lease).await,
        Ok(Claim::Claimed {
            lease_until: lease.until
        })
    );

    // The redelivered record leaves the alert to its holder: the record succeeds at once.
    let response = t.stack.stream_handler.handle(batch_of(records)).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        t.sms_to(&phone).await.is_empty(),
        "not sent under a live lease"
    );

    // Once the lease lapses, the sweeper delivers it, once.
    t.wait_until("the sweeper delivers the alert", || async {
        t.sms_to(&phone).await.len() == 1
    })
    .await;
    assert!(
        SystemClock.now().0 >= lease.until.0,
        "only after the lease lapsed"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(t.sms_to(&phone).await.len(), 1, "and only once");
    let ledger = t.ledger_for("first-bill-payment").await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(crate::harness::s(&ledger[0], "status"), "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unverified_number_gets_its_code_and_nothing_else() {
    let t = TestStack::start().await;
    // Moto keeps every SMS it was sent until it restarts: a number of this process's own, so a
    // second run against the same moto starts from none.
    let phone = format!(
        "+1558{:07}",
        (u64::from(std::process::id()) * 100 + crate::harness::unique()) % 10_000_000
    );
    let (status, answer) = t
        .send(
            reqwest::Method::PUT,
            "/api/v1/user/",
            41,
            &json!({"phone": phone}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{answer}");
    t.accept("/api/v1/event/", 41, &bill(900)).await;
    t.wait_until("the first-payment alert settled", || async {
        t.ledger_for("first-bill-payment")
            .await
            .iter()
            .any(|item| crate::harness::s(item, "status") == "undeliverable")
    })
    .await;
    let ledger = t.ledger_for("first-bill-payment").await;
    assert!(
        crate::harness::s(&ledger[0], "reason").contains("is not verified"),
        "{ledger:?}"
    );
    assert!(t.sms_to(&phone).await.is_empty(), "no alert SMS");
    assert_eq!(
        t.all_sms_to(&phone).await.len(),
        1,
        "only the verification code"
    );
}

/// Five other accounts ask three times each for a code to a user's verified number: the codes
/// stop at the number's own cap, and the user's next alert still goes out.
#[tokio::test(flavor = "multi_thread")]
async fn codes_asked_for_someone_elses_number_cannot_silence_their_alerts() {
    let t = TestStack::start().await;
    let owner = 42;
    let phone = t.register_phone(owner).await;
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for account in 43..48 {
        for _ in 0..3 {
            let (status, answer) = t
                .send(
                    reqwest::Method::PUT,
                    "/api/v1/user/",
                    account,
                    &json!({"phone": phone}),
                )
                .await;
            let outcome = match status {
                reqwest::StatusCode::ACCEPTED => "accepted".to_owned(),
                _ => answer["error"]["code"].as_str().unwrap_or("?").to_owned(),
            };
            *answers.entry(outcome).or_default() += 1;
        }
    }
    // The owner's own code was the first of the number's five.
    assert_eq!(
        answers,
        std::collections::BTreeMap::from([
            ("accepted".to_owned(), 4),
            ("sms_limit".to_owned(), 11)
        ])
    );
    let codes = t.all_sms_to(&phone).await.len() - t.sms_to(&phone).await.len();
    assert_eq!(codes, 5, "codes to the number stop at its cap");

    t.accept("/api/v1/event/", owner, &bill(700)).await;
    t.wait_until("the owner's first-payment alert settled", || async {
        t.ledger_for("first-bill-payment").await.iter().any(|item| {
            !matches!(
                crate::harness::s(item, "status").as_str(),
                "pending" | "sending"
            )
        })
    })
    .await;
    let ledger = t.ledger_for("first-bill-payment").await;
    assert_eq!(
        crate::harness::s(&ledger[0], "status"),
        "sent",
        "{ledger:?}"
    );
    let texts = t.sms_to(&phone).await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].starts_with("Thanks for your first bill payment"));
}
