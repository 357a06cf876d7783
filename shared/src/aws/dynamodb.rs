use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{Item, condition_held, corrupt, n, read_item, s, unavailable};
use crate::alerting::{Alert, AlertId, Delivery};
use crate::domain::{EventId, Millis, StoredEvent, UserId, UserProfile};
use crate::ports::{AlertLedger, Claim, EventStore, Insert, PortError, ProfileStore, RuleState};
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

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<StoredEvent>, PortError> {
        let key = Item::from([
            ("user".to_owned(), n(user)),
            ("id".to_owned(), s(id.as_str())),
        ]);
        read_item(&self.client, &self.table, key)
            .await?
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)
    }
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn insert(&self, event: &StoredEvent) -> Result<Insert, PortError> {
        let mut item: Item = serde_dynamo::to_item(event).map_err(corrupt)?;
        item.insert("hour".to_owned(), n(super::hour_of(event.received_at)));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
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
            .map(Insert::Duplicate)
            .ok_or_else(|| {
                PortError::unavailable("dynamodb", "duplicate event vanished during read-back")
            })
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
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(unavailable)?;
            for item in page.items.unwrap_or_default() {
                events.push(serde_dynamo::from_item(item).map_err(corrupt)?);
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
            .filter_expression("received_at BETWEEN :from AND :to")
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
                events.push(serde_dynamo::from_item(item).map_err(corrupt)?);
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
