//! The batch handlers at the level Lambda sees them, on the memory ports: stream batches and
//! queue batches in the JSON AWS sends, partial batch responses out.

use std::sync::Arc;
use std::time::Duration;

use cuba_core::absence::AbsenceCheck;
use cuba_core::console::ports::Browse;
use cuba_core::delivery::alert::AlertStatus;
use cuba_core::evaluation::batch_reads::DEFAULT_USER_READS_PER_BATCH;
use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::model::domain::{
    Activity, EventBody, EventId, IdOrigin, Millis, ReceivedEvent, StoredEvent, UserId,
};
use cuba_core::model::listing::EventFilter;
use cuba_core::model::ports::EventStore;
use cuba_core::rules::{RuleId, RuleSet};
use cuba_core::schemas::{DEFAULT_SCHEMAS, SchemaSet, documents_of_file};
use cuba_lambda::handlers::{
    AbsenceQueueHandler, DynamoDbEvent, STOP_BEFORE_DEADLINE, SqsEvent, StreamHandler,
};
use cuba_memory::{Fault, MemoryPorts};
use serde_json::{Value, json};

const START: Millis = Millis(1_750_000_020_000);
/// How long after its due time a check is posted.
const SETTLE_SECONDS: u32 = 30;

fn schemas() -> SchemaSet {
    let documents = documents_of_file(DEFAULT_SCHEMAS).expect("the shipped schemas");
    SchemaSet::from_documents(documents.iter().map(|d| (1, d))).0
}

struct Handlers {
    ports: Arc<MemoryPorts>,
    clock: ManualClock,
    stream: StreamHandler,
    queue: AbsenceQueueHandler,
}

fn handlers() -> Handlers {
    let ports = Arc::new(MemoryPorts::new());
    let clock = ManualClock::at(START);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let rules = ports.rule_source(RuleSet::default_rules().expect("the seed rules"));
    Handlers {
        stream: StreamHandler {
            pipeline: ports.pipeline(
                rules.clone(),
                ports.schema_source(schemas()),
                shared.clone(),
            ),
            checker: ports.absence_checker(rules.clone(), shared.clone()),
            tally: ports.tally.clone(),
            pages: ports.pages.clone(),
            user_reads_per_batch: DEFAULT_USER_READS_PER_BATCH,
        },
        queue: AbsenceQueueHandler {
            relay: ports.absence_relay(
                shared.clone(),
                Duration::from_secs(u64::from(SETTLE_SECONDS)),
            ),
        },
        ports,
        clock,
    }
}

/// A stream record as DynamoDB Streams delivers it (NEW_IMAGE view, DynamoDB JSON).
fn record(name: &str, sequence: &str, new_image: Value) -> Value {
    json!({
        "eventID": format!("id-{sequence}"),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_750_000_020,
            "Keys": {"user": new_image["user"], "at": new_image["at"]},
            "NewImage": new_image,
            "SequenceNumber": sequence,
            "SizeBytes": 120,
            "StreamViewType": "NEW_IMAGE"
        },
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/cuba-events/stream/2025-01-01T00:00:00.000"
    })
}

/// An events-table item of a bill payment, in DynamoDB JSON.
fn payment_image(user: u64, id: &str, amount: u64) -> Value {
    json!({
        "user": {"N": user.to_string()},
        "at": {"S": format!("{:012x}#{id}", START.0)},
        "id": {"S": id},
        "received_at": {"N": START.0.to_string()},
        "kind": {"S": "activity"},
        "noun": {"S": "bill"},
        "verb": {"S": "paid"},
        "properties": {"M": {"amount": {"N": amount.to_string()}, "type": {"S": "gas"}}},
        "hour": {"N": (START.0 / 3_600_000).to_string()},
        "raw": {"S": "{}"}
    })
}

fn batch(records: Vec<Value>) -> DynamoDbEvent {
    serde_json::from_value(json!({"Records": records})).expect("a stream batch")
}

