//! Stream records whose retries ran out, processed again. Lambda sends such a record's
//! coordinates (shard, first and last sequence number) to the stream mapping's on-failure
//! queue; the event itself is still in the table and the record still in the stream for 24
//! hours. A redrive reads each message, the records it names from the stream, and hands them to
//! the same [`StreamHandler`] the mapping invokes (idempotent: a record that did get through
//! sends nothing twice), deleting the message once they all succeed.
//!
//! The rules function runs it when invoked with `{"redrive": {}}` (`aws lambda invoke`); the
//! admin function, from the console ([`ConsoleRedrive`]).

use aws_lambda_events::dynamodb::{EventRecord, StreamRecord, StreamViewType};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::Deserialize;
use serde_json::json;

use tokio::time::Instant;

use async_trait::async_trait;
pub use cuba_core::console::redrive::RedriveReport;
use cuba_core::console::redrive::StreamRedrive;
use cuba_core::model::ports::PortError;

use crate::handlers::{DynamoDbEvent, STOP_BEFORE_DEADLINE, StreamHandler};

/// Messages one redrive takes from the queue; run it again for more.
pub const MAX_MESSAGES: usize = 100;
/// Stream pages read for one message before giving up on reaching its last record.
const MAX_PAGES: usize = 20;

/// Where failed records are recorded, and the stream they are read back from.
#[derive(Clone)]
pub struct StreamFailures {
    pub sqs: aws_sdk_sqs::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub queue_url: String,
}

/// Lambda's on-failure record of a DynamoDB stream batch.
#[derive(Debug, Deserialize)]
struct FailureRecord {
    #[serde(rename = "DDBStreamBatchInfo")]
    batch: BatchInfo,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchInfo {
    shard_id: String,
    start_sequence_number: String,
    end_sequence_number: String,
    stream_arn: String,
}

/// Why a message's records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    #[error("the stream no longer holds the records")]
    Expired,
    #[error("reading the stream failed: {0}")]
    Stream(String),
}

/// Stream sequence numbers are decimal strings of up to 40 digits: compared as numbers.
fn at_or_before(sequence: &str, last: &str) -> bool {
    (sequence.len(), sequence) <= (last.len(), last)
}

impl StreamFailures {
    /// The records `batch` names, read from the stream.
    async fn records(&self, batch: &BatchInfo) -> Result<Vec<EventRecord>, ReadFailure> {
        let iterator = self
            .streams
            .get_shard_iterator()
            .stream_arn(&batch.stream_arn)
            .shard_id(&batch.shard_id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(&batch.start_sequence_number)
            .send()
            .await
            .map_err(|e| {
                let e = e.into_service_error();
                if e.is_trimmed_data_access_exception() || e.is_resource_not_found_exception() {
                    ReadFailure::Expired
                } else {
                    ReadFailure::Stream(e.to_string())
                }
            })?
            .shard_iterator;
        let mut records = Vec::new();
        let mut next = iterator;
        for _ in 0..MAX_PAGES {
            let Some(current) = next else { break };
            let page = self
                .streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .map_err(|e| ReadFailure::Stream(e.into_service_error().to_string()))?;
            for record in page.records.unwrap_or_default() {
                let sequence = record
                    .dynamodb
                    .as_ref()
                    .and_then(|c| c.sequence_number.clone())
                    .unwrap_or_default();
                if !at_or_before(&sequence, &batch.end_sequence_number) {
                    return Ok(records);
                }
                let last = sequence == batch.end_sequence_number;
                records.push(to_lambda_record(record, &batch.stream_arn));
                if last {
                    return Ok(records);
                }
            }
            next = page.next_shard_iterator;
        }
        if records.is_empty() {
            return Err(ReadFailure::Expired);
        }
        Ok(records)
    }

    async fn delete(&self, receipt: &str) {
        if let Err(e) = self
            .sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            // Left on the queue: the next redrive processes its records again, which sends
            // nothing twice.
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not delete a redriven failure record");
        }
    }

