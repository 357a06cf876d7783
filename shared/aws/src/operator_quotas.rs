//! The cap on operator alerts per rule and hour, in the rule-state table: one counter per rule
//! and hour, raised by a conditional `ADD`. A rule under its cap writes one unit per alert; the
//! dispatcher stops asking once it finds a rule capped for the hour.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use crate::items::{condition_held, value};
use crate::partition_keys::operator_quota;
use cuba_core::delivery::ports::OperatorQuotas;
use cuba_core::model::ports::PortError;
use cuba_core::rules::RuleId;

#[derive(Debug, Clone)]
pub struct DynamoOperatorQuotas {
    client: Client,
    table: String,
}

impl DynamoOperatorQuotas {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOperatorQuotas {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl OperatorQuotas for DynamoOperatorQuotas {
    async fn take(&self, rule: &RuleId, hour: u64, cap: u32) -> Result<bool, PortError> {
        if cap == 0 {
            return Ok(false);
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", value(operator_quota(rule, hour))?)
            .update_expression("ADD published :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(published) OR published < :cap")
            .expression_attribute_values(":one", value(1u32)?)
            .expression_attribute_values(":cap", value(cap)?)
            // Kept a day after its hour: long enough to read back what a flood did.
            .expression_attribute_values(":expires", value((hour + 25) * 3600)?)
            .send()
            .await;
        condition_held(update)
    }
}
