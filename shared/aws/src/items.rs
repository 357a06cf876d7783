//! Small helpers every DynamoDB adapter shares.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use cuba_core::domain::{EventId, UserId};
use cuba_core::ports::PortError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// How long a table keeps an item: written as `expires_at` (epoch seconds), the attribute the
/// table's TTL deletes by (within a few days of it, as DynamoDB's TTL does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
}

impl Retention {
    /// When an item about something that happened `at` expires.
    pub fn expires_at(self, at: cuba_core::domain::Millis) -> u64 {
        at.0 / 1000 + u64::from(self.days) * 24 * 3600
    }
}

pub(super) fn unavailable<E, R>(e: SdkError<E, R>) -> PortError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    PortError::unavailable("dynamodb", e)
}

/// The outcome of a conditional write: true when it happened, false when its condition did not
/// hold (DynamoDB's `ConditionalCheckFailedException`), an error for anything else.
pub(super) fn condition_held<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<bool, PortError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(unavailable(e)),
    }
}

/// An event's key, (`user`, `id`): the events table and the error log both use it.
pub(super) fn event_key(user: UserId, id: &EventId) -> Item {
    Item::from([
        ("user".to_owned(), n(user)),
        ("id".to_owned(), s(id.as_str())),
    ])
}

/// Any serialisable value as an attribute, spelled as serde spells it (enum names included), for
/// key conditions and expression values.
pub(super) fn value(v: impl serde::Serialize) -> Result<AttributeValue, PortError> {
    serde_dynamo::to_attribute_value(v).map_err(corrupt)
}

pub(super) fn corrupt(e: serde_dynamo::Error) -> PortError {
    PortError::corrupt_from("an item", e)
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A strongly consistent read of one item, as the row type `T`: callers decide on what they
/// have just written.
pub(super) async fn read_item<T: serde::de::DeserializeOwned>(
    client: &Client,
    table: &str,
    key: Item,
) -> Result<Option<T>, PortError> {
    client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(unavailable)?
        .item
        .map(serde_dynamo::from_item)
        .transpose()
        .map_err(corrupt)
}
