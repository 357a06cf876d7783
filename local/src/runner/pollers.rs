//! The event source mappings, as Lambda runs them: a DynamoDB stream read shard by shard in
//! batches (retried from the reported failure, then sent to the on-failure destination), and an
//! SQS queue long-polled (each failed message left for redelivery).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, anyhow};
use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use cuba_lambda::handlers::{AbsenceQueueHandler, DynamoDbEvent, SqsEvent, StreamHandler};
use serde_json::json;

use super::Progress;
use super::filters::RecordFilters;
use crate::faults::Faults;
use crate::provision::REGION;

/// The event source mapping settings the runner honours.
#[derive(Debug, Clone)]
pub(super) struct StreamMapping {
    pub(super) batch_size: i32,
    pub(super) max_retries: u32,
    pub(super) failure_queue_url: Option<String>,
    /// Under a fault plan: cuts handler invocations off part-way at the plan's rate.
    pub(super) crashes: Option<Arc<Faults>>,
    /// The mapping's `FilterCriteria`: records no filter matches never reach the handler.
    pub(super) filters: RecordFilters,
}

/// Converts a record read with the DynamoDB Streams API into the type Lambda delivers, in
/// moto's region when the record names none.
pub fn to_lambda_record(
    record: aws_sdk_dynamodbstreams::types::Record,
    stream_arn: &str,
) -> EventRecord {
    let mut out = cuba_lambda::redrive::to_lambda_record(record, stream_arn);
    if out.aws_region.is_empty() {
        out.aws_region = REGION.to_owned();
    }
    out
}

pub(super) async fn poll_stream(
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    stream_arn: String,
    mapping: StreamMapping,
    handler: StreamHandler,
    progress: Arc<Progress>,
) {
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    loop {
        if let Err(e) = discover_shards(&streams, &stream_arn, &mut iterators).await {
            tracing::warn!(error = %e, "describing the stream failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let mut idle = true;
        for (shard_id, iterator) in iterators.iter_mut() {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let page = streams
                .get_records()
                .shard_iterator(current)
                .limit(mapping.batch_size)
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(shard_id, error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(e), "reading the stream failed; retrying");
                    continue;
                }
            };
            *iterator = page.next_shard_iterator;
            let records: Vec<EventRecord> = page
                .records
                .unwrap_or_default()
                .into_iter()
                .map(|r| to_lambda_record(r, &stream_arn))
                .filter(|r| serde_json::to_value(r).is_ok_and(|json| mapping.filters.admits(&json)))
                .collect();
            if !records.is_empty() {
                idle = false;
                deliver_stream_batch(
                    &handler,
                    &sqs,
                    &mapping,
                    &stream_arn,
                    shard_id,
                    records,
                    &progress,
                )
                .await;
            }
        }
        if idle {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn discover_shards(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    iterators: &mut HashMap<String, Option<String>>,
) -> Result<()> {
    let description = streams
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .map_err(|e| anyhow!("{}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)))?
        .stream_description
        .ok_or_else(|| anyhow!("no stream description"))?;
    for shard in description.shards.unwrap_or_default() {
        let Some(shard_id) = shard.shard_id else {
            continue;
        };
        if iterators.contains_key(&shard_id) {
            continue;
        }
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(&shard_id)
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| anyhow!("{}", aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)))?
            .shard_iterator;
        iterators.insert(shard_id, iterator);
    }
    Ok(())
}

/// Where the handler's answer says the batch failed, as an index into `records`.
fn first_failure(
    response: &cuba_lambda::handlers::DynamoDbEventResponse,
    records: &[EventRecord],
) -> Option<usize> {
    response
        .batch_item_failures
        .first()
        .and_then(|f| f.item_identifier.as_deref())
        .and_then(|seq| {
            records
                .iter()
                .position(|r| r.change.sequence_number.as_deref() == Some(seq))
        })
}

/// Lambda's contract for stream batches with `ReportBatchItemFailures`: retry from the reported
/// record, up to `MaximumRetryAttempts`, then send the failed record's coordinates to the
/// on-failure destination and move on.
pub(super) async fn deliver_stream_batch(
    handler: &StreamHandler,
    sqs: &aws_sdk_sqs::Client,
    mapping: &StreamMapping,
    stream_arn: &str,
    shard_id: &str,
    mut records: Vec<EventRecord>,
    progress: &Progress,
) {
    let mut attempts = 0u32;
    while !records.is_empty() {
        let mut batch = DynamoDbEvent::default();
        batch.records = records.clone();
        let failed_at = match mapping.crashes.as_deref().filter(|f| f.strikes()) {
            // A crash (or a function timeout) part-way: Lambda retries the whole batch.
            Some(f) => {
                let cut_after = Duration::from_millis(f.below(60));
                match tokio::time::timeout(cut_after, handler.handle(batch)).await {
                    Ok(response) => first_failure(&response, &records),
                    Err(_) => {
                        f.log.record_crash();
                        tracing::warn!(shard_id, "injected crash of the rules handler");
                        Some(0)
                    }
                }
            }
            None => first_failure(&handler.handle(batch).await, &records),
        };
        let Some(index) = failed_at else {
            progress.finished(&records);
            return;
        };
        progress.finished(&records[..index]);
        records.drain(..index);
        attempts += 1;
        if attempts > mapping.max_retries {
            let failed = records.remove(0);
            tracing::error!(shard_id, sequence_number = ?failed.change.sequence_number, "stream record exhausted its retries; sending it to the on-failure destination");
            if let Some(url) = &mapping.failure_queue_url {
                let body = json!({
                    "DDBStreamBatchInfo": {
                        "shardId": shard_id,
                        "startSequenceNumber": failed.change.sequence_number,
                        "endSequenceNumber": failed.change.sequence_number,
                        "streamArn": stream_arn,
                        "batchSize": 1
                    },
                    "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": attempts}
                });
                if let Err(e) = sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(body.to_string())
                    .send()
                    .await
                {
                    tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not record the failed stream record");
                }
            }
            progress.finished(std::slice::from_ref(&failed));
            attempts = 0;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts.min(10)))).await;
    }
}

pub(super) async fn poll_queue(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    batch_size: i32,
    handler: AbsenceQueueHandler,
    progress: Arc<Progress>,
) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(batch_size.clamp(1, 10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "receiving from the delay queue failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut record = SqsMessage::default();
                record.message_id = m.message_id.clone();
                record.receipt_handle = m.receipt_handle.clone();
                record.body = m.body.clone();
                record.md5_of_body = m.md5_of_body.clone();
                record.attributes = m
                    .attributes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect();
                record.event_source = Some("aws:sqs".to_owned());
                record.aws_region = Some(REGION.to_owned());
                record
            })
            .collect();
        let response = handler.handle(event).await;
        let failed: HashSet<String> = response
            .batch_item_failures
            .into_iter()
            .filter_map(|f| f.item_identifier)
            .collect();
        for message in messages {
            if message
                .message_id
                .as_ref()
                .is_some_and(|id| failed.contains(id))
            {
                continue;
            }
            if let Some(handle) = message.receipt_handle
                && let Err(e) = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
            {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not delete a handled message; it will be redelivered");
            }
            progress.queue_messages.fetch_add(1, Ordering::SeqCst);
        }
    }
}
