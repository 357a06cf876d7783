//! The rule-state table: first-occurrence markers and cooldowns, one item each per (rule, user),
//! claimed with conditional writes so that only one trigger ever wins them.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use aws_sdk_dynamodb::types::ReturnValue;

use crate::items::{Item, condition_held, corrupt, read_item, unavailable, value};
use crate::partition_keys::{
    cooldown as cooldown_key, first_marker as first_key, heartbeat as heartbeat_key,
};
use cuba_core::evaluation::decision::{Beat, Cooldown};
use cuba_core::evaluation::ports::RuleState;
use cuba_core::model::domain::{EventId, Millis, UserId};
use cuba_core::model::ports::PortError;
use cuba_core::rules::RuleId;

/// How long rule-state items outlive their purpose before DynamoDB's TTL removes them.
const STATE_TTL_GRACE_SECONDS: u64 = 24 * 60 * 60;

/// `first#{rule}#{user}`: the event that fired the rule's one alert for the user.
#[derive(Serialize, Deserialize)]
struct FirstMarkerRow {
    pk: String,
    event_id: EventId,
}

/// `cooldown#{rule}#{user}`: the rule is quiet for the user until `cooldown_until`.
#[derive(Serialize, Deserialize)]
struct CooldownRow {
    pk: String,
    event_id: EventId,
    cooldown_until: Millis,
    /// The starting event's receive time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<Millis>,
    /// Seconds since the epoch: DynamoDB's TTL attribute.
    expires_at: u64,
}

/// `heartbeat#{rule}`: when a heartbeat rule last saw a matching event, and the silence it is
/// firing for. Never expires: a rule silent for months must still know it.
#[derive(Deserialize)]
struct HeartbeatRow {
    last_seen: Millis,
    #[serde(default)]
    silent_since: Option<Millis>,
}

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

    /// Puts `row` if `condition` holds; `Ok(false)` when it did not.
    async fn conditional_put(
        &self,
        row: impl Serialize,
        condition: &str,
        values: Item,
    ) -> Result<bool, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(row).map_err(corrupt)?))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        condition_held(put)
    }

    async fn read<T: DeserializeOwned>(&self, pk: String) -> Result<Option<T>, PortError> {
        let key = Item::from([("pk".to_owned(), value(&pk)?)]);
        read_item(&self.client, &self.table, key).await
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
        // Read first: once a user has a first event every later one would be refused, and a
        // refused conditional put costs a whole write unit where a read costs a quarter of its
        // price. The put below still decides a race between two first events.
        if let Some(holder) = self.first_holder(rule, user).await? {
            return Ok(holder == *event);
        }
        let row = FirstMarkerRow {
            pk: first_key(rule, user),
            event_id: event.clone(),
        };
        let values = Item::from([(":event".to_owned(), value(event)?)]);
        self.conditional_put(row, "attribute_not_exists(pk) OR event_id = :event", values)
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
        let row = CooldownRow {
            pk: cooldown_key(rule, user),
            event_id: event.clone(),
            cooldown_until: until,
            started_at: Some(at),
            expires_at: until.0 / 1000 + STATE_TTL_GRACE_SECONDS,
        };
        let values = Item::from([
            (":event".to_owned(), value(event)?),
            (":at".to_owned(), value(at)?),
        ]);
        self.conditional_put(
            row,
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
        Ok(self
            .read::<FirstMarkerRow>(first_key(rule, user))
            .await?
            .map(|row| row.event_id))
    }

    async fn cooldown(&self, rule: &RuleId, user: UserId) -> Result<Option<Cooldown>, PortError> {
        Ok(self
            .read::<CooldownRow>(cooldown_key(rule, user))
            .await?
            .map(|row| Cooldown {
                until: row.cooldown_until,
                started_by: row.event_id,
                started_at: row.started_at,
            }))
    }

    async fn heartbeat_seen(&self, rule: &RuleId, at: Millis) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", value(heartbeat_key(rule))?)
            .update_expression("SET last_seen = :at")
            .condition_expression("attribute_not_exists(last_seen) OR last_seen < :at")
            .expression_attribute_values(":at", value(at)?)
            .send()
            .await;
        // Refused: a later sighting is kept already.
        condition_held(update).map(|_| ())
    }

    async fn heartbeat(&self, rule: &RuleId, now: Millis) -> Result<Beat, PortError> {
        if let Some(row) = self.read::<HeartbeatRow>(heartbeat_key(rule)).await? {
            return Ok(Beat {
                last_seen: row.last_seen,
                silent_since: row.silent_since,
            });
        }
        // First look: watched from now on, unless a sighting landed meanwhile.
        let armed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", value(heartbeat_key(rule))?)
            .update_expression("SET last_seen = if_not_exists(last_seen, :now)")
            .expression_attribute_values(":now", value(now)?)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(unavailable)?;
        let row: HeartbeatRow =
            serde_dynamo::from_item(armed.attributes.unwrap_or_default()).map_err(corrupt)?;
        Ok(Beat {
            last_seen: row.last_seen,
            silent_since: row.silent_since,
        })
    }

    async fn set_heartbeat_silence(
        &self,
        rule: &RuleId,
        since: Option<Millis>,
    ) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", value(heartbeat_key(rule))?)
            // Only a watched rule has a silence to record.
            .condition_expression("attribute_exists(last_seen)");
        let update = match since {
            Some(since) => update
                .update_expression("SET silent_since = :since")
                .expression_attribute_values(":since", value(since)?),
            None => update.update_expression("REMOVE silent_since"),
        };
        condition_held(update.send().await).map(|_| ())
    }
}
