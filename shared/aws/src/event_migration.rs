//! Copying events from the table keyed (`user`, `id`) with a local index `by_received` (before
//! the events table sorted by receive time) into today's table: each event under its time key,
//! marked [`MIGRATED_ATTRIBUTE`] so the stream passes over it (it was processed when first
//! received), with its id's lookup entry so that a client's retry of an old id is still a
//! duplicate. Every put is conditional: running it again, or while ingest writes, copies only
//! what is missing and never overwrites.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::events::{
    EVENTS_SORT_KEY, ID_ENTRY_ATTRIBUTE, MIGRATED_ATTRIBUTE, event_sort_key, id_entry_key,
};
use crate::items::{Item, condition_held, read_item_raw, unavailable};
use cuba_core::model::domain::{EventId, Millis};
use cuba_core::model::ports::PortError;

/// How many puts run at once.
const CONCURRENT_PUTS: usize = 16;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EventMigration {
    /// Events written to the new table.
    pub copied: u64,
    /// Events the new table held already (an earlier run, or a retry stored after the switch).
    pub present: u64,
    /// Lookup entries written for ids a client chose.
    pub id_entries: u64,
    /// Items that are not events (absence checks posted to the old stream, long decided).
    pub skipped: u64,
}

/// One old item as the new table stores it: the event under its time key, marked migrated, and
/// its id's lookup entry unless the id (a UUIDv7 of the receive time, one ingest minted) gives
/// the key itself. None for an item that is not an event.
fn converted(mut item: Item) -> Option<(Item, Option<Item>)> {
    let id = EventId::parse(item.get("id")?.as_s().ok()?).ok()?;
    let received_at = Millis(item.get("received_at")?.as_n().ok()?.parse().ok()?);
    let sort_key = event_sort_key(received_at, &id);
    let user = item.get("user")?.clone();
    let expires_at = item.get("expires_at").cloned();
    item.insert(
        EVENTS_SORT_KEY.to_owned(),
        AttributeValue::S(sort_key.clone()),
    );
    item.insert(MIGRATED_ATTRIBUTE.to_owned(), AttributeValue::Bool(true));
    let entry = (id.minted_time() != Some(received_at)).then(|| {
        let mut entry = Item::from([
            ("user".to_owned(), user),
            (
                EVENTS_SORT_KEY.to_owned(),
                AttributeValue::S(id_entry_key(&id)),
            ),
            (ID_ENTRY_ATTRIBUTE.to_owned(), AttributeValue::S(sort_key)),
        ]);
        if let Some(expires_at) = expires_at {
            entry.insert("expires_at".to_owned(), expires_at);
        }
        entry
    });
    Some((item, entry))
}

async fn put_if_absent(client: &Client, table: &str, item: Item) -> Result<bool, PortError> {
    condition_held(
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#at)")
            .expression_attribute_names("#at", EVENTS_SORT_KEY)
            .send()
            .await,
    )
}

/// Whether the entry stored under `entry`'s key points where `entry` does.
async fn points_at_itself(client: &Client, table: &str, entry: Item) -> Result<bool, PortError> {
    let key = Item::from_iter(
        ["user", EVENTS_SORT_KEY]
            .into_iter()
            .filter_map(|k| entry.get(k).map(|v| (k.to_owned(), v.clone()))),
    );
    let stored = read_item_raw(client, table, key).await?;
    Ok(stored.and_then(|s| s.get(ID_ENTRY_ATTRIBUTE).cloned())
        == entry.get(ID_ENTRY_ATTRIBUTE).cloned())
}

/// Copies every event of `from` into `to` (see the module's note).
pub async fn migrate_events(
    client: &Client,
    from: &str,
    to: &str,
) -> Result<EventMigration, PortError> {
    let mut report = EventMigration::default();
    let mut pages = client.scan().table_name(from).into_paginator().send();
    while let Some(page) = pages.next().await {
        let items = page.map_err(unavailable)?.items.unwrap_or_default();
        for chunk in items.chunks(CONCURRENT_PUTS) {
            let mut puts = tokio::task::JoinSet::new();
            for item in chunk {
                let Some((event, entry)) = converted(item.clone()) else {
                    report.skipped += 1;
                    continue;
                };
                let (client, table) = (client.clone(), to.to_owned());
                puts.spawn(async move {
                    // The entry first, as ingest writes them: an event is never without it.
                    let entry_written = match &entry {
                        Some(entry) => put_if_absent(&client, &table, entry.clone()).await?,
                        None => false,
                    };
                    if let Some(entry) = entry
                        && !entry_written
                        && !points_at_itself(&client, &table, entry).await?
                    {
                        // A client's retry stored this id anew after the switch, before this
                        // run: that copy is the one its entry names, and stays the only one.
                        return Ok((false, false));
                    }
                    let copied = put_if_absent(&client, &table, event).await?;
                    Ok::<_, PortError>((copied, entry_written))
                });
            }
            while let Some(joined) = puts.join_next().await {
                let (copied, entry_written) =
                    joined.map_err(|e| PortError::unavailable("dynamodb", e))??;
                if copied {
                    report.copied += 1;
                } else {
                    report.present += 1;
                }
                report.id_entries += u64::from(entry_written);
            }
        }
    }
    Ok(report)
}
