//! The per-minute tally of events and alerts, in the rule-state table: one item per hour and
//! shard (`tally#{hour}#{shard}`) with a counter per minute (`e07`, `a07`, `d07`, `f07`: events,
//! alerts, SMS delivered and SMS failed in minute 7). A stream batch adds its counts in one update per hour it covers, to a shard picked
//! at random, so no item takes more than a small share of the writes; the dashboard's hour is
//! two hours' shards, read in one batch.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::items::{Item, any_of, batch_get, n, s, unavailable};
use crate::partition_keys::{TALLY_SHARDS, tally};
use cuba_core::console::activity::{MinuteCounts, Tally};
use cuba_core::console::ports::ActivityTally;
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;

/// Tally items outlive the dashboard's longest chart (3 hours) by this much.
const TALLY_KEPT_SECONDS: u64 = 2 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct DynamoActivityTally {
    client: Client,
    table: String,
}

impl DynamoActivityTally {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoActivityTally {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl ActivityTally for DynamoActivityTally {
    async fn add(&self, counts: &MinuteCounts) -> Result<(), PortError> {
        let mut hours: Vec<(u64, Vec<(u64, Tally)>)> = Vec::new();
        for (minute, t) in counts.minutes() {
            let hour = minute / 60;
            match hours.last_mut() {
                Some((h, minutes)) if *h == hour => minutes.push((minute % 60, t)),
                _ => hours.push((hour, vec![(minute % 60, t)])),
            }
        }
        let shard = any_of(u32::from(TALLY_SHARDS)) as u16;
        for (hour, minutes) in hours {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(tally(hour, shard)))
                .expression_attribute_values(":exp", n((hour + 1) * 3600 + TALLY_KEPT_SECONDS));
            let mut adds = Vec::new();
            for (m, t) in minutes {
                for (prefix, count) in [
                    ("e", t.events),
                    ("a", t.alerts),
                    ("d", t.delivered),
                    ("f", t.failed),
                ] {
                    if count == 0 {
                        continue;
                    }
                    adds.push(format!("#{prefix}{m:02} :{prefix}{m:02}"));
                    update = update
                        .expression_attribute_names(
                            format!("#{prefix}{m:02}"),
                            format!("{prefix}{m:02}"),
                        )
                        .expression_attribute_values(format!(":{prefix}{m:02}"), n(count));
                }
            }
            if adds.is_empty() {
                continue;
            }
            update
                .update_expression(format!("ADD {} SET expires_at = :exp", adds.join(", ")))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn counts(&self, from: Millis, to: Millis) -> Result<MinuteCounts, PortError> {
        let mut out = MinuteCounts::default();
        if to <= from {
            return Ok(out);
        }
        let (first, last) = (
            MinuteCounts::minute_of(from),
            MinuteCounts::minute_of(Millis(to.0 - 1)),
        );
        let keys: Vec<Item> = (first / 60..=last / 60)
            .flat_map(|hour| (0..TALLY_SHARDS).map(move |shard| tally(hour, shard)))
            .map(|pk| Item::from([("pk".to_owned(), s(pk))]))
            .collect();
        for item in batch_get(&self.client, &self.table, keys, false).await? {
            add_item(&mut out, &item, first..=last)?;
        }
        Ok(out)
    }
}

/// Adds one tally item's minutes that fall in `minutes` to `out`.
fn add_item(
    out: &mut MinuteCounts,
    item: &Item,
    minutes: std::ops::RangeInclusive<u64>,
) -> Result<(), PortError> {
    let hour = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.split('#').nth(1).and_then(|h| h.parse::<u64>().ok()),
        _ => None,
    }
    .ok_or_else(|| PortError::corrupt("a tally item's key"))?;
    for (name, value) in item {
        let (series, minute) = match name.split_at_checked(1) {
            Some((series @ ("e" | "a" | "d" | "f"), m)) => (series, m),
            _ => continue,
        };
        let (Ok(minute), AttributeValue::N(count)) = (minute.parse::<u64>(), value) else {
            continue;
        };
        let count: u64 = count
            .parse()
            .map_err(|_| PortError::corrupt(format!("tally {name}: not a count")))?;
        let minute = hour * 60 + minute;
        if minutes.contains(&minute) {
            let mut tally = Tally::default();
            match series {
                "e" => tally.events = count,
                "a" => tally.alerts = count,
                "d" => tally.delivered = count,
                _ => tally.failed = count,
            }
            out.add(minute, tally);
        }
    }
    Ok(())
}
