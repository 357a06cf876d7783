//! The events table: every accepted event, keyed (`user`, `id`) so a client's retry with the same
//! id lands on the same item, with the day bucket the listings index (and its raw text if it
//! failed its schema at intake).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::items::{
    Item, Retention, condition_held, corrupt, event_key, n, read_item, unavailable,
};
use crate::partition_keys::{ListingShards, listing_bucket};
use cuba_core::absence::AbsenceCheck;
use cuba_core::absence::ports::DueChecks;
use cuba_core::model::domain::{EventId, Insert, Millis, ReceivedEvent, StoredEvent, UserId};
use cuba_core::model::ports::{EventStore, PortError};

/// The events table's local secondary index on (`user`, `received_at`).
pub const EVENTS_BY_RECEIVED_INDEX: &str = "by_received";
/// The events table.
#[derive(Debug, Clone)]
pub struct DynamoEvents {
    client: Client,
    table: String,
    retention: Option<Retention>,
    shards: ListingShards,
}

impl DynamoEvents {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoEvents {
            client,
            table: table.into(),
            retention: None,
            shards: ListingShards::DEFAULT,
        }
    }

    /// Spreads the `by_day` listing over `shards` shards.
    pub fn sharded(self, shards: ListingShards) -> Self {
        DynamoEvents { shards, ..self }
    }

    /// Events written from now on expire this long after they were received.
    pub fn retained_for(self, retention: Retention) -> Self {
        DynamoEvents {
            retention: Some(retention),
            ..self
        }
    }

    /// The stored form: the event's fields, its raw text, and the `by_day` listing's bucket.
    fn item(&self, received: &ReceivedEvent) -> Result<Item, PortError> {
        let event = &received.event;
        serde_dynamo::to_item(EventRow {
            event: event.clone(),
            day_shard: listing_bucket(
                self.shards,
                event.received_at,
                &format!("{}/{}", event.user, event.id),
            ),
            raw: received.raw.clone(),
            invalid: false,
            expires_at: self
                .retention
                .map(|r| r.expires_at(received.event.received_at)),
        })
        .map_err(corrupt)
    }
}

/// An events-table item.
#[derive(Serialize, Deserialize)]
struct EventRow {
    #[serde(flatten)]
    event: StoredEvent,
    /// The `by_day` listing index's partition key: `{day}#{shard}`.
    day_shard: String,
    /// The event's JSON text exactly as the client sent it, kept only for an event that failed
    /// its schema at intake (the error log shows it); a valid event is its parsed fields alone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    raw: String,
    /// Set on events that failed their schema, so window reads leave them out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    invalid: bool,
    /// Epoch seconds: the table's TTL attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

/// The attribute [`EventRow::invalid`] is stored under, for update and filter expressions.
const INVALID_ATTRIBUTE: &str = "invalid";
/// How many conditional puts of one batch run at once.
const CONCURRENT_PUTS: usize = 16;

impl From<EventRow> for ReceivedEvent {
    fn from(row: EventRow) -> Self {
        ReceivedEvent {
            event: row.event,
            raw: row.raw,
        }
    }
}

/// A ripe absence check posted into the user's stream: an item beside the user's events, keyed
/// `#check#{rule}#{trigger id}` (`#` never occurs in an event id), with no `received_at` or
/// `day_shard`, so no index and no listing sees it.
#[derive(Serialize, Deserialize)]
struct DueCheckRow {
    user: UserId,
    id: String,
    due_check: AbsenceCheck,
    expires_at: u64,
}

/// The attribute that makes an events-table item a posted check ([`DueCheckRow::due_check`]).
const DUE_CHECK_ATTRIBUTE: &str = "due_check";

/// How long a posted check's item is kept: the stream has long delivered it by then.
const DUE_CHECK_KEPT_SECONDS: u64 = 2 * 24 * 3600;

/// What a record of the events table's stream carries.
#[derive(Debug)]
pub enum StreamItem {
    Event(ReceivedEvent),
    DueCheck(AbsenceCheck),
}

impl StreamItem {
    /// Whose record it is.
    pub fn user(&self) -> UserId {
        match self {
            StreamItem::Event(received) => received.event.user,
            StreamItem::DueCheck(check) => check.user,
        }
    }

    /// Whether a stream record's new image is a posted absence check rather than an event.
    pub fn is_due_check(image: &serde_dynamo::Item) -> bool {
        image.contains_key(DUE_CHECK_ATTRIBUTE)
    }

