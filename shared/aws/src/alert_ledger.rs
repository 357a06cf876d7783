//! The alerts table: the ledger of fired alerts, one item per alert id, with its delivery status.
//! A worker claims an alert with a conditional put (and a lease), delivers it, then settles it;
//! a retry finds it settled and sends nothing.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::items::{Item, Retention, condition_held, corrupt, read_item, unavailable, value};
use crate::partition_keys::{
    ListingShards, UNSETTLED_ALERTS, listing_bucket, rule_bucket, unsettled_bucket,
};
use cuba_core::delivery::alert::{
    Alert, AlertEntry, AlertId, AlertStatus, Claim, ClaimToken, Delivery, Lease,
};
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;

/// The sparse index of unsettled alerts, by lease end: what the sweeper reads. Only `pending`
/// and `sending` items carry its key attribute, so it holds exactly the alerts in flight.
pub const ALERTS_UNSETTLED_INDEX: &str = "by_lease";

/// An alerts-table item: the entry operators browse, plus what only the table needs.
#[derive(Serialize, Deserialize)]
struct AlertRow {
    #[serde(flatten)]
    entry: AlertEntry,
    /// The `by_day` listing index's partition key: `{day}#{shard}`.
    day_shard: String,
    /// The `by_rule` index's partition key: `{rule}#{shard}`.
    rule_shard: String,
    /// While unsettled: until when the worker holds the alert (and the `by_lease` sort key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_until: Option<Millis>,
    /// While claimed or sending: who holds the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim_token: Option<ClaimToken>,
    /// While unsettled: the `by_lease` partition key, `u#{shard}` (every alert writes it about
    /// three times, so it is sharded like the listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unsettled: Option<String>,
    /// Epoch seconds: the table's TTL attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

/// What a failed claim reads back.
#[derive(Deserialize)]
struct LeaseRow {
    status: AlertStatus,
    #[serde(default)]
    lease_until: Option<Millis>,
    #[serde(default)]
    claim_token: Option<ClaimToken>,
}

#[derive(Debug, Clone)]
pub struct DynamoAlertLedger {
    client: Client,
    table: String,
    retention: Option<Retention>,
    shards: ListingShards,
}

impl DynamoAlertLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoAlertLedger {
            client,
            table: table.into(),
            retention: None,
            shards: ListingShards::DEFAULT,
        }
    }

    /// Spreads the `by_day`, `by_rule` and `by_lease` indexes over `shards` shards.
    pub fn sharded(self, shards: ListingShards) -> Self {
        DynamoAlertLedger { shards, ..self }
    }

    /// Alerts expire this long after they fired. (A `first` rule's alert expiring does not let
    /// it fire again: the rule state's first-occurrence marker is kept.)
    pub fn retained_for(self, retention: Retention) -> Self {
        DynamoAlertLedger {
            retention: Some(retention),
            ..self
        }
    }

    fn key(id: &AlertId) -> Result<Item, PortError> {
        Ok(Item::from([("alert_id".to_owned(), value(id)?)]))
    }

    async fn lease(&self, id: &AlertId) -> Result<Option<LeaseRow>, PortError> {
        read_item(&self.client, &self.table, Self::key(id)?).await
    }
}

#[async_trait]
impl AlertLedger for DynamoAlertLedger {
    async fn claim(&self, alert: &Alert, now: Millis, lease: &Lease) -> Result<Claim, PortError> {
        let lease_until = lease.until;
        let row = AlertRow {
            entry: AlertEntry::pending(alert),
            day_shard: listing_bucket(self.shards, alert.fired_at, alert.id.as_str()),
            rule_shard: rule_bucket(self.shards, &alert.rule_id, alert.id.as_str()),
            lease_until: Some(lease_until),
            claim_token: Some(lease.holder.clone()),
            unsettled: Some(unsettled_bucket(self.shards, alert.id.as_str())),
            expires_at: self.retention.map(|r| r.expires_at(alert.fired_at)),
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(row).map_err(corrupt)?))
            .condition_expression(
                "attribute_not_exists(alert_id) \
                 OR (#status IN (:pending, :deferred) AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(AlertStatus::Pending)?)
            .expression_attribute_values(":deferred", value(AlertStatus::Deferred)?)
            .expression_attribute_values(":now", value(now)?)
            .send()
            .await;
        if condition_held(put)? {
            return Ok(Claim::Claimed { lease_until });
        }
        Ok(match self.lease(&alert.id).await? {
            // Deleted by hand between the two calls; claiming again will work.
            None => Claim::InFlight { lease_until: now },
            Some(LeaseRow { status, .. }) if status.is_settled() => Claim::AlreadySettled,
            Some(LeaseRow {
                status: AlertStatus::Sending,
                lease_until: held,
                ..
            }) => match held {
                Some(held) if held >= now => Claim::InFlight { lease_until: held },
                _ => Claim::Abandoned,
            },
            // This very claim took effect and its answer was lost (the SDK retried it).
            Some(LeaseRow {
                claim_token: Some(holder),
                ..
            }) if holder == lease.holder => Claim::Claimed { lease_until },
            Some(LeaseRow { lease_until, .. }) => Claim::InFlight {
                lease_until: lease_until.unwrap_or(now),
            },
        })
    }

