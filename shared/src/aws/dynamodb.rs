use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};

use super::items::{Item, condition_held, corrupt, event_key, n, read_item, s, unavailable};
use crate::alerting::{Alert, AlertId, Delivery};
use crate::domain::{EventId, Millis, StoredEvent, UserId, UserProfile};
use crate::ports::{
    AlertLedger, Claim, EventStore, Insert, PortError, ProfileStore, ReceivedEvent, RuleState,
};
use crate::rules::{Action, RuleId};

/// The events table's local secondary index on (`user`, `received_at`).
pub const EVENTS_BY_RECEIVED_INDEX: &str = "by_received";

/// How long rule-state items outlive their purpose before DynamoDB's TTL removes them.
const STATE_TTL_GRACE_SECONDS: u64 = 24 * 60 * 60;

/// Events, keyed by (`user`, `id`) so a client's retry with the same id lands on the same item.
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
        let mut item: Item = serde_dynamo::to_item(&received.event).map_err(corrupt)?;
        item.insert(
            "hour".to_owned(),
            n(super::hour_of(received.event.received_at)),
        );
        item.insert(RAW_ATTRIBUTE.to_owned(), s(&received.raw));
        Ok(item)
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

/// The attribute holding the event's JSON text exactly as the client sent it.
const RAW_ATTRIBUTE: &str = "raw";
/// Present (true) on events that failed their schema.
const INVALID_ATTRIBUTE: &str = "invalid";
/// Tries of a partially processed batch before giving up (and answering 503).
const BATCH_ATTEMPTS: u32 = 8;

async fn backoff(attempt: u32, what: &str) -> Result<(), PortError> {
    if attempt + 1 >= BATCH_ATTEMPTS {
        return Err(PortError::unavailable(
            "dynamodb",
            format!("{what}: items still unprocessed after {BATCH_ATTEMPTS} attempts"),
        ));
    }
    // Exponential from 25 ms: DynamoDB leaves items unprocessed when it throttles.
    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(6))).await;
    Ok(())
}