    /// Reads a stream record's new image.
    pub fn from_image(image: serde_dynamo::Item) -> Result<StreamItem, PortError> {
        let is_due_check = Self::is_due_check(&image);
        let item: Item = image.into();
        if is_due_check {
            let row: DueCheckRow = serde_dynamo::from_item(item).map_err(corrupt)?;
            return Ok(StreamItem::DueCheck(row.due_check));
        }
        let image: EventImage = serde_dynamo::from_item(item).map_err(corrupt)?;
        Ok(StreamItem::Event(ReceivedEvent {
            event: image.event,
            raw: image.raw,
        }))
    }
}

/// An event as a stream record shows it: only what processing needs, so images of items
/// written by earlier versions (other listing attributes) read alike.
#[derive(Deserialize)]
struct EventImage {
    #[serde(flatten)]
    event: StoredEvent,
    #[serde(default)]
    raw: String,
}

#[async_trait]
impl DueChecks for DynamoEvents {
    async fn post(&self, check: &AbsenceCheck) -> Result<(), PortError> {
        let row = DueCheckRow {
            user: check.user,
            id: format!("#check#{}#{}", check.rule_id, check.event_id),
            due_check: check.clone(),
            expires_at: check.due_at.0 / 1000 + DUE_CHECK_KEPT_SECONDS,
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(row).map_err(corrupt)?))
            // A repeat (the queue redelivered the message) must not add a second record.
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", "id")
            .send()
            .await;
        condition_held(put).map(|_| ())
    }
}

fn decode(item: Item) -> Result<ReceivedEvent, PortError> {
    let row: EventRow = serde_dynamo::from_item(item).map_err(corrupt)?;
    Ok(row.into())
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn insert(&self, received: &ReceivedEvent) -> Result<Insert, PortError> {
        let event = &received.event;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(received)?))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", "id")
            .send()
            .await;
        if let Err(e) = &put
            && e.code() == Some("ValidationException")
        {
            // DynamoDB refuses the item as it is (size, a number it cannot hold): retrying
            // cannot help, so it is this event's refusal, not an outage.
            return Ok(Insert::Refused {
                reason: e
                    .message()
                    .unwrap_or("DynamoDB refused the item")
                    .to_owned(),
            });
        }
        if condition_held(put)? {
            return Ok(Insert::Inserted);
        }
        // Read back the stored copy: its receive time, not this attempt's, is the truth. A copy
        // equal to this one, receive time included, is this very write: the SDK retried a put
        // whose answer was lost after it took effect (a server-minted id can be met no other
        // way), so it is an insert, not a duplicate.
        self.get(event.user, &event.id)
            .await?
            .map(|stored| {
                if stored.event == *event {
                    Insert::Inserted
                } else {
                    Insert::Duplicate(stored.event)
                }
            })
            .ok_or_else(|| {
                PortError::unavailable_because(
                    "dynamodb",
                    "duplicate event vanished during read-back",
                )
            })
    }

    async fn insert_many(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError> {
        // Every event gets the same conditional put as a single insert (BatchWriteItem cannot be
        // conditional): the same id arriving at once through both endpoints, or in two batches,
        // is stored once, and the stream sees one INSERT of the body that won. The puts run
        // concurrently, a bounded number at a time.
        let mut outcomes: Vec<Option<Insert>> = vec![None; events.len()];
        let mut first_of: HashMap<(UserId, EventId), usize> = HashMap::new();
        let mut distinct = Vec::new();
        for (i, e) in events.iter().enumerate() {
            match first_of.entry((e.event.user, e.event.id.clone())) {
                std::collections::hash_map::Entry::Occupied(_) => {}
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i);
                    distinct.push(i);
                }
            }
        }
        for chunk in distinct.chunks(CONCURRENT_PUTS) {
            let mut puts = tokio::task::JoinSet::new();
            for &i in chunk {
                let (store, received) = (self.clone(), events[i].clone());
                puts.spawn(async move { (i, store.insert(&received).await) });
            }
            while let Some(joined) = puts.join_next().await {
                let (i, outcome) = joined.map_err(|e| PortError::unavailable("dynamodb", e))?;
                outcomes[i] = Some(outcome?);
            }
        }
        // A repeat inside the call is a duplicate of what its first occurrence found or stored.
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let first = first_of[&(e.event.user, e.event.id.clone())];
                match &outcomes[first] {
                    Some(outcome) if first == i => Ok(outcome.clone()),
                    Some(Insert::Inserted) => Ok(Insert::Duplicate(events[first].event.clone())),
                    Some(Insert::Duplicate(stored)) => Ok(Insert::Duplicate(stored.clone())),
                    Some(refused @ Insert::Refused { .. }) => Ok(refused.clone()),
                    None => Err(PortError::unavailable_because(
                        "dynamodb",
                        "a put did not report back",
                    )),
                }
            })
            .collect()
    }

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ReceivedEvent>, PortError> {
        Ok(
            read_item::<EventRow>(&self.client, &self.table, event_key(user, id))
                .await?
                .map(ReceivedEvent::from),
        )
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