    async fn mark_sending(
        &self,
        id: &AlertId,
        holder: &ClaimToken,
        sending_until: Millis,
    ) -> Result<bool, PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression("SET #status = :sending, lease_until = :sending_until")
            .condition_expression("#status = :pending AND claim_token = :holder")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(AlertStatus::Pending)?)
            .expression_attribute_values(":sending", value(AlertStatus::Sending)?)
            .expression_attribute_values(":holder", value(holder)?)
            .expression_attribute_values(":sending_until", value(sending_until)?)
            .send()
            .await;
        if condition_held(update)? {
            return Ok(true);
        }
        // A repeat of a mark that took effect finds the alert as it left it.
        Ok(matches!(
            self.lease(id).await?,
            Some(LeaseRow { status: AlertStatus::Sending, claim_token: Some(held), .. }) if &held == holder
        ))
    }

    async fn settle(
        &self,
        id: &AlertId,
        delivery: &Delivery,
        now: Millis,
    ) -> Result<(), PortError> {
        let (detail_name, detail) = delivery.detail();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression(
                "SET #status = :status, settled_at = :now, #detail = :detail \
                 REMOVE lease_until, unsettled, claim_token, deliver_at",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#detail", detail_name)
            .expression_attribute_values(":status", value(delivery.status())?)
            .expression_attribute_values(":now", value(now)?)
            .expression_attribute_values(":detail", value(detail)?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn defer(
        &self,
        id: &AlertId,
        holder: &ClaimToken,
        deliver_at: Millis,
        reason: &str,
    ) -> Result<bool, PortError> {
        // The lease becomes the due time: the `by_lease` index hands the alert to the sweeper
        // once it passes, as it does a lapsed claim.
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression(
                "SET #status = :deferred, lease_until = :at, deliver_at = :at, reason = :reason \
                 REMOVE claim_token",
            )
            .condition_expression("#status = :pending AND claim_token = :holder")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(AlertStatus::Pending)?)
            .expression_attribute_values(":deferred", value(AlertStatus::Deferred)?)
            .expression_attribute_values(":holder", value(holder)?)
            .expression_attribute_values(":at", value(deliver_at)?)
            .expression_attribute_values(":reason", value(reason)?)
            .send()
            .await;
        if condition_held(update)? {
            return Ok(true);
        }
        // A repeat of a deferral that took effect finds the alert as it left it.
        Ok(matches!(
            self.lease(id).await?,
            Some(LeaseRow { status: AlertStatus::Deferred, lease_until: Some(at), .. }) if at == deliver_at
        ))
    }

    async fn release(&self, id: &AlertId, error: &str) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression(
                "SET #status = :pending, lease_until = :zero, last_error = :error \
                 REMOVE claim_token ADD attempts :one",
            )
            .condition_expression("#status IN (:pending, :sending)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(AlertStatus::Pending)?)
            .expression_attribute_values(":sending", value(AlertStatus::Sending)?)
            .expression_attribute_values(":zero", value(Millis(0))?)
            .expression_attribute_values(":one", value(1u64)?)
            .expression_attribute_values(
                ":error",
                value(error.chars().take(1000).collect::<String>())?,
            )
            .send()
            .await;
        // A failed condition means the alert was settled meanwhile: nothing to release.
        condition_held(update).map(|_| ())
    }

    async fn stuck(
        &self,
        lapsed_before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError> {
        // Every shard is asked for `limit` (the sweeper wants the longest-lapsed first, and any
        // shard may hold them all), then the oldest leases win.
        let mut stuck: Vec<(Millis, AlertEntry)> = Vec::new();
        for shard in self.shards.all(UNSETTLED_ALERTS) {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ALERTS_UNSETTLED_INDEX)
                .key_condition_expression("unsettled = :u AND lease_until < :before")
                .expression_attribute_values(":u", value(shard)?)
                .expression_attribute_values(":before", value(lapsed_before)?)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items.unwrap_or_default() {
                let row: AlertRow = serde_dynamo::from_item(item).map_err(corrupt)?;
                stuck.push((row.lease_until.unwrap_or(Millis(0)), row.entry));
            }
        }
        stuck.sort_by_key(|a| a.0);
        stuck.truncate(limit);
        Ok(stuck.into_iter().map(|(_, entry)| entry).collect())
    }
}