    /// Reads up to `max` messages and redrives each through `handler`, within an invocation
    /// that ends at `deadline`: no message is started later than twice
    /// [`STOP_BEFORE_DEADLINE`] before it (the rest wait for the next redrive), and the
    /// records of one are handled as the stream's are near a deadline.
    pub async fn redrive(
        &self,
        handler: &StreamHandler,
        max: usize,
        deadline: Option<Instant>,
    ) -> RedriveReport {
        let mut report = RedriveReport::default();
        let out_of_time =
            || deadline.is_some_and(|d| Instant::now() + STOP_BEFORE_DEADLINE * 2 >= d);
        while report.messages < max && !out_of_time() {
            let wanted = (max - report.messages).min(10) as i32;
            let received = match self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(wanted)
                .wait_time_seconds(0)
                .send()
                .await
            {
                Ok(received) => received.messages.unwrap_or_default(),
                Err(e) => {
                    tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not read the stream failure queue");
                    break;
                }
            };
            if received.is_empty() {
                break;
            }
            for message in received {
                if out_of_time() {
                    // Not taken: it comes back on the queue once its visibility lapses.
                    report.left_for_later += 1;
                    continue;
                }
                report.messages += 1;
                let parsed = message
                    .body
                    .as_deref()
                    .map(serde_json::from_str::<FailureRecord>);
                let Some(Ok(FailureRecord { batch })) = parsed else {
                    report.unreadable += 1;
                    tracing::error!(message_id = ?message.message_id, "not a stream failure record; left on the queue");
                    continue;
                };
                let records = match self.records(&batch).await {
                    Ok(records) => records,
                    Err(ReadFailure::Expired) => {
                        report.expired += 1;
                        tracing::error!(
                            shard_id = batch.shard_id,
                            first = batch.start_sequence_number,
                            last = batch.end_sequence_number,
                            "the stream no longer holds these records; left on the queue"
                        );
                        continue;
                    }
                    Err(e) => {
                        report.still_failing += 1;
                        tracing::error!(error = %e, "could not read a failed batch's records");
                        continue;
                    }
                };
                let count = records.len();
                let mut batch_event = DynamoDbEvent::default();
                batch_event.records = records;
                let answer = handler.handle_until(batch_event, deadline).await;
                if answer.batch_item_failures.is_empty() {
                    report.redriven += 1;
                    report.records += count;
                    if let Some(receipt) = &message.receipt_handle {
                        self.delete(receipt).await;
                    }
                } else {
                    report.still_failing += 1;
                    tracing::error!(
                        shard_id = batch.shard_id,
                        "a redriven batch failed again; left on the queue"
                    );
                }
            }
        }
        tracing::info!(?report, "stream failures redriven");
        report
    }
}

/// Converts a record read with the DynamoDB Streams API into the type Lambda delivers.
pub fn to_lambda_record(
    record: aws_sdk_dynamodbstreams::types::Record,
    stream_arn: &str,
) -> EventRecord {
    let mut out = EventRecord::default();
    out.aws_region = record.aws_region.unwrap_or_default();
    out.event_id = record.event_id.unwrap_or_default();
    out.event_name = record
        .event_name
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    out.event_source = Some("aws:dynamodb".to_owned());
    out.event_version = record.event_version;
    out.event_source_arn = Some(stream_arn.to_owned());
    if let Some(change) = record.dynamodb {
        let mut stream_record = StreamRecord::default();
        if let Some(at) = change.approximate_creation_date_time
            && let Some(at) = chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())
        {
            stream_record.approximate_creation_date_time = at;
        }
        stream_record.keys = serde_dynamo::Item::from(change.keys.unwrap_or_default());
        stream_record.new_image = serde_dynamo::Item::from(change.new_image.unwrap_or_default());
        stream_record.old_image = serde_dynamo::Item::from(change.old_image.unwrap_or_default());
        stream_record.sequence_number = change.sequence_number;
        stream_record.size_bytes = change.size_bytes.unwrap_or_default();
        stream_record.stream_view_type = change
            .stream_view_type
            .and_then(|v| serde_json::from_value::<StreamViewType>(json!(v.as_str())).ok());
        out.change = stream_record;
    }
    out
}

/// The console's redrive: the failure queue and the stream handler the redrive hands records to.
pub struct ConsoleRedrive {
    pub failures: StreamFailures,
    pub handler: StreamHandler,
}

#[async_trait]
impl StreamRedrive for ConsoleRedrive {
    async fn waiting(&self) -> Result<u64, PortError> {
        use aws_sdk_sqs::types::QueueAttributeName as Name;
        let counted = [
            Name::ApproximateNumberOfMessages,
            Name::ApproximateNumberOfMessagesNotVisible,
        ];
        let attributes = self
            .failures
            .sqs
            .get_queue_attributes()
            .queue_url(&self.failures.queue_url)
            .set_attribute_names(Some(counted.to_vec()))
            .send()
            .await
            .map_err(|e| PortError::unavailable("SQS", e.into_service_error()))?
            .attributes
            .unwrap_or_default();
        Ok(counted
            .iter()
            .filter_map(|name| attributes.get(name).and_then(|n| n.parse::<u64>().ok()))
            .sum())
    }

    async fn redrive(&self, within: std::time::Duration) -> RedriveReport {
        self.failures
            .redrive(&self.handler, MAX_MESSAGES, Some(Instant::now() + within))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(at_or_before("99", "100"));
        assert!(at_or_before("100", "100"));
        assert!(!at_or_before("101", "100"));
        assert!(!at_or_before("1000", "999"));
    }

    #[test]
    fn lambdas_failure_record_is_read() {
        let body = r#"{"requestContext": {"condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {"shardId": "shardId-1", "startSequenceNumber": "100",
            "endSequenceNumber": "102", "approximateArrivalOfFirstRecord": "2026-12-04T00:00:00Z",
            "batchSize": 3, "streamArn": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"}}"#;
        let record: FailureRecord = serde_json::from_str(body).unwrap();
        assert_eq!(record.batch.shard_id, "shardId-1");
        assert_eq!(record.batch.end_sequence_number, "102");
    }
}
