//! The shared count behind the per-user event rate limit, in the rule-state table: one item per
//! user and 10-second window, raised by an atomic `ADD`. Only users sending more than a
//! twentieth of a window's allowance to one instance are ever written.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::items::{unavailable, value};
use crate::partition_keys::rate_window;
use cuba_core::intake::ports::RateCounter;
use cuba_core::intake::rate_limit::RateWindow;
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;

#[derive(Debug, Clone)]
pub struct DynamoRateCounter {
    client: Client,
    table: String,
}

impl DynamoRateCounter {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRateCounter {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl RateCounter for DynamoRateCounter {
    async fn add(
        &self,
        window: &RateWindow,
        count: u32,
        expires_at: Millis,
    ) -> Result<u64, PortError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(rate_window(window)))
            .update_expression("ADD admitted :count SET expires_at = :expires")
            .expression_attribute_values(":count", value(count)?)
            .expression_attribute_values(":expires", value(expires_at.0.div_ceil(1000))?)
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(unavailable)?;
        updated
            .attributes
            .as_ref()
            .and_then(|a| a.get("admitted"))
            .and_then(|n| n.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| PortError::corrupt("a rate count without its total"))
    }
}
