//! Records whose retries ran out, processed again: the redrive the rules function runs when
//! invoked with `{"redrive": {}}` (and the admin console's action).

use std::collections::BTreeMap;

use cuba_lambda::redrive::StreamFailures;
use cuba_local::faults::FaultPlan;
use reqwest::StatusCode;
use serde_json::json;

use crate::deliveries::{stream_records, stream_shards};
use crate::harness::{Options, TestStack, bill, n, queue_messages, s};

fn failure_queue(t: &TestStack) -> String {
    t.stack
        .provisioned
        .queue_url("StreamFailureQueue")
        .expect("the failure queue")
        .to_owned()
}

/// Lambda's on-failure record (as it puts it on the failure queue) for the stream record of the
/// event `event_id`.
pub async fn failure_record(t: &TestStack, event_id: &str) -> serde_json::Value {
    let record = stream_records(t)
        .await
        .into_iter()
        .find(|r| {
            r.change.new_image.get("id")
                == Some(&serde_dynamo::AttributeValue::S(event_id.to_owned()))
        })
        .expect("the event's stream record");
    let sequence = record
        .change
        .sequence_number
        .clone()
        .expect("a sequence number");
    let shard_id = stream_shards(t).await.remove(0);
    json!({
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence,
            "endSequenceNumber": sequence,
            "approximateArrivalOfFirstRecord": "2026-12-04T00:00:00Z",
            "batchSize": 1,
            "streamArn": t.stack.stream_arn,
        }
    })
}

/// Puts `body` on the stack's stream failure queue, as Lambda does with a failure record when a
/// record's retries run out.
pub async fn queue_failure(t: &TestStack, body: &str) {
    aws_sdk_sqs::Client::new(&t.sdk)
        .send_message()
        .queue_url(failure_queue(t))
        .message_body(body)
        .send()
        .await
        .expect("queued");
}

/// A record whose retries ran out (its coordinates on the stream failure queue, as Lambda puts
/// them there) is processed again by a redrive: its first-payment SMS goes out, the message
/// leaves the queue; a second failure record for the same record sends nothing twice; a message
/// that is not a failure record stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_redrive_processes_again_what_ran_out_of_retries_once() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let phone = t.register_phone(23).await;
    let id = t.accept("/api/v1/event/", 23, &bill(700)).await;
    let failure = failure_record(&t, &id).await;
    queue_failure(&t, &failure.to_string()).await;
    let failures = StreamFailures {
        sqs: aws_sdk_sqs::Client::new(&t.sdk),
        streams: aws_sdk_dynamodbstreams::Client::new(&t.sdk),
        queue_url: failure_queue(&t),
    };
    let report = failures.redrive(&t.stack.stream_handler, 10, None).await;
    assert_eq!(
        (report.messages, report.redriven, report.records),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!(t.sms_to(&phone).await.len(), 1, "the first payment's SMS");

    queue_failure(&t, &failure.to_string()).await;
    queue_failure(&t, "{\"not\": \"a failure record\"}").await;
    let report = failures.redrive(&t.stack.stream_handler, 10, None).await;
    assert_eq!(
        (report.messages, report.redriven, report.unreadable),
        (2, 1, 1),
        "{report:?}"
    );
    assert_eq!(t.sms_to(&phone).await.len(), 1, "nothing sent twice");
    assert_eq!(
        queue_messages(&t, "StreamFailureQueue").await,
        1,
        "only the unreadable message is left"
    );
}

/// A run whose faults exhaust the retries of some records: twelve users' first payments handed
/// to the rules handler as Lambda's stream mapping would (retried from each reported failure,
/// twice here, then sent to the on-failure queue) while half of the handlers' AWS calls fail.
/// Once the faults are over, the console shows how many records wait and redrives them: every
/// user's alert is in the ledger once, no SMS goes out twice, and the failure queue is empty.
#[tokio::test(flavor = "multi_thread")]
async fn what_faults_left_on_the_failure_queue_is_redriven_once_they_pass() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        faults: Some(FaultPlan {
            seed: 0x5EED_FA17,
            rate: 0.0,
        }),
        ..Options::default()
    })
    .await;
    let users: Vec<u64> = (80..92).collect();
    let mut phones = BTreeMap::new();
    for &user in &users {
        let phone = format!(
            "+1555{:03}{:04}",
            uuid::Uuid::new_v4().as_u128() % 1000,
            user
        );
        t.verified_phone(user, &phone).await;
        t.accept("/api/v1/event/", user, &bill(300)).await;
        phones.insert(user, phone);
    }
    let records = stream_records(&t).await;
    assert_eq!(records.len(), users.len());
    let shard = stream_shards(&t).await.remove(0);
    let faults = t.stack.faults.clone().expect("a fault plan");
    faults.set_rate(0.5);
    t.stack.deliver_stream_records(&shard, records, 2).await;
    faults.set_rate(0.0);
    let failed = queue_messages(&t, "StreamFailureQueue").await;
    // At this rate most records run out of retries (11 of 12 in the runs here).
    assert!(failed > 0, "no record ran out of retries");

    // The console's action: how many wait, then the redrive.
    let (status, waiting) = t
        .admin(reqwest::Method::GET, "/admin/api/stream-failures", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{waiting}");
    assert_eq!(waiting["waiting"], failed as u64, "{waiting}");
    let (status, report) = t
        .admin(
            reqwest::Method::POST,
            "/admin/api/stream-failures/redrive",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (
            &report["messages"],
            &report["redriven"],
            &report["still_failing"]
        ),
        (&json!(failed), &json!(failed), &json!(0)),
        "{report}"
    );
    assert_eq!(queue_messages(&t, "StreamFailureQueue").await, 0);
    let ledger = t.ledger().await;
    let mut alerted: Vec<u64> = ledger.iter().filter_map(|item| n(item, "user")).collect();
    alerted.sort_unstable();
    assert_eq!(alerted, users, "every user's first payment alerted, once");
    for (user, phone) in &phones {
        let sms = t.sms_to(phone).await;
        assert!(sms.len() <= 1, "user {user}: {sms:?}");
        let sent = ledger
            .iter()
            .any(|item| n(item, "user") == Some(*user) && s(item, "status") == "sent");
        if sent {
            assert_eq!(sms.len(), 1, "user {user}'s alert is sent: {sms:?}");
        }
    }
}
