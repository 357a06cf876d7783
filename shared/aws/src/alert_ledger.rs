//! The alerts table: the ledger of fired alerts, one item per alert id, with its delivery status.
//! A worker claims an alert with a conditional put (and a lease), delivers it, then settles it;
//! a retry finds it settled and sends nothing.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::browse::hour_of;
use crate::items::{Item, condition_held, corrupt, read_item, unavailable, value};
use cuba_core::alert::{Alert, AlertEntry, AlertId, AlertStatus, Claim, Delivery};
use cuba_core::domain::Millis;
use cuba_core::ports::{AlertLedger, PortError};

/// An alerts-table item: the entry operators browse, plus what only the table needs.
#[derive(Serialize, Deserialize)]
struct AlertRow {
    #[serde(flatten)]
    entry: AlertEntry,
    /// The `by_hour` listing index's partition key.
    hour: u64,
    /// While `pending`: until when the claiming worker holds the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_until: Option<Millis>,
}

/// What a failed claim reads back.
#[derive(Deserialize)]
struct LeaseRow {
    status: AlertStatus,
    #[serde(default)]
    lease_until: Option<Millis>,
}

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

    fn key(id: &AlertId) -> Result<Item, PortError> {
        Ok(Item::from([("alert_id".to_owned(), value(id)?)]))
    }
}

#[async_trait]
impl AlertLedger for DynamoAlertLedger {
    async fn claim(
        &self,
        alert: &Alert,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Claim, PortError> {
        let row = AlertRow {
            entry: AlertEntry::pending(alert),
            hour: hour_of(alert.fired_at),
            lease_until: Some(lease_until),
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(row).map_err(corrupt)?))
            .condition_expression(
                "attribute_not_exists(alert_id) OR (#status = :pending AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(AlertStatus::Pending)?)
            .expression_attribute_values(":now", value(now)?)
            .send()
            .await;
        if condition_held(put)? {
            return Ok(Claim::Claimed);
        }
        let current: Option<LeaseRow> = read_item(&self.client, &self.table, Self::key(&alert.id)?)
            .await?
            .map(serde_dynamo::from_item)
            .transpose()
            .map_err(corrupt)?;
        Ok(match current {
            // `None`: deleted by hand between the two calls; claiming again will work.
            None => Claim::InFlight { lease_until: now },
            Some(LeaseRow {
                status: AlertStatus::Pending,
                lease_until,
            }) => Claim::InFlight {
                lease_until: lease_until.unwrap_or(now),
            },
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
            Delivery::Sent { message_id } => (AlertStatus::Sent, "message_id", message_id),
            Delivery::Undeliverable { reason } => (AlertStatus::Undeliverable, "reason", reason),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)?))
            .update_expression(
                "SET #status = :status, settled_at = :now, #detail = :detail REMOVE lease_until",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#detail", detail_name)
            .expression_attribute_values(":status", value(status)?)
            .expression_attribute_values(":now", value(now)?)
            .expression_attribute_values(":detail", value(detail)?)
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
            .set_key(Some(Self::key(id)?))
            .update_expression("SET lease_until = :zero, last_error = :error ADD attempts :one")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", value(AlertStatus::Pending)?)
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
}
