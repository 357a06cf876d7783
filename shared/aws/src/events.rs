//! The events table: every accepted event on its user's partition, sorted by receive time
//! (`at` = `{received_at as 12 hex digits}#{id}`), so per-user time queries read the table
//! itself and no local index caps a user's data at 10 GB (and its raw text if it failed its
//! schema at intake). No index at all: the listings across everyone and by web session are
//! written by the rules function as pages ([`crate::listing_pages`]).
//!
//! An id the client chose gets a small lookup entry beside the user's events (`#id#{id}`,
//! pointing at the event's key), written first and only if absent: a retry of that id, however
//! much later, finds it and is answered as a duplicate. An id ingest minted is a UUIDv7 of the
//! receive time ([`EventId::minted_at`]), so it needs no entry: the id alone gives the key.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};

use crate::items::{
    BATCH_WRITE_ITEMS, Item, Retention, batch_write, condition_held, corrupt, n, read_item,
    unavailable,
};
use cuba_core::absence::AbsenceCheck;
use cuba_core::absence::ports::DueChecks;
use cuba_core::model::domain::{
    EventId, IdOrigin, Insert, Millis, ReceivedEvent, StoredEvent, UserId,
};
use cuba_core::model::ports::{EventStore, PortError};
use cuba_core::model::trace::TraceContext;

/// The events table's sort key attribute.
pub const EVENTS_SORT_KEY: &str = "at";

/// Where an event received at `received_at` is stored on its user's partition. Twelve hex
/// digits hold every millisecond until the year 10889, so keys sort as receive times do.
pub fn event_sort_key(received_at: Millis, id: &EventId) -> String {
    format!("{:012x}#{}", received_at.0, id.as_str())
}

/// The sort keys bounding the events received from `from` to `to` inclusive: `#` (after the
/// time) sorts below `$`, so every id of the last millisecond is inside.
pub(super) fn time_range(from: Millis, to: Millis) -> (String, String) {
    (format!("{:012x}", from.0), format!("{:012x}$", to.0))
}

/// The receive time an event's sort key holds.
fn received_at_of(sort_key: &str) -> Option<Millis> {
    let digits = sort_key.get(..12)?;
    u64::from_str_radix(digits, 16).ok().map(Millis)
}

/// The lookup entry of a client's id. `#` sorts below every hex digit, and no event id holds
/// one, so entries and posted checks never fall inside a time range.
fn id_entry_key(id: &EventId) -> String {
    format!("#id#{}", id.as_str())
}

/// The events table's key attributes, in key order.
pub(super) const EVENTS_TABLE_KEY: &[&str] = &["user", EVENTS_SORT_KEY];

/// An events-table key.
pub(super) fn table_key(user: UserId, sort_key: String) -> Item {
    Item::from([
        ("user".to_owned(), n(user)),
        (EVENTS_SORT_KEY.to_owned(), AttributeValue::S(sort_key)),
    ])
}
/// The events table.
#[derive(Debug, Clone)]
pub struct DynamoEvents {
    client: Client,
    table: String,
    retention: Option<Retention>,
}

impl DynamoEvents {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoEvents {
            client,
            table: table.into(),
            retention: None,
        }
    }

    /// Events written from now on expire this long after they were received.
    pub fn retained_for(self, retention: Retention) -> Self {
        DynamoEvents {
            retention: Some(retention),
            ..self
        }
    }

    /// The stored form: the event's fields, and its raw text if it failed its schema.
    fn item(&self, received: &ReceivedEvent) -> Result<Item, PortError> {
        let event = &received.event;
        serde_dynamo::to_item(EventRow {
            at: event_sort_key(event.received_at, &event.id),
            event: event.clone(),
            raw: received.raw.clone(),
            invalid: false,
            synthetic: event.user.is_synthetic(),
            trace: received.trace.clone(),
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
    /// The sort key: [`event_sort_key`].
    at: String,
    #[serde(flatten)]
    event: StoredEvent,
    /// The event's JSON text exactly as the client sent it, kept only for an event that failed
    /// its schema at intake (the error log shows it); a valid event is its parsed fields alone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    raw: String,
    /// Set on events that failed their schema, so window reads leave them out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    invalid: bool,
    /// Set on the events of Cuba's own synthetic users ([`UserId::is_synthetic`]): stored,
    /// and passed over by the stream (the smoke test that stores one evaluates it itself).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    synthetic: bool,
    /// The trace of the request that sent it ([`ReceivedEvent::trace`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cuba_core::model::trace::lenient"
    )]
    trace: Option<TraceContext>,
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
            trace: row.trace,
            event: row.event,
            raw: row.raw,
            origin: IdOrigin::Client,
        }
    }
}

