//! The per-minute tally of events and alerts, in the rule-state table: one item per hour and
//! shard (`tally#{hour}#{shard}`) with a counter per minute (`e07`, `i07`, `a07`, `d07`, `f07`:
//! events, of those invalid, alerts, SMS delivered and SMS failed in minute 7). A stream batch adds its counts in one update per hour it covers, to a shard picked
//! at random, so no item takes more than a small share of the writes; the dashboard's hour is
//! two hours' shards, read in one batch.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use std::ops::RangeInclusive;

use crate::items::{Item, any_of, batch_get, condition_held, n, s, unavailable};
use crate::partition_keys::{TALLY_SHARDS, rule_day, tally};
use cuba_core::console::activity::{MinuteCounts, Tally};
use cuba_core::console::ports::ActivityTally;
use cuba_core::console::rule_health::{RuleDay, RuleDays};
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;
use cuba_core::rules::RuleId;

/// Tally items are kept this long past their hour: the dashboard's longest chart (3 hours) is
/// compared with the same minutes a day and a week earlier.
const TALLY_KEPT_SECONDS: u64 = 8 * 24 * 3600;

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
                    ("i", t.invalid),
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

    async fn add_rule_days(&self, counts: &RuleDays) -> Result<(), PortError> {
        for (rule, day, day_counts) in counts.entries() {
            self.add_rule_day(rule, day, day_counts).await?;
        }
        Ok(())
    }

    async fn rule_days(
        &self,
        rules: &[RuleId],
        days: RangeInclusive<u64>,
    ) -> Result<RuleDays, PortError> {
        let keys: Vec<Item> = rules
            .iter()
            .flat_map(|rule| days.clone().map(move |day| rule_day(rule, day)))
            .map(|pk| Item::from([("pk".to_owned(), s(pk))]))
            .collect();
        let mut out = RuleDays::default();
        for item in batch_get(&self.client, &self.table, keys, false).await? {
            let (rule, day, counts) = rule_day_of(&item)?;
            out.add(&rule, day, &counts);
        }
        Ok(out)
    }
}

/// What a rule did on a day is kept a month: the console looks at a week at most.
const RULE_DAY_KEPT_SECONDS: u64 = 35 * 24 * 3600;

impl DynamoActivityTally {
    /// Adds one rule's counts of one day to its item (`ruleday#{rule}#{day}`): counters added
    /// atomically, and the last firing kept only if it is later than the one there.
    async fn add_rule_day(
        &self,
        rule: &RuleId,
        day: u64,
        counts: &RuleDay,
    ) -> Result<(), PortError> {
        let key = s(rule_day(rule, day));
        let mut adds = vec!["matched :matched".to_owned(), "fired :fired".to_owned()];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key.clone())
            .expression_attribute_values(":matched", n(counts.matched))
            .expression_attribute_values(":fired", n(counts.fired))
            .expression_attribute_values(":exp", n((day + 1) * 24 * 3600 + RULE_DAY_KEPT_SECONDS));
        for (i, (status, count)) in counts.statuses.iter().enumerate() {
            adds.push(format!("#s{i} :s{i}"));
            update = update
                .expression_attribute_names(format!("#s{i}"), format!("{STATUS_PREFIX}{status}"))
                .expression_attribute_values(format!(":s{i}"), n(count));
        }
        update
            .update_expression(format!("ADD {} SET expires_at = :exp", adds.join(", ")))
            .send()
            .await
            .map_err(unavailable)?;
        if let Some(last) = counts.last_fired_at {
            let later = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", key)
                .update_expression("SET last_fired_at = :last")
                .condition_expression(
                    "attribute_not_exists(last_fired_at) OR last_fired_at < :last",
                )
                .expression_attribute_values(":last", n(last.0))
                .send()
                .await;
            // Refused: a later firing is kept already.
            condition_held(later)?;
        }
        Ok(())
    }
}

/// How a status's counter is named on a rule's day item: `st_sent`.
const STATUS_PREFIX: &str = "st_";

/// A rule's day item read back.
fn rule_day_of(item: &Item) -> Result<(RuleId, u64, RuleDay), PortError> {
    let corrupt = || PortError::corrupt("a rule's day counts");
    let pk = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk,
        _ => return Err(corrupt()),
    };
    let mut parts = pk.splitn(3, '#');
    let (Some(_), Some(rule), Some(day)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt());
    };
    let rule = RuleId::parse(rule).map_err(|_| corrupt())?;
    let day: u64 = day.parse().map_err(|_| corrupt())?;
    let number = |value: &AttributeValue| -> Result<u64, PortError> {
        match value {
            AttributeValue::N(text) => text.parse().map_err(|_| corrupt()),
            _ => Err(corrupt()),
        }
    };
    let mut counts = RuleDay::default();
    for (name, value) in item {
        match name.as_str() {
            "matched" => counts.matched = number(value)?,
            "fired" => counts.fired = number(value)?,
            "last_fired_at" => counts.last_fired_at = Some(Millis(number(value)?)),
            other => {
                if let Some(status) = other.strip_prefix(STATUS_PREFIX) {
                    counts.statuses.insert(status.to_owned(), number(value)?);
                }
            }
        }
    }
    Ok((rule, day, counts))
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
            Some((series @ ("e" | "i" | "a" | "d" | "f"), m)) => (series, m),
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
                "i" => tally.invalid = count,
                "a" => tally.alerts = count,
                "d" => tally.delivered = count,
                _ => tally.failed = count,
            }
            out.add(minute, tally);
        }
    }
    Ok(())
}
