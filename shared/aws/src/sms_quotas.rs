//! SMS quotas in the rule-state table. Per user and per phone: one item holding the alerts
//! counted in the last 24 hours (at most the cap, so the item stays small), rewritten with an
//! optimistic version check. The daily budget: a few counters per UTC day (the budget split
//! between them), each raised by a conditional `ADD`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::items::{Item, any_of, condition_held, corrupt, read_item, value};
use crate::partition_keys::{SMS_BUDGET_SHARDS, sms_budget, sms_quota as quota_key};
use cuba_core::delivery::alert::AlertId;
use cuba_core::delivery::ports::{SmsBudget, SmsQuota, SmsQuotas};
use cuba_core::model::domain::{DAY_MILLIS, Millis};
use cuba_core::model::ports::PortError;

/// Two writers counting into one quota at once: one of them reads again.
const CONFLICT_ATTEMPTS: u32 = 2;

/// `sms#user#{user}` or `sms#phone#{number}`: alert id → when it was counted.
#[derive(Serialize, Deserialize)]
struct QuotaRow {
    pk: String,
    counted: BTreeMap<String, Millis>,
    version: u64,
    /// Seconds since the epoch: DynamoDB's TTL attribute, a day after the last count.
    expires_at: u64,
}

/// Every shard of a day's budget once, from a random one: concurrent writers spread out.
fn budget_shards() -> impl Iterator<Item = u32> {
    let shards = u32::from(SMS_BUDGET_SHARDS);
    let start = any_of(shards);
    (0..shards).map(move |step| (start + step) % shards)
}

/// A quota as errors name it: a number masked, since errors reach logs and alerts' reasons.
fn shown(quota: &SmsQuota) -> String {
    match quota {
        SmsQuota::UserDay(user, day) => format!("the SMS quota of user {user} on {day}"),
        SmsQuota::Phone(phone) => format!("the SMS quota of {}", phone.masked()),
        SmsQuota::CodesTo(phone) => format!("the code quota of {}", phone.masked()),
    }
}

/// A quota that kept changing under concurrent writers: worth retrying later.
fn contended(quota: &SmsQuota) -> PortError {
    PortError::unavailable_because(
        "dynamodb",
        format!("{} kept changing under concurrent writers", shown(quota)),
    )
}

#[derive(Debug, Clone)]
pub struct DynamoSmsQuotas {
    client: Client,
    table: String,
}

impl DynamoSmsQuotas {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSmsQuotas {
            client,
            table: table.into(),
        }
    }

    /// Writes `row` if the stored one is still at `version` (0: none stored): false when
    /// another writer got there first.
    async fn write(&self, row: &QuotaRow, version: u64) -> Result<bool, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(row).map_err(corrupt)?))
            .condition_expression("attribute_not_exists(pk) OR version = :version")
            .expression_attribute_values(":version", value(version)?)
            .send()
            .await;
        condition_held(put)
    }

    async fn read(&self, pk: &str) -> Result<Option<QuotaRow>, PortError> {
        let key = Item::from([("pk".to_owned(), value(pk)?)]);
        read_item(&self.client, &self.table, key).await
    }
}

#[async_trait]
impl SmsQuotas for DynamoSmsQuotas {
    async fn take(
        &self,
        quota: &SmsQuota,
        cap: u32,
        alert: &AlertId,
        now: Millis,
    ) -> Result<bool, PortError> {
        let pk = quota_key(quota);
        for _ in 0..CONFLICT_ATTEMPTS {
            let current = self.read(&pk).await?;
            let version = current.as_ref().map_or(0, |row| row.version);
            let mut counted = current.map(|row| row.counted).unwrap_or_default();
            if counted.contains_key(alert.as_str()) {
                return Ok(true);
            }
            counted.retain(|_, at| at.0 + DAY_MILLIS > now.0);
            if counted.len() >= cap as usize {
                return Ok(false);
            }
            counted.insert(alert.as_str().to_owned(), now);
            let row = QuotaRow {
                pk: pk.clone(),
                counted,
                version: version + 1,
                expires_at: (now.0 + 2 * DAY_MILLIS) / 1000,
            };
            if self.write(&row, version).await? {
                return Ok(true);
            }
        }
        Err(contended(quota))
    }

    async fn take_budget(&self, budget: SmsBudget, day: u64, cap: u32) -> Result<bool, PortError> {
        // The day's budget is split over shards, each with its share as its cap: every SMS
        // raises one shard, starting at a random one and moving on when it is full, so the
        // total never passes the budget and only a spent budget makes a sender try them all.
        let shards = u32::from(SMS_BUDGET_SHARDS);
        for shard in budget_shards() {
            let shard_cap = cap / shards + u32::from(shard < cap % shards);
            if shard_cap == 0 {
                continue;
            }
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", value(sms_budget(budget, day, shard as u16))?)
                .update_expression("ADD sent :one SET expires_at = :expires")
                .condition_expression("attribute_not_exists(sent) OR sent < :cap")
                .expression_attribute_values(":one", value(1u32)?)
                .expression_attribute_values(":cap", value(shard_cap)?)
                .expression_attribute_values(":expires", value((day + 3) * 24 * 3600)?)
                .send()
                .await;
            if condition_held(update)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn give_back(&self, quota: &SmsQuota, alert: &AlertId) -> Result<(), PortError> {
        let pk = quota_key(quota);
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(mut row) = self.read(&pk).await? else {
                return Ok(());
            };
            if row.counted.remove(alert.as_str()).is_none() {
                return Ok(());
            }
            let version = row.version;
            row.version += 1;
            if self.write(&row, version).await? {
                return Ok(());
            }
        }
        Err(contended(quota))
    }

    async fn give_back_budget(&self, budget: SmsBudget, day: u64) -> Result<(), PortError> {
        // Any shard with a count will do: the day's total is what the budget bounds.
        for shard in budget_shards() {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", value(sms_budget(budget, day, shard as u16))?)
                .update_expression("ADD sent :minus_one")
                .condition_expression("sent > :zero")
                .expression_attribute_values(":minus_one", value(-1i32)?)
                .expression_attribute_values(":zero", value(0u32)?)
                .send()
                .await;
            if condition_held(update)? {
                return Ok(());
            }
        }
        Ok(())
    }
}