/// The lookup entry of an id the client chose: where its event is stored. Its key sorts
/// before every time (`#`), so no time range reads it; it expires with the event.
#[derive(Serialize, Deserialize)]
struct IdEntryRow {
    user: UserId,
    /// [`id_entry_key`].
    at: String,
    /// The event's sort key.
    stored_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

/// The attribute that makes an events-table item an id's lookup entry ([`IdEntryRow::stored_at`]).
const ID_ENTRY_ATTRIBUTE: &str = "stored_at";
/// Set on items copied from an earlier table by `cuba-local migrate-events`: their events were
/// processed when first received, so the stream passes over them.
pub const MIGRATED_ATTRIBUTE: &str = "migrated";
/// [`EventRow::synthetic`]'s attribute.
const SYNTHETIC_ATTRIBUTE: &str = "synthetic";

/// A ripe absence check posted into the user's stream: an item beside the user's events, keyed
/// `#check#{rule}#{trigger id}` (`#` never occurs in an event id), outside every time range.
#[derive(Serialize, Deserialize)]
struct DueCheckRow {
    user: UserId,
    at: String,
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

    /// Whether a stream record's new image is passed over: an id's lookup entry, an event
    /// copied by a migration (processed when first received), a synthetic user's event.
    pub fn is_passed_over(image: &serde_dynamo::Item) -> bool {
        [ID_ENTRY_ATTRIBUTE, MIGRATED_ATTRIBUTE, SYNTHETIC_ATTRIBUTE]
            .iter()
            .any(|attribute| image.contains_key(*attribute))
    }

    /// Reads a stream record's new image: none for an item [passed over](Self::is_passed_over).
    pub fn from_image(image: serde_dynamo::Item) -> Result<Option<StreamItem>, PortError> {
        if Self::is_passed_over(&image) {
            return Ok(None);
        }
        let is_due_check = Self::is_due_check(&image);
        let item: Item = image.into();
        if is_due_check {
            let image: DueCheckImage = serde_dynamo::from_item(item).map_err(corrupt)?;
            return Ok(Some(StreamItem::DueCheck(image.due_check)));
        }
        let image: EventImage = serde_dynamo::from_item(item).map_err(corrupt)?;
        Ok(Some(StreamItem::Event(ReceivedEvent {
            trace: image.trace,
            event: image.event,
            raw: image.raw,
            origin: IdOrigin::Client,
        })))
    }
}

/// A posted check as a stream record shows it: the check alone, whatever the item's key.
#[derive(Deserialize)]
struct DueCheckImage {
    due_check: AbsenceCheck,
}

/// An event as a stream record shows it: only what processing needs, so images of items
/// written by earlier versions (other listing attributes) read alike.
#[derive(Deserialize)]
struct EventImage {
    #[serde(flatten)]
    event: StoredEvent,
    #[serde(default)]
    raw: String,
    /// Absent from events stored before traces were, or sent without one.
    #[serde(default, deserialize_with = "cuba_core::model::trace::lenient")]
    trace: Option<TraceContext>,
}

#[async_trait]
impl DueChecks for DynamoEvents {
    async fn post(&self, check: &AbsenceCheck) -> Result<(), PortError> {
        let row = DueCheckRow {
            user: check.user,
            at: format!("#check#{}#{}", check.rule_id, check.event_id),
            due_check: check.clone(),
            expires_at: check.due_at.0 / 1000 + DUE_CHECK_KEPT_SECONDS,
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(row).map_err(corrupt)?))
            // A repeat (the queue redelivered the message) must not add a second record.
            .condition_expression("attribute_not_exists(#at)")
            .expression_attribute_names("#at", EVENTS_SORT_KEY)
            .send()
            .await;
        condition_held(put).map(|_| ())
    }
}

fn decode(item: Item) -> Result<ReceivedEvent, PortError> {
    let row: EventRow = serde_dynamo::from_item(item).map_err(corrupt)?;
    Ok(row.into())
}

/// An insert's outcome against the copy stored under its id: a copy equal to it, receive time
/// included, is this very write (an SDK retry of a put whose answer was lost), not a duplicate.
fn compared(stored: ReceivedEvent, event: &StoredEvent) -> Insert {
    if stored.event == *event {
        Insert::Inserted
    } else {
        Insert::Duplicate(stored.event)
    }
}

/// What a conditional put found.
pub(super) enum Put {
    Written,
    /// The key was taken already.
    Taken,
    /// DynamoDB refuses the item as it is (size, a number it cannot hold): retrying cannot
    /// help, so it is this event's refusal, not an outage.
    Refused(String),
}

