//! Small helpers every DynamoDB adapter shares.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use cuba_core::model::domain::{EventId, UserId};
use cuba_core::model::ports::PortError;

pub(super) type Item = HashMap<String, AttributeValue>;

/// How long a table keeps an item: written as `expires_at` (epoch seconds), the attribute the
/// table's TTL deletes by (within a few days of it, as DynamoDB's TTL does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
}

impl Retention {
    /// When an item about something that happened `at` expires.
    pub fn expires_at(self, at: cuba_core::model::domain::Millis) -> u64 {
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
    held_with(result).map(|held| held.is_some())
}

/// As [`condition_held`], keeping the write's answer when it happened.
pub(super) fn held_with<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<Option<O>, PortError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(unavailable(e)),
    }
}

/// Where to start among `n` interchangeable items (counter shards): spread, not stable, so that
/// concurrent writers rarely meet on one item.
pub(super) fn any_of(n: u32) -> u32 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_micros())
        .unwrap_or(0);
    micros % n.max(1)
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

/// A strongly consistent read of one item, as DynamoDB holds it.
pub(super) async fn read_item_raw(
    client: &Client,
    table: &str,
    key: Item,
) -> Result<Option<Item>, PortError> {
    Ok(client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(unavailable)?
        .item)
}

/// Keys per BatchGetItem call (DynamoDB's maximum), and how often unprocessed keys are asked for
/// again before the read counts as failed.
const BATCH_GET_KEYS: usize = 100;
const BATCH_GET_ATTEMPTS: u32 = 5;

/// The items of `table` under `keys` (those that exist, in no particular order), read in
/// batches of 100, asking again for the keys DynamoDB left unprocessed (it does under load).
pub(super) async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    consistent: bool,
) -> Result<Vec<Item>, PortError> {
    let mut found = Vec::new();
    for chunk in keys.chunks(BATCH_GET_KEYS) {
        let mut pending = Some(
            aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(consistent)
                .build()
                .map_err(|e| PortError::unavailable("dynamodb", e))?,
        );
        for attempt in 0..BATCH_GET_ATTEMPTS {
            let Some(request) = pending.take() else {
                break;
            };
            if attempt > 0 {
                // Unprocessed keys mean the table was busy: back off before asking again.
                tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
            }
            let out = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(unavailable)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(table))
                    .unwrap_or_default(),
            );
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(table));
        }
        if pending.is_some() {
            return Err(PortError::unavailable_because(
                "dynamodb",
                format!("{table}: keys stayed unprocessed"),
            ));
        }
    }
    Ok(found)
}

/// Items one `BatchWriteItem` takes (DynamoDB's maximum).
pub(super) const BATCH_WRITE_ITEMS: usize = 25;

/// Writes every request to `table` in one `BatchWriteItem` (at most [`BATCH_WRITE_ITEMS`]), retrying the
/// unprocessed ones with a growing pause; false when DynamoDB refuses the batch as it is (a
/// `ValidationException`: an item too large, say).
pub(super) async fn batch_write(
    client: &Client,
    table: &str,
    mut requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<bool, PortError> {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    let mut pause = std::time::Duration::from_millis(25);
    for _ in 0..8 {
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await;
        let out = match out {
            Err(e) if e.code() == Some("ValidationException") => return Ok(false),
            other => other.map_err(unavailable)?,
        };
        requests = out
            .unprocessed_items
            .and_then(|mut left| left.remove(table))
            .unwrap_or_default();
        if requests.is_empty() {
            return Ok(true);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
    }
    Err(PortError::unavailable_because(
        "dynamodb",
        "writes left unprocessed after every retry",
    ))
}
