//! The profiles table: the phone number SMS actions need, one item per user.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::items::{Item, condition_held, corrupt, n, read_item, unavailable};
use cuba_core::delivery::ports::ProfileStore;
use cuba_core::model::domain::{UserId, UserProfile};
use cuba_core::model::ports::PortError;

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
    async fn save(&self, profile: &UserProfile, expected: u64) -> Result<bool, PortError> {
        let mut stored = profile.clone();
        stored.version = expected + 1;
        let item: Item = serde_dynamo::to_item(&stored).map_err(corrupt)?;
        // Profiles written before versions existed have none: they count as version 0.
        let condition = if expected == 0 {
            "attribute_not_exists(version) OR version = :expected"
        } else {
            "version = :expected"
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await;
        if condition_held(put)? {
            return Ok(true);
        }
        // A repeat of this very write (its answer was lost) finds the profile as it left it.
        Ok(self
            .profile(profile.user)
            .await?
            .is_some_and(|current| current == stored))
    }

    async fn profile(&self, user: UserId) -> Result<Option<UserProfile>, PortError> {
        let key = Item::from([("user".to_owned(), n(user))]);
        read_item(&self.client, &self.table, key).await
    }

    async fn spend_attempt(&self, user: UserId, code_hash: &str) -> Result<Option<u8>, PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("user", n(user))
            .update_expression("SET pending_code.attempts_left = pending_code.attempts_left - :one")
            .condition_expression(
                "pending_code.#hash = :hash AND pending_code.attempts_left > :zero",
            )
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":hash", AttributeValue::S(code_hash.to_owned()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let updated = match update {
            Ok(out) => out,
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let left = updated
            .attributes
            .as_ref()
            .and_then(|a| a.get("pending_code"))
            .and_then(|code| code.as_m().ok())
            .and_then(|code| code.get("attempts_left"))
            .and_then(|left| left.as_n().ok())
            .and_then(|left| left.parse::<u8>().ok())
            .ok_or_else(|| PortError::corrupt("a spent attempt without its count"))?;
        Ok(Some(left))
    }
}
