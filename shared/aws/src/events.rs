//! The events table: every accepted event, keyed (`user`, `id`) so a client's retry with the same
//! id lands on the same item, with its raw text and the hour bucket the listings index.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};

use crate::browse::hour_of;
use crate::items::{Item, condition_held, corrupt, event_key, n, read_item, unavailable};
use cuba_core::domain::{EventId, Insert, Millis, ReceivedEvent, StoredEvent, UserId};
use cuba_core::ports::{EventStore, PortError};

/// The events table's local secondary index on (`user`, `received_at`).
pub const EVENTS_BY_RECEIVED_INDEX: &str = "by_received";
/// The events table.
#[derive(Debug, Clone)]
pub struct DynamoEvents {
    client: Client,
    table: String,
}

impl DynamoEvents {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoEvents {
            client,
            table: table.into(),
        }
    }

    /// The stored form: the event's fields, its raw text, and the `hour` bucket for listings.
    fn item(received: &ReceivedEvent) -> Result<Item, PortError> {
        serde_dynamo::to_item(EventRow {
            event: received.event.clone(),
            hour: hour_of(received.event.received_at),
            raw: received.raw.clone(),
            invalid: false,
        })
        .map_err(corrupt)
    }

    /// Stored copies of the given keys that exist, fetched in batches.
    async fn existing(&self, keys: &[Item]) -> Result<Vec<ReceivedEvent>, PortError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| PortError::unavailable("dynamodb", e))?;
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    found.push(decode(item)?);
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys.is_empty() => {
                        backoff(attempt, "batch read").await?;
                        pending = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// Puts items with BatchWriteItem, retrying whatever DynamoDB leaves unprocessed.
    async fn put_all(&self, items: Vec<Item>) -> Result<(), PortError> {
        for chunk in items.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| PortError::unavailable("dynamodb", e))
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                match out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                {
                    Some(rest) if !rest.is_empty() => {
                        backoff(attempt, "batch write").await?;
                        requests = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

/// An events-table item.
#[derive(Serialize, Deserialize)]
struct EventRow {
    #[serde(flatten)]
    event: StoredEvent,
    /// The `by_hour` listing index's partition key.
    hour: u64,
    /// The event's JSON text exactly as the client sent it.
    #[serde(default)]
    raw: String,
    /// Set on events that failed their schema, so window reads leave them out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    invalid: bool,
}

/// The attribute [`EventRow::invalid`] is stored under, for update and filter expressions.
const INVALID_ATTRIBUTE: &str = "invalid";
/// Tries of a partially processed batch before giving up (and answering 503).
const BATCH_ATTEMPTS: u32 = 8;

async fn backoff(attempt: u32, what: &str) -> Result<(), PortError> {
    if attempt + 1 >= BATCH_ATTEMPTS {
        return Err(PortError::unavailable_because(
            "dynamodb",
            format!("{what}: items still unprocessed after {BATCH_ATTEMPTS} attempts"),
        ));
    }
    // Exponential from 25 ms: DynamoDB leaves items unprocessed when it throttles.
    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(6))).await;
    Ok(())
}

fn decode(item: Item) -> Result<ReceivedEvent, PortError> {
    let row: EventRow = serde_dynamo::from_item(item).map_err(corrupt)?;
    Ok(ReceivedEvent {
        event: row.event,
        raw: row.raw,
    })
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn insert(&self, received: &ReceivedEvent) -> Result<Insert, PortError> {
        let event = &received.event;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(received)?))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", "id")
            .send()
            .await;
        if condition_held(put)? {
            return Ok(Insert::Inserted);
        }
        // Read back the stored copy: its receive time, not this attempt's, is the truth.
        self.get(event.user, &event.id)
            .await?
            .map(|stored| Insert::Duplicate(stored.event))
            .ok_or_else(|| {
                PortError::unavailable_because(
                    "dynamodb",
                    "duplicate event vanished during read-back",
                )
            })
    }

    async fn insert_many(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError> {
        // BatchWriteItem cannot be conditional, so look first: ids already stored are answered
        // as duplicates and not rewritten. (Two batches racing with the same new id both write
        // it; the copies differ only in receive time, and the stream sees one INSERT.)
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for e in events {
            if seen.insert((e.event.user, e.event.id.clone())) {
                keys.push(event_key(e.event.user, &e.event.id));
            }
        }
        let mut stored: HashMap<(UserId, EventId), StoredEvent> = self
            .existing(&keys)
            .await?
            .into_iter()
            .map(|r| ((r.event.user, r.event.id.clone()), r.event))
            .collect();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut items = Vec::new();
        for e in events {
            let key = (e.event.user, e.event.id.clone());
            if let Some(copy) = stored.get(&key) {
                outcomes.push(Insert::Duplicate(copy.clone()));
                continue;
            }
            items.push(Self::item(e)?);
            stored.insert(key, e.event.clone());
            outcomes.push(Insert::Inserted);
        }
        self.put_all(items).await?;
        Ok(outcomes)
    }

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ReceivedEvent>, PortError> {
        read_item(&self.client, &self.table, event_key(user, id))
            .await?
            .map(decode)
            .transpose()
    }

    async fn set_invalid(
        &self,
        user: UserId,
        id: &EventId,
        invalid: bool,
    ) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(user, id)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#invalid", INVALID_ATTRIBUTE);
        let update = if invalid {
            update
                .update_expression("SET #invalid = :t")
                .expression_attribute_values(":t", AttributeValue::Bool(true))
        } else {
            update.update_expression("REMOVE #invalid")
        };
        if condition_held(update.send().await)? {
            Ok(())
        } else {
            Err(PortError::corrupt(format!(
                "event {user}/{id} is not stored"
            )))
        }
    }

    async fn received_between(
        &self,
        user: UserId,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredEvent>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EVENTS_BY_RECEIVED_INDEX)
            .consistent_read(true)
            .key_condition_expression("#user = :user AND received_at BETWEEN :from AND :to")
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":user", n(user))
            .expression_attribute_values(":from", n(from.0))
            .expression_attribute_values(":to", n(to.0))
            .filter_expression("attribute_not_exists(#invalid)")
            .expression_attribute_names("#invalid", INVALID_ATTRIBUTE)
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(unavailable)?;
            for item in page.items.unwrap_or_default() {
                events.push(decode(item)?.event);
            }
        }
        Ok(events)
    }

    async fn all_received_between(
        &self,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Result<(Vec<StoredEvent>, bool), PortError> {
        // An operator's occasional backtest; a scan keeps the hot path free of a global index.
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(
                "received_at BETWEEN :from AND :to AND attribute_not_exists(#invalid)",
            )
            .expression_attribute_names("#invalid", INVALID_ATTRIBUTE)
            .expression_attribute_values(":from", n(from.0))
            .expression_attribute_values(":to", n(to.0))
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            for item in page.map_err(unavailable)?.items.unwrap_or_default() {
                if events.len() == limit {
                    return Ok((events, true));
                }
                events.push(decode(item)?.event);
            }
        }
        Ok((events, false))
    }
}