fn failures(response: &impl serde::Serialize) -> Vec<String> {
    let value = serde_json::to_value(response).expect("a response");
    value["batchItemFailures"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["itemIdentifier"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_stream_batch_reports_its_earliest_failure_and_reruns_safely() {
    let h = handlers();
    let records = vec![
        record("INSERT", "100", payment_image(1, "p1", 10)),
        record("MODIFY", "101", payment_image(1, "p1", 10)),
        record(
            "INSERT",
            "102",
            json!({"user": {"N": "2"}, "at": {"S": "broken"}, "id": {"S": "broken"}}),
        ),
        record("INSERT", "103", payment_image(3, "p3", 10)),
    ];
    let response = h.stream.handle(batch(records.clone())).await;
    assert_eq!(
        failures(&response),
        ["102"],
        "Lambda retries from the failed record"
    );
    let mut alerts: Vec<UserId> = h.ports.ledger.entries().iter().map(|e| e.user).collect();
    alerts.sort();
    assert_eq!(
        alerts,
        [UserId(1), UserId(3)],
        "other users' records ran beside the failure"
    );
    assert_eq!(
        h.ports.queue.take().len(),
        2,
        "p1's and p3's absence checks"
    );

    // Lambda redelivers from the failure on: what had run changes nothing the second time.
    let again = h.stream.handle(batch(records[2..].to_vec())).await;
    assert_eq!(failures(&again), ["102"]);
    assert_eq!(h.ports.ledger.entries().len(), 2, "no alert twice");
}

/// A batch's events go into the listings across everyone before any record is processed; when
/// the pages cannot be written, nothing runs and the whole batch is retried.
#[tokio::test]
async fn a_batch_is_listed_before_it_is_processed() {
    let h = handlers();
    let records = vec![
        stored_payment(&h, 1, "p1", 10, 400).await,
        stored_payment(&h, 2, "p2", 10, 401).await,
    ];
    let everyone = EventFilter {
        user: None,
        session: None,
        kind: None,
        from: Millis(START.0 - 1000),
        to: Millis(START.0 + 1000),
    };
    let listed = || async {
        let page = h.ports.browse.events(&everyone, 10, None).await;
        let mut ids: Vec<String> = page
            .expect("listed")
            .items
            .iter()
            .map(|l| l.event.id.as_str().to_owned())
            .collect();
        ids.sort();
        ids
    };
    h.ports.faults.fail_next("pages.record", Fault::Before);
    let response = h.stream.handle(batch(records.clone())).await;
    assert_eq!(
        failures(&response),
        ["400"],
        "retried from its first record"
    );
    assert!(h.ports.ledger.entries().is_empty(), "nothing was processed");
    assert!(listed().await.is_empty());

    let retried = h.stream.handle(batch(records)).await;
    assert!(failures(&retried).is_empty());
    assert_eq!(listed().await, ["p1", "p2"]);
    assert_eq!(h.ports.ledger.entries().len(), 2, "both first payments");
}

/// Near the invocation's deadline no record is started: the rest of the batch is reported from
/// its earliest record and the retry runs it, whole and once.
#[tokio::test]
async fn records_not_started_before_the_deadline_are_left_to_the_retry() {
    let h = handlers();
    let records = vec![
        record("INSERT", "300", payment_image(1, "p1", 10)),
        record("INSERT", "301", payment_image(2, "p2", 10)),
    ];
    let late = tokio::time::Instant::now() + STOP_BEFORE_DEADLINE / 2;
    let response = h
        .stream
        .handle_until(batch(records.clone()), Some(late))
        .await;
    assert_eq!(
        failures(&response),
        ["300"],
        "retried from the first record"
    );
    assert!(h.ports.ledger.entries().is_empty(), "nothing was started");

    let in_time = tokio::time::Instant::now() + STOP_BEFORE_DEADLINE * 3;
    let retried = h.stream.handle_until(batch(records), Some(in_time)).await;
    assert!(failures(&retried).is_empty());
    assert_eq!(
        h.ports.ledger.entries().len(),
        2,
        "both first payments, once"
    );
}

#[tokio::test]
async fn a_users_failure_stops_that_user_only() {
    let h = handlers();
    let first = h
        .stream
        .handle(batch(vec![record(
            "INSERT",
            "200",
            payment_image(1, "p1", 10),
        )]))
        .await;
    assert!(failures(&first).is_empty());
    // The schema and rule reloads fail over to the sets last loaded, so the first call that
    // fails a record is the alert ledger's: user 2's first payment, the only new alert.
    h.ports.faults.fail_next("ledger.claim", Fault::Before);
    let response = h
        .stream
        .handle(batch(vec![
            record("INSERT", "201", payment_image(2, "p2", 10)),
            record("INSERT", "202", payment_image(2, "p2b", 10)),
        ]))
        .await;
    assert_eq!(failures(&response), ["201"]);
    assert!(
        h.ports.ledger.entries().iter().all(|e| e.user != UserId(2)),
        "nothing of user 2 ran past the failure"
    );
    let retried = h
        .stream
        .handle(batch(vec![
            record("INSERT", "201", payment_image(2, "p2", 10)),
            record("INSERT", "202", payment_image(2, "p2b", 10)),
        ]))
        .await;
    assert!(failures(&retried).is_empty());
    let user_2: Vec<String> = h
        .ports
        .ledger
        .entries()
        .iter()
        .filter(|e| e.user == UserId(2))
        .map(|e| e.event_ids[0].as_str().to_owned())
        .collect();
    assert_eq!(
        user_2,
        ["p2"],
        "the first payment is the first in the user's order"
    );
}

#[tokio::test]
async fn one_users_records_run_in_order_beside_other_users() {
    let h = handlers();
    let mut records = Vec::new();
    for i in 0..40u64 {
        let user = i % 4 + 1;
        records.push(record(
            "INSERT",
            &(300 + i).to_string(),
            payment_image(user, &format!("u{user}-{i:02}"), 10),
        ));
    }
    let response = h.stream.handle(batch(records)).await;
    assert!(failures(&response).is_empty());
    let mut firsts: Vec<(UserId, String)> = h
        .ports
        .ledger
        .entries()
        .iter()
        .map(|e| (e.user, e.event_ids[0].as_str().to_owned()))
        .collect();
    firsts.sort();
    assert_eq!(
        firsts,
        [
            (UserId(1), "u1-00".to_owned()),
            (UserId(2), "u2-01".to_owned()),
            (UserId(3), "u3-02".to_owned()),
            (UserId(4), "u4-03".to_owned()),
        ],
        "each user's first payment is their first record"
    );
}

fn message(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("handle-{id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1750000020000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1750000020001"
        },
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:cuba-absence-checks",
        "awsRegion": "us-east-1"
    })
}

/// A feedback's events-table item, received `seconds` after [`START`].
fn feedback_image(user: u64, id: &str, seconds: u64) -> Value {
    json!({
        "user": {"N": user.to_string()},
        "at": {"S": format!("{:012x}#{id}", START.plus_seconds(seconds).0)},
        "id": {"S": id},
        "received_at": {"N": START.plus_seconds(seconds).0.to_string()},
        "kind": {"S": "feedback"},
        "rating": {"N": "5"},
        "raw": {"S": "{}"}
    })
}

/// A ripe check as the absence-check function posts it beside the user's events.
fn due_check_image(check: &AbsenceCheck) -> Value {
    json!({
        "user": {"N": check.user.0.to_string()},
        "at": {"S": format!("#check#{}#{}", check.rule_id, check.event_id)},
        "due_check": {"M": {
            "rule_id": {"S": check.rule_id.as_str()},
            "user": {"N": check.user.0.to_string()},
            "event_id": {"S": check.event_id.as_str()},
            "received_at": {"N": check.received_at.0.to_string()},
            "due_at": {"N": check.due_at.0.to_string()}
        }},
        "expires_at": {"N": "0"}
    })
}

#[tokio::test]
async fn checks_wait_on_the_queue_until_ripe_then_are_decided_in_the_users_stream() {
    let h = handlers();
    // The table holds what the stream reports (the check reads the trigger back from it).
    let p1 = stored_payment(&h, 1, "p1", 10, 300).await;
    let p2 = stored_payment(&h, 2, "p2", 10, 301).await;
    let processed = h
        .stream
        .handle(batch(vec![
            p1,
            p2,
            record("INSERT", "302", feedback_image(2, "f2", 60)),
        ]))
        .await;
    assert!(failures(&processed).is_empty());
    let checks: Vec<AbsenceCheck> = h.ports.queue.take().into_iter().map(|q| q.check).collect();
    assert_eq!(checks.len(), 2);
    let text = |check: &AbsenceCheck| serde_json::to_string(check).expect("a check");
    let garbage = AbsenceCheck {
        trace: None,
        rule_id: RuleId::parse("bill-paid-no-feedback").expect("an id"),
        user: UserId(9),
        event_id: EventId::parse("x").expect("an id"),
        received_at: START,
        due_at: START,
    };

    // Due but not ripe: back to the queue until the settling time has passed.
    h.clock.set(START.plus_seconds(900));
    let early: SqsEvent = serde_json::from_value(json!({"Records": [
        message("m1", &text(&checks[0])),
        message("m2", "not a check"),
        message("m3", &text(&checks[1])),
    ]}))
    .expect("a queue batch");
    let response = h.queue.handle(early).await;
    assert_eq!(
        failures(&response),
        ["m2"],
        "only the unreadable message returns"
    );
    let delays: Vec<u32> = h
        .ports
        .queue
        .take()
        .iter()
        .map(|q| q.delay_seconds)
        .collect();
    assert_eq!(delays, [SETTLE_SECONDS, SETTLE_SECONDS]);
    assert!(h.ports.due.take().is_empty(), "nothing posted before ripe");

    h.clock
        .set(START.plus_seconds(900 + u64::from(SETTLE_SECONDS)));
    let ripe: SqsEvent = serde_json::from_value(json!({"Records": [
        message("m1", &text(&checks[0])),
        message("m3", &text(&checks[1])),
        message("m4", &text(&garbage)),
    ]}))
    .expect("a queue batch");
    assert!(failures(&h.queue.handle(ripe).await).is_empty());
    let posted = h.ports.due.take();
    assert_eq!(posted.len(), 3);
    assert!(
        h.ports.notifier.operator_alerts().is_empty(),
        "decided in the stream, not here"
    );

    let records = posted
        .iter()
        .enumerate()
        .map(|(i, check)| record("INSERT", &(400 + i).to_string(), due_check_image(check)))
        .collect();
    let decided = h.stream.handle(batch(records)).await;
    assert!(failures(&decided).is_empty());
    // The shipped rule groups its alerts: each is recorded `grouped`, its message sent later.
    let alerted: Vec<UserId> = h
        .ports
        .ledger
        .entries()
        .iter()
        .filter(|e| e.status == AlertStatus::Grouped)
        .map(|e| e.user)
        .collect();
    assert_eq!(
        alerted,
        [UserId(1)],
        "user 2 answered with feedback; user 9's trigger is not stored"
    );
}

/// Stores `user`'s payment `id` of `amount` as the stream reports it, and answers its record.
async fn stored_payment(h: &Handlers, user: u64, id: &str, amount: u64, sequence: u64) -> Value {
    let event = StoredEvent {
        user: UserId(user),
        id: EventId::parse(id).expect("an id"),
        received_at: START,
        body: EventBody::Activity(Activity::new(
            "bill",
            "paid",
            json!({"amount": amount, "type": "gas"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )),
    };
    h.ports
        .events
        .insert(&ReceivedEvent {
            trace: None,
            event,
            raw: "{}".into(),
            origin: IdOrigin::Client,
        })
        .await
        .expect("stored");
    record(
        "INSERT",
        &sequence.to_string(),
        payment_image(user, id, amount),
    )
}

/// A heavy user's 260 small payments in one batch, past the burst rule's bucket capacity (200),
/// beside an ordinary user's: the user's window is read from their events once for the whole
/// batch, not once per payment; the overflowed bucket, once seen, is neither recorded into nor
/// read again; and every record is processed.
#[tokio::test]
async fn a_heavy_users_window_is_read_once_per_batch() {
    let h = handlers();
    let mut records = Vec::new();
    for n in 0..260u64 {
        records.push(stored_payment(&h, 1, &format!("h{n:03}"), 1, 1000 + n).await);
    }
    records.insert(130, stored_payment(&h, 2, "o1", 10, 999).await);
    let response = h.stream.handle(batch(records)).await;
    assert!(failures(&response).is_empty(), "{response:?}");
    let reads = h.ports.faults.count("events.received_between");
    assert!(
        (1..=2).contains(&reads),
        "{reads} reads of the heavy user's events for 60 payments past the buckets"
    );
    let (recorded, read) = (
        h.ports.faults.count("windows.record"),
        h.ports.faults.count("windows.window"),
    );
    assert_eq!(
        (recorded, read),
        (202, 201),
        "recorded: 200 members, the one that overflowed, the ordinary user's; read after each but the one that overflowed"
    );
    let mut alerted: Vec<UserId> = h.ports.ledger.entries().iter().map(|e| e.user).collect();
    alerted.sort();
    assert_eq!(alerted, [UserId(1), UserId(2)], "both first payments");
}

/// A user whose records read their budget for the batch: the rest of their records wait for
/// the retry (reported from the first of them), the other users' are all processed, and each
/// retry gets at least one more of the heavy user's records done.
#[tokio::test]
async fn a_user_past_their_read_budget_waits_for_the_retry_behind_the_others() {
    let mut h = handlers();
    h.stream.user_reads_per_batch = 100;
    let mut records = Vec::new();
    for n in 0..203u64 {
        records.push(stored_payment(&h, 1, &format!("h{n:03}"), 1, 1000 + n).await);
    }
    for user in 2..6 {
        records.push(stored_payment(&h, user, &format!("o{user}"), 10, 2000 + user).await);
    }
    let response = h.stream.handle(batch(records.clone())).await;
    // The 201st payment overflows the bucket and reads the user's events (203 of them, over
    // the budget of 100): the 202nd waits.
    assert_eq!(
        failures(&response),
        ["1201"],
        "retried from the heavy user's next record"
    );
    let alerted = |h: &Handlers| {
        let mut users: Vec<UserId> = h.ports.ledger.entries().iter().map(|e| e.user).collect();
        users.sort();
        users
    };
    assert_eq!(
        alerted(&h),
        (1..6).map(UserId).collect::<Vec<_>>(),
        "every other user's first payment went out in the same invocation"
    );
    let retried = h.stream.handle(batch(records[201..].to_vec())).await;
    assert_eq!(
        failures(&retried),
        ["1202"],
        "one more of the heavy user's records done"
    );
    let last = h.stream.handle(batch(records[202..].to_vec())).await;
    assert!(failures(&last).is_empty());
    assert_eq!(h.ports.ledger.entries().len(), 5, "no alert twice");
}