impl DynamoEvents {
    /// Puts `item` only if its key is free.
    pub(super) async fn put_new(&self, item: Item) -> Result<Put, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#at)")
            .expression_attribute_names("#at", EVENTS_SORT_KEY)
            .send()
            .await;
        if let Err(e) = &put
            && e.code() == Some("ValidationException")
        {
            return Ok(Put::Refused(
                e.message()
                    .unwrap_or("DynamoDB refused the item")
                    .to_owned(),
            ));
        }
        Ok(if condition_held(put)? {
            Put::Written
        } else {
            Put::Taken
        })
    }

    /// The lookup entry of `id`, pointing at the event's key `stored_at`.
    pub(super) fn id_entry_item(
        user: UserId,
        id: &EventId,
        stored_at: String,
        expires_at: Option<u64>,
    ) -> Result<Item, PortError> {
        serde_dynamo::to_item(IdEntryRow {
            user,
            at: id_entry_key(id),
            stored_at,
            expires_at,
        })
        .map_err(corrupt)
    }

    /// Where the lookup entry of `id` says its event is stored, if the id has one.
    pub(super) async fn id_entry(
        &self,
        user: UserId,
        id: &EventId,
    ) -> Result<Option<String>, PortError> {
        let entry =
            read_item::<IdEntryRow>(&self.client, &self.table, table_key(user, id_entry_key(id)))
                .await?;
        Ok(entry.map(|e| e.stored_at))
    }

    /// The event stored under `sort_key`, read consistently.
    async fn read_at(
        &self,
        user: UserId,
        sort_key: String,
    ) -> Result<Option<ReceivedEvent>, PortError> {
        Ok(
            read_item::<EventRow>(&self.client, &self.table, table_key(user, sort_key))
                .await?
                .map(ReceivedEvent::from),
        )
    }

    /// Where the event `id` of `user` is stored, if it is: the id's lookup entry, else (a
    /// minted id, which has none) the key its own timestamp gives.
    async fn locate(
        &self,
        user: UserId,
        id: &EventId,
    ) -> Result<Option<(String, Option<ReceivedEvent>)>, PortError> {
        // A UUIDv7 is almost always one ingest minted: its own key first, one read.
        if let Some(at) = id.minted_time() {
            let sort_key = event_sort_key(at, id);
            if let Some(found) = self.read_at(user, sort_key.clone()).await? {
                return Ok(Some((sort_key, Some(found))));
            }
        }
        Ok(self.id_entry(user, id).await?.map(|at| (at, None)))
    }

    /// This write's outcome when its key was taken: the stored copy, read back. A copy equal to
    /// this one, receive time included, is this very write (the SDK retried a put whose answer
    /// was lost after it took effect), so it is an insert, not a duplicate.
    async fn read_back(
        &self,
        received: &ReceivedEvent,
        sort_key: String,
    ) -> Result<Insert, PortError> {
        let event = &received.event;
        self.read_at(event.user, sort_key)
            .await?
            .map(|stored| compared(stored, event))
            .ok_or_else(|| {
                PortError::unavailable_because(
                    "dynamodb",
                    "duplicate event vanished during read-back",
                )
            })
    }

    /// The event under its own key, the put only if the key is free.
    async fn insert_at_own_key(&self, received: &ReceivedEvent) -> Result<Insert, PortError> {
        let event = &received.event;
        match self.put_new(self.item(received)?).await? {
            Put::Written => Ok(Insert::Inserted),
            Put::Refused(reason) => Ok(Insert::Refused { reason }),
            Put::Taken => {
                self.read_back(received, event_sort_key(event.received_at, &event.id))
                    .await
            }
        }
    }

    /// An event whose id the client chose: its lookup entry first, only if the id has none, then
    /// the event. An id with an entry is a duplicate, unless the event the entry points at was
    /// never written (a crash between the two puts, or a writer still between them): then this
    /// request's body is stored there, at the entry's receive time, and the two writers' puts
    /// decide which body is kept.
    async fn insert_client_id(&self, received: &ReceivedEvent) -> Result<Insert, PortError> {
        let event = &received.event;
        if event.id.minted_time().is_some()
            && let Some((_, Some(stored))) = self.locate(event.user, &event.id).await?
        {
            // A UUIDv7 id stored under its own time, without an entry, by an earlier request.
            return Ok(compared(stored, event));
        }
        let sort_key = event_sort_key(event.received_at, &event.id);
        let entry = Self::id_entry_item(
            event.user,
            &event.id,
            sort_key,
            self.retention.map(|r| r.expires_at(event.received_at)),
        )?;
        let received = match self.put_new(entry).await? {
            Put::Written => received.clone(),
            Put::Refused(reason) => return Ok(Insert::Refused { reason }),
            Put::Taken => {
                let stored_at = self.id_entry(event.user, &event.id).await?.ok_or_else(|| {
                    PortError::unavailable_because("dynamodb", "an id's entry vanished")
                })?;
                if let Some(stored) = self.read_at(event.user, stored_at.clone()).await? {
                    return Ok(compared(stored, event));
                }
                let received_at = received_at_of(&stored_at).ok_or_else(|| {
                    PortError::corrupt(format!("id entry {} points at {}", event.id, stored_at))
                })?;
                let mut at_entry = received.clone();
                at_entry.event.received_at = received_at;
                at_entry
            }
        };
        self.insert_at_own_key(&received).await
    }

    /// Events whose ids ingest minted, in `BatchWriteItem`s of 25 without conditions (all of a
    /// batch's at once): no other request can hold their ids, and rewriting an item unchanged
    /// (an SDK retry) adds no stream record.
    async fn insert_minted(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError> {
        let mut writes = tokio::task::JoinSet::new();
        for (n, chunk) in events.chunks(BATCH_WRITE_ITEMS).enumerate() {
            let (store, chunk) = (self.clone(), chunk.to_vec());
            writes.spawn(async move { (n, store.insert_minted_chunk(&chunk).await) });
        }
        let mut chunks: Vec<Option<Vec<Insert>>> = vec![None; writes.len()];
        while let Some(joined) = writes.join_next().await {
            let (n, outcomes) = joined.map_err(|e| PortError::unavailable("dynamodb", e))?;
            chunks[n] = Some(outcomes?);
        }
        let mut outcomes = Vec::with_capacity(events.len());
        for chunk in chunks {
            outcomes.extend(chunk.ok_or_else(|| {
                PortError::unavailable_because("dynamodb", "a batch write did not report back")
            })?);
        }
        Ok(outcomes)
    }

    /// One `BatchWriteItem` of at most 25 minted events. A chunk DynamoDB refuses whole (an item
    /// over its limits) is put one by one, so the refusal is only that event's.
    async fn insert_minted_chunk(&self, chunk: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError> {
        let mut requests = Vec::with_capacity(chunk.len());
        for received in chunk {
            requests.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(self.item(received)?))
                            .build()
                            .map_err(|e| PortError::corrupt(e.to_string()))?,
                    )
                    .build(),
            );
        }
        if batch_write(&self.client, &self.table, requests).await? {
            return Ok(chunk.iter().map(|_| Insert::Inserted).collect());
        }
        let mut outcomes = Vec::with_capacity(chunk.len());
        for received in chunk {
            outcomes.push(self.insert_at_own_key(received).await?);
        }
        Ok(outcomes)
    }
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn insert(&self, received: &ReceivedEvent) -> Result<Insert, PortError> {
        match received.origin {
            IdOrigin::Minted => self.insert_at_own_key(received).await,
            IdOrigin::Client => self.insert_client_id(received).await,
        }
    }

    async fn insert_many(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError> {
        // An id the client chose gets the same conditional puts as a single insert: the same id
        // arriving at once through both endpoints, or in two batches, is stored once, and the
        // stream sees one INSERT of the body that won. The puts run concurrently, a bounded
        // number at a time. Minted ids need no condition and go in batches.
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
        let (minted, chosen): (Vec<usize>, Vec<usize>) = distinct
            .into_iter()
            .partition(|&i| events[i].origin == IdOrigin::Minted);
        let minted_events: Vec<ReceivedEvent> = minted.iter().map(|&i| events[i].clone()).collect();
        for (&i, outcome) in minted.iter().zip(self.insert_minted(&minted_events).await?) {
            outcomes[i] = Some(outcome);
        }
        for chunk in chosen.chunks(CONCURRENT_PUTS) {
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
        match self.locate(user, id).await? {
            Some((_, Some(found))) => Ok(Some(found)),
            Some((sort_key, None)) => self.read_at(user, sort_key).await,
            None => Ok(None),
        }
    }

    async fn get_received(
        &self,
        user: UserId,
        id: &EventId,
        received_at: Millis,
    ) -> Result<Option<ReceivedEvent>, PortError> {
        self.read_at(user, event_sort_key(received_at, id)).await
    }

    async fn set_invalid(
        &self,
        user: UserId,
        id: &EventId,
        received_at: Millis,
        invalid: bool,
    ) -> Result<(), PortError> {
        let sort_key = event_sort_key(received_at, id);
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(table_key(user, sort_key)))
            .condition_expression("attribute_exists(#at)")
            .expression_attribute_names("#at", EVENTS_SORT_KEY)
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
        let (low, high) = time_range(from, to);
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#user = :user AND #at BETWEEN :low AND :high")
            .expression_attribute_names("#user", "user")
            .expression_attribute_names("#at", EVENTS_SORT_KEY)
            .expression_attribute_values(":user", n(user))
            .expression_attribute_values(":low", AttributeValue::S(low))
            .expression_attribute_values(":high", AttributeValue::S(high))
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
