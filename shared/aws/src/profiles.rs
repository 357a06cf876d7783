//! The profiles table: the phone number SMS actions need, one item per user.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use crate::items::{Item, corrupt, n, read_item, unavailable};
use cuba_core::domain::{UserId, UserProfile};
use cuba_core::ports::{PortError, ProfileStore};

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
