//! Copying events from the table keyed (`user`, `id`) with a local index `by_received` (before
//! the events table sorted by receive time) into today's table: each event under its time key,
//! marked [`MIGRATED_ATTRIBUTE`] so the stream passes over it (it was processed when first
//! received), with its id's lookup entry so that a client's retry of an old id is still a
//! duplicate. Every put is conditional: running it again, or while ingest writes, copies only
//! what is missing and never overwrites. Each scanned page's events go into the listings across
//! everyone and by session, as the rules function lists new events ([`DynamoListingPages`]);
//! a run again rewrites those pages, and the listings drop any repeat.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::events::{DynamoEvents, EVENTS_SORT_KEY, MIGRATED_ATTRIBUTE, Put, event_sort_key};
use crate::items::{Item, unavailable};
use crate::listing_pages::DynamoListingPages;
use cuba_core::console::listing_pages::paginate;
use cuba_core::console::ports::ListingPages;
use cuba_core::model::domain::{EventId, Millis, StoredEvent, UserId};
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

/// An event of the old table, under its new key and marked migrated.
struct OldEvent {
    user: UserId,
    id: EventId,
    received_at: Millis,
    expires_at: Option<u64>,
    /// What the listings show of it.
    event: StoredEvent,
    item: Item,
}

/// One old item as the new table stores it. None for an item that is not an event.
fn old_event(mut item: Item) -> Option<OldEvent> {
    let number = |name: &str| item.get(name)?.as_n().ok()?.parse::<u64>().ok();
    let user = UserId(number("user")?);
    let received_at = Millis(number("received_at")?);
    let expires_at = number("expires_at");
    let id = EventId::parse(item.get("id")?.as_s().ok()?).ok()?;
    let event: StoredEvent = serde_dynamo::from_item(item.clone()).ok()?;
    item.insert(
        EVENTS_SORT_KEY.to_owned(),
        AttributeValue::S(event_sort_key(received_at, &id)),
    );
    item.insert(MIGRATED_ATTRIBUTE.to_owned(), AttributeValue::Bool(true));
    Some(OldEvent {
        user,
        id,
        received_at,
        expires_at,
        event,
        item,
    })
}

/// Whether a conditional put of the migration wrote; an item DynamoDB refuses stops the run.
fn written(put: Put) -> Result<bool, PortError> {
    match put {
        Put::Written => Ok(true),
        Put::Taken => Ok(false),
        Put::Refused(reason) => Err(PortError::corrupt(reason)),
    }
}

/// What became of one old event.
struct Copied {
    /// The event was written (not there already).
    event: bool,
    /// Its id's lookup entry was written.
    entry: bool,
    /// The new table keeps this copy (not a client's retry stored after the switch).
    kept: Option<StoredEvent>,
}

/// Copies one event, with its id's lookup entry unless the id (a UUIDv7 of the receive time,
/// one ingest minted) gives the key itself.
async fn copy(events: &DynamoEvents, old: OldEvent) -> Result<Copied, PortError> {
    let sort_key = event_sort_key(old.received_at, &old.id);
    let mut entry_written = false;
    if old.id.minted_time() != Some(old.received_at) {
        // The entry first, as ingest writes them: an event is never without it.
        let entry =
            DynamoEvents::id_entry_item(old.user, &old.id, sort_key.clone(), old.expires_at)?;
        entry_written = written(events.put_new(entry).await?)?;
        if !entry_written && events.id_entry(old.user, &old.id).await? != Some(sort_key) {
            // A client's retry stored this id anew after the switch, before this run: that
            // copy is the one its entry names, and stays the only one (listed by the stream).
            return Ok(Copied {
                event: false,
                entry: false,
                kept: None,
            });
        }
    }
    let copied = written(events.put_new(old.item).await?)?;
    Ok(Copied {
        event: copied,
        entry: entry_written,
        kept: Some(old.event),
    })
}

/// Copies every event of `from` into `to`, listing them in `pages` (see the module's note).
pub async fn migrate_events(
    client: &Client,
    from: &str,
    to: &str,
    pages: &DynamoListingPages,
) -> Result<EventMigration, PortError> {
    let events = DynamoEvents::new(client.clone(), to);
    let mut report = EventMigration::default();
    let mut scan = client.scan().table_name(from).into_paginator().send();
    while let Some(page) = scan.next().await {
        let items = page.map_err(unavailable)?.items.unwrap_or_default();
        let mut listed: Vec<StoredEvent> = Vec::new();
        for chunk in items.chunks(CONCURRENT_PUTS) {
            let mut puts = tokio::task::JoinSet::new();
            for item in chunk {
                let Some(old) = old_event(item.clone()) else {
                    report.skipped += 1;
                    continue;
                };
                let events = events.clone();
                puts.spawn(async move { copy(&events, old).await });
            }
            while let Some(joined) = puts.join_next().await {
                let copied = joined.map_err(|e| PortError::unavailable("dynamodb", e))??;
                if copied.event {
                    report.copied += 1;
                } else {
                    report.present += 1;
                }
                report.id_entries += u64::from(copied.entry);
                listed.extend(copied.kept);
            }
        }
        // Named by the page's first event, so that a run again rewrites the same pages.
        if let Some(first) = listed.first() {
            let batch = format!(
                "migrated-{}-{}",
                first.user,
                event_sort_key(first.received_at, &first.id)
            );
            pages.record(&batch, &paginate(&listed)).await?;
        }
    }
    Ok(report)
}