fn decode(mut item: Item) -> Result<ReceivedEvent, PortError> {
    let raw = match item.remove(RAW_ATTRIBUTE) {
        Some(AttributeValue::S(raw)) => raw,
        _ => String::new(),
    };
    Ok(ReceivedEvent {
        event: serde_dynamo::from_item(item).map_err(corrupt)?,
        raw,
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
                PortError::unavailable("dynamodb", "duplicate event vanished during read-back")
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
            Err(PortError::Corrupt(format!(
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

#[derive(Debug, Clone)]
pub struct DynamoProfiles {
    client: Client,
    table: String,
}

impl DynamoProfiles {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoProfiles {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl ProfileStore for DynamoProfiles {
    async fn put_profile(&self, profile: &UserProfile) -> Result<(), PortError> {
        let item: Item = serde_dynamo::to_item(profile).map_err(corrupt)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn profile(&self, user: UserId) -> Result<Option<UserProfile>, PortError> {
        let key = Item::from([("user".to_owned(), n(user))]);
        read_item(&self.client, &self.table, key)
            .await?
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)
    }
}

/// First-occurrence markers and cooldowns, one item each, claimed with conditional writes.
#[derive(Debug, Clone)]
pub struct DynamoRuleState {
    client: Client,
    table: String,
}

impl DynamoRuleState {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRuleState {
            client,
            table: table.into(),
        }
    }

    /// Runs a conditional put; `Ok(false)` when the condition did not hold.
    async fn conditional_put(
        &self,
        item: Item,
        condition: &str,
        values: Item,
    ) -> Result<bool, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        condition_held(put)
    }
}

#[async_trait]
impl RuleState for DynamoRuleState {
    async fn claim_first(
        &self,
        rule: &RuleId,
        user: UserId,
        event: &EventId,
    ) -> Result<bool, PortError> {
        let item = Item::from([
            ("pk".to_owned(), s(format!("first#{rule}#{user}"))),
            ("event_id".to_owned(), s(event.as_str())),
        ]);
        let values = Item::from([(":event".to_owned(), s(event.as_str()))]);
        self.conditional_put(
            item,
            "attribute_not_exists(pk) OR event_id = :event",
            values,
        )
        .await
    }

    async fn claim_cooldown(
        &self,
        rule: &RuleId,
        user: UserId,
        event: &EventId,
        at: Millis,
        until: Millis,
    ) -> Result<bool, PortError> {
        let item = Item::from([
            ("pk".to_owned(), s(format!("cooldown#{rule}#{user}"))),
            ("event_id".to_owned(), s(event.as_str())),
            ("cooldown_until".to_owned(), n(until.0)),
            (
                "expires_at".to_owned(),
                n(until.0 / 1000 + STATE_TTL_GRACE_SECONDS),
            ),
        ]);
        let values = Item::from([
            (":event".to_owned(), s(event.as_str())),
            (":at".to_owned(), n(at.0)),
        ]);
        self.conditional_put(
            item,
            "attribute_not_exists(pk) OR cooldown_until <= :at OR event_id = :event",
            values,
        )
        .await
    }

    async fn first_holder(
        &self,
        rule: &RuleId,
        user: UserId,
    ) -> Result<Option<EventId>, PortError> {
        let key = Item::from([("pk".to_owned(), s(format!("first#{rule}#{user}")))]);
        Ok(read_item(&self.client, &self.table, key)
            .await?
            .and_then(|item| item.get("event_id").and_then(|v| v.as_s().ok()).cloned())
            .and_then(|id| EventId::parse(&id).ok()))
    }

    async fn cooldown_until(
        &self,
        rule: &RuleId,
        user: UserId,
    ) -> Result<Option<Millis>, PortError> {
        let key = Item::from([("pk".to_owned(), s(format!("cooldown#{rule}#{user}")))]);
        Ok(read_item(&self.client, &self.table, key)
            .await?
            .and_then(|item| {
                item.get("cooldown_until")
                    .and_then(|v| v.as_n().ok())
                    .cloned()
            })
            .and_then(|n| n.parse().ok())
            .map(Millis))
    }
}

/// Fired alerts, one item per alert id, with their delivery status.
#[derive(Debug, Clone)]
pub struct DynamoAlertLedger {
    client: Client,
    table: String,
}

impl DynamoAlertLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoAlertLedger {
            client,
            table: table.into(),
        }
    }
}

const PENDING: &str = "pending";

#[async_trait]
impl AlertLedger for DynamoAlertLedger {
    async fn claim(
        &self,
        alert: &Alert,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Claim, PortError> {
        let (action, severity) = match alert.action {
            Action::SmsUser => ("sms_user", None),
            Action::NotifyOperator { severity } => ("notify_operator", Some(severity.as_str())),
        };
        let mut item = Item::from([
            ("alert_id".to_owned(), s(alert.id.as_str())),
            ("rule_id".to_owned(), s(alert.rule_id.as_str())),
            ("user".to_owned(), n(alert.user)),
            (
                "event_ids".to_owned(),
                AttributeValue::L(alert.event_ids.iter().map(|e| s(e.as_str())).collect()),
            ),
            ("action".to_owned(), s(action)),
            ("text".to_owned(), s(alert.text.clone())),
            ("fired_at".to_owned(), n(alert.fired_at.0)),
            ("hour".to_owned(), n(super::hour_of(alert.fired_at))),
            ("status".to_owned(), s(PENDING)),
            ("lease_until".to_owned(), n(lease_until.0)),
        ]);
        if let Some(severity) = severity {
            item.insert("severity".to_owned(), s(severity));
        }
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(alert_id) OR (#status = :pending AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":now", n(now.0))
            .send()
            .await;
        if condition_held(put)? {
            return Ok(Claim::Claimed);
        }
        let key = Item::from([("alert_id".to_owned(), s(alert.id.as_str()))]);
        let item = read_item(&self.client, &self.table, key)
            .await?
            .unwrap_or_default();
        let status = item.get("status").and_then(|v| v.as_s().ok());
        let lease_until = item
            .get("lease_until")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .map_or(now, Millis);
        Ok(match status.map(String::as_str) {
            // `None`: deleted by hand between the two calls; claiming again will work.
            Some(PENDING) | None => Claim::InFlight { lease_until },
            Some(_) => Claim::AlreadySettled,
        })
    }

    async fn settle(
        &self,
        id: &AlertId,
        delivery: &Delivery,
        now: Millis,
    ) -> Result<(), PortError> {
        let (status, detail_name, detail) = match delivery {
            Delivery::Sent { message_id } => ("sent", "message_id", message_id),
            Delivery::Undeliverable { reason } => ("undeliverable", "reason", reason),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .key("alert_id", s(id.as_str()))
            .update_expression(
                "SET #status = :status, settled_at = :now, #detail = :detail REMOVE lease_until",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#detail", detail_name)
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":now", n(now.0))
            .expression_attribute_values(":detail", s(detail.clone()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release(&self, id: &AlertId, error: &str) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("alert_id", s(id.as_str()))
            .update_expression("SET lease_until = :zero, last_error = :error ADD attempts :one")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(PENDING))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":error", s(error.chars().take(1000).collect::<String>()))
            .send()
            .await;
        // A failed condition means the alert was settled meanwhile: nothing to release.
        condition_held(update).map(|_| ())
    }
}
