//! The alerts table: the ledger of fired alerts, one item per alert id, with its delivery status.
//! A worker claims an alert with a conditional put (and a lease), delivers it, then settles it;
//! a retry finds it settled and sends nothing.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::items::{
    Item, Retention, condition_held, corrupt, held_with, read_item, unavailable, value,
};
use crate::partition_keys::{
    ListingShards, UNSETTLED_ALERTS, listing_bucket, rule_bucket, sharded, unsettled_bucket,
};
use cuba_core::delivery::alert::{
    Alert, AlertEntry, AlertId, AlertStatus, Claim, ClaimToken, Delivery, Lease, NoticeClaim,
};
use cuba_core::delivery::grouping::GroupNotice;
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::delivery::receipts::{ReceiptOutcome, SmsReceipt};
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

/// What is known under one provider message id (the item `~message#{id}`): the alert it
/// belongs to, and its receipt, whichever came first.
#[derive(Deserialize)]
struct MessageLink {
    #[serde(default)]
    linked_alert: Option<AlertId>,
    #[serde(default)]
    receipt: Option<SmsReceipt>,
}

/// The prefix of the `by_lease` index's partitions for sent SMS awaiting their receipt.
const AWAITING_RECEIPT: &str = "r";

/// How long a message id's link is kept: receipts come within 72 hours.
const LINK_DAYS: u64 = 7;

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

    /// The item a message id's link lives in. `~` starts no alert id (rule ids cannot), so
    /// links never meet alerts.
    fn message_key(message_id: &str) -> Item {
        Item::from([(
            "alert_id".to_owned(),
            AttributeValue::S(format!("~message#{message_id}")),
        )])
    }

    /// Writes one side of a message id's link (`linked_alert` or `receipt`) in one atomic step
    /// that answers the link as it was: what the other side left there, if it came first.
    async fn write_link(
        &self,
        message_id: &str,
        side: &str,
        written: AttributeValue,
        at: Millis,
    ) -> Result<Option<MessageLink>, PortError> {
        let old = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::message_key(message_id)))
            .update_expression("SET #side = :side, expires_at = if_not_exists(expires_at, :ttl)")
            .expression_attribute_names("#side", side)
            .expression_attribute_values(":side", written)
            .expression_attribute_values(":ttl", value(Self::link_expiry(at))?)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable)?
            .attributes;
        old.map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)
    }

    /// Epoch seconds at which a link made at `at` expires.
    fn link_expiry(at: Millis) -> u64 {
        at.0 / 1000 + LINK_DAYS * 24 * 3600
    }

    /// The rows of the `by_lease` partitions under `prefix` whose lease (or due time) ended
    /// before `before`, the longest lapsed first, at most `limit`. Every shard is asked for
    /// `limit` (any shard may hold them all), then the oldest win.
    async fn lapsed(
        &self,
        prefix: &str,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertRow>, PortError> {
        let mut lapsed: Vec<AlertRow> = Vec::new();
        for shard in self.shards.all(prefix) {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ALERTS_UNSETTLED_INDEX)
                .key_condition_expression("unsettled = :u AND lease_until < :before")
                .expression_attribute_values(":u", value(shard)?)
                .expression_attribute_values(":before", value(before)?)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items.unwrap_or_default() {
                lapsed.push(serde_dynamo::from_item(item).map_err(corrupt)?);
            }
        }
        lapsed.sort_by_key(|row| row.lease_until.unwrap_or(Millis(0)));
        lapsed.truncate(limit);
        Ok(lapsed)
    }

    /// What a claim whose condition failed found: settled, in flight, abandoned, or this very
    /// claim (its answer was lost and the SDK retried it).
    async fn refused(&self, id: &AlertId, now: Millis, lease: &Lease) -> Result<Claim, PortError> {
        let lease_until = lease.until;
        Ok(match self.lease(id).await? {
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

    /// The SET clauses (and their names and values) that write every attribute of `item`
    /// where it is missing, leaving those already there as they are.
    fn set_missing(item: Item, skip: &[&str]) -> (Vec<String>, Item, HashMap<String, String>) {
        let mut clauses = Vec::new();
        let mut values = Item::new();
        let mut names = HashMap::new();
        for (i, (name, written)) in item.into_iter().enumerate() {
            if skip.contains(&name.as_str()) {
                continue;
            }
            clauses.push(format!("#m{i} = if_not_exists(#m{i}, :m{i})"));
            names.insert(format!("#m{i}"), name);
            values.insert(format!(":m{i}"), written);
        }
        (clauses, values, names)
    }

    async fn row(&self, id: &AlertId) -> Result<Option<AlertRow>, PortError> {
        read_item(&self.client, &self.table, Self::key(id)?).await
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
        self.refused(&alert.id, now, lease).await
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

    async fn entry(&self, id: &AlertId) -> Result<Option<AlertEntry>, PortError> {
        Ok(self.row(id).await?.map(|row| row.entry))
    }

    async fn gather(
        &self,
        notice: &GroupNotice,
        member: &Alert,
        sample: usize,
    ) -> Result<bool, PortError> {
        let id = notice.id.as_str();
        let new = AlertRow {
            entry: notice.entry(),
            day_shard: listing_bucket(self.shards, notice.opened_at, id),
            rule_shard: rule_bucket(self.shards, &notice.rule_id, id),
            lease_until: Some(notice.due),
            claim_token: None,
            unsettled: Some(unsettled_bucket(self.shards, id)),
            expires_at: self.retention.map(|r| r.expires_at(notice.opened_at)),
        };
        let item = serde_dynamo::to_item(new).map_err(corrupt)?;
        // A new message is written whole; an open one keeps what it has, and counts the member.
        let (mut clauses, values, names) =
            Self::set_missing(item, &["alert_id", "members", "status"]);
        clauses.push("#status = :deferred".into());
        clauses.push("#first = if_not_exists(#first, :fired)".into());
        clauses.push("#last = :fired".into());
        // Its first members are kept by id while there is room; past that, only counted.
        for keep in [sample > 0, false] {
            let mut set = clauses.clone();
            let mut condition =
                "(attribute_not_exists(alert_id) OR #status = :deferred)".to_owned();
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(&notice.id)?))
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                // `members` and `sample` are among DynamoDB's reserved words.
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#members", "members")
                .expression_attribute_names("#first", "first_member_at")
                .expression_attribute_names("#last", "last_member_at")
                .expression_attribute_values(":deferred", value(AlertStatus::Deferred)?)
                .expression_attribute_values(":fired", value(member.fired_at)?)
                .expression_attribute_values(":one", value(1u64)?);
            if keep {
                set.push("#sample = list_append(if_not_exists(#sample, :none), :member)".into());
                condition.push_str(" AND (attribute_not_exists(#sample) OR size(#sample) < :room)");
                update = update
                    .expression_attribute_names("#sample", "sample")
                    .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                    .expression_attribute_values(":member", value([&member.id])?)
                    .expression_attribute_values(":room", value(sample)?);
            }
            let result = update
                .update_expression(format!("SET {} ADD #members :one", set.join(", ")))
                .condition_expression(condition)
                .send()
                .await;
            if condition_held(result)? {
                return Ok(true);
            }
            if !keep {
                break;
            }
        }
        // Closed: claimed for publishing, or settled.
        Ok(false)
    }

    async fn claim_notice(
        &self,
        id: &AlertId,
        now: Millis,
        lease: &Lease,
    ) -> Result<NoticeClaim, PortError> {
        // An update, not a put: the tally gathered so far stays, and the answer is final (a
        // member gathers only into a `deferred` message).
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression(
                "SET #status = :pending, lease_until = :until, claim_token = :holder",
            )
            .condition_expression("#status IN (:pending, :deferred) AND lease_until < :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(AlertStatus::Pending)?)
            .expression_attribute_values(":deferred", value(AlertStatus::Deferred)?)
            .expression_attribute_values(":until", value(lease.until)?)
            .expression_attribute_values(":holder", value(&lease.holder)?)
            .expression_attribute_values(":now", value(now)?)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        if let Some(out) = held_with(update)? {
            let row: AlertRow =
                serde_dynamo::from_item(out.attributes.unwrap_or_default()).map_err(corrupt)?;
            return Ok(NoticeClaim::Claimed(Box::new(row.entry)));
        }
        Ok(match self.refused(id, now, lease).await? {
            // This very claim took effect and its answer was lost: the tally is as it closed.
            Claim::Claimed { .. } => match self.row(id).await? {
                Some(row) => NoticeClaim::Claimed(Box::new(row.entry)),
                None => NoticeClaim::Refused(Claim::AlreadySettled),
            },
            refused => NoticeClaim::Refused(refused),
        })
    }

    async fn stuck(
        &self,
        lapsed_before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError> {
        let rows = self.lapsed(UNSETTLED_ALERTS, lapsed_before, limit).await?;
        Ok(rows.into_iter().map(|row| row.entry).collect())
    }

    async fn await_receipt(
        &self,
        id: &AlertId,
        message_id: &str,
        receipt_due: Millis,
    ) -> Result<Option<SmsReceipt>, PortError> {
        // One atomic step on the message's link: whatever the receipt left there comes back.
        let early = self
            .write_link(message_id, "linked_alert", value(id)?, receipt_due)
            .await?;
        if let Some(receipt) = early.and_then(|link| link.receipt) {
            return Ok(Some(receipt));
        }
        // Waits in the `by_lease` index under its own prefix, which the sweeper's stuck query
        // never reads.
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression("SET unsettled = :wait, lease_until = :due")
            .condition_expression("#status = :sent AND attribute_not_exists(receipt)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", value(AlertStatus::Sent)?)
            .expression_attribute_values(
                ":wait",
                value(sharded(AWAITING_RECEIPT, self.shards.of(id.as_str())))?,
            )
            .expression_attribute_values(":due", value(receipt_due)?)
            .send()
            .await;
        // Not `sent` (any more): nothing to wait for.
        condition_held(update)?;
        Ok(None)
    }

    async fn receive_receipt(
        &self,
        receipt: &SmsReceipt,
        now: Millis,
    ) -> Result<Option<AlertId>, PortError> {
        let link = self
            .write_link(&receipt.message_id, "receipt", value(receipt)?, now)
            .await?;
        Ok(link.and_then(|link| link.linked_alert))
    }

    async fn apply_receipt(
        &self,
        id: &AlertId,
        receipt: &SmsReceipt,
        _now: Millis,
    ) -> Result<(), PortError> {
        let status = match receipt.outcome {
            ReceiptOutcome::Delivered => AlertStatus::Delivered,
            ReceiptOutcome::Failed => AlertStatus::Failed,
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression(
                "SET #status = :status, receipt = :receipt REMOVE unsettled, lease_until",
            )
            .condition_expression("#status IN (:sent, :delivered, :failed)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", value(status)?)
            .expression_attribute_values(":receipt", value(receipt)?)
            .expression_attribute_values(":sent", value(AlertStatus::Sent)?)
            .expression_attribute_values(":delivered", value(AlertStatus::Delivered)?)
            .expression_attribute_values(":failed", value(AlertStatus::Failed)?)
            .send()
            .await;
        // Not a sent SMS (a receipt for a message Cuba settled otherwise): nothing to settle.
        condition_held(update).map(|_| ())
    }

    async fn overdue_receipts(
        &self,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError> {
        let overdue = self.lapsed(AWAITING_RECEIPT, before, limit).await?;
        let mut found = Vec::new();
        for row in overdue {
            // Each is answered once: the sweep that stops it awaiting is the one that counts it.
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(&row.entry.alert_id)?))
                .update_expression("REMOVE unsettled, lease_until")
                .condition_expression("unsettled = :wait")
                .expression_attribute_values(":wait", value(&row.unsettled)?)
                .send()
                .await;
            if condition_held(update)? {
                found.push(row.entry);
            }
        }
        Ok(found)
    }
}
