//! Window buckets in the rule-state table: one item per (rule definition, user, bucket),
//! `window#{rule}#{definition}#{user}#{bucket}`, holding each member as its own attribute
//! (`m_{event id}` → `[received_at, amount as text]`, and the member's `distinct` value as a
//! third element when it has one) and a count `n`. Recording is one conditional
//! update: the member is added only if it is not there yet and the bucket has room, so a repeat
//! changes nothing; a full bucket is marked `overflowed`. A window is read with one strongly
//! consistent batch read of at most three items (the window, and the windows of the members
//! received after the trigger that it joins).

use std::ops::RangeInclusive;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::items::{Item, batch_get, condition_held, n, s};
use crate::partition_keys::window_bucket;
use cuba_core::evaluation::ports::WindowStore;
use cuba_core::evaluation::window::{
    MAX_BUCKET_MEMBERS, Recorded, WindowKey, WindowMember, WindowRead,
};
use cuba_core::model::domain::{EventId, Millis};
use cuba_core::model::ports::PortError;

/// The prefix of a member's attribute name; the rest is the event id.
const MEMBER_PREFIX: &str = "m_";

#[derive(Debug, Clone)]
pub struct DynamoWindows {
    client: Client,
    table: String,
}

impl DynamoWindows {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoWindows {
            client,
            table: table.into(),
        }
    }

    fn key(window: &WindowKey, bucket: u64) -> Item {
        Item::from([(
            "pk".to_owned(),
            s(window_bucket(
                &window.rule,
                window.definition,
                window.user,
                bucket,
            )),
        )])
    }
}

#[async_trait]
impl WindowStore for DynamoWindows {
    async fn record(
        &self,
        window: &WindowKey,
        member: &WindowMember,
    ) -> Result<Recorded, PortError> {
        let bucket = window.bucket_of(member.received_at);
        let key = Self::key(window, bucket);
        let name = format!("{MEMBER_PREFIX}{}", member.id.as_str());
        let expires = window.bucket_expires_at(bucket).0 / 1000 + 24 * 3600;
        let added = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression("SET #m = :m, expires_at = :exp ADD #n :one")
            .condition_expression(
                "attribute_not_exists(#m) AND (attribute_not_exists(#n) OR #n < :cap)",
            )
            .expression_attribute_names("#m", &name)
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(
                ":m",
                // The amount as Rust writes an f64 (exponent and all): it reads back exactly,
                // and a number past DynamoDB's 38 digits cannot make the update fail.
                AttributeValue::L(
                    [n(member.received_at.0), s(format!("{:?}", member.amount))]
                        .into_iter()
                        .chain(member.value.as_deref().map(s))
                        .collect(),
                ),
            )
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(MAX_BUCKET_MEMBERS))
            .send()
            .await;
        if condition_held(added)? {
            return Ok(Recorded::Kept);
        }
        // Either the member is there already (a repeat: nothing to do) or the bucket is full.
        let full = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET overflowed = :t")
            .condition_expression("attribute_not_exists(#m)")
            .expression_attribute_names("#m", &name)
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        Ok(if condition_held(full)? {
            Recorded::Overflowed
        } else {
            Recorded::Kept
        })
    }

    async fn buckets(
        &self,
        window: &WindowKey,
        buckets: RangeInclusive<u64>,
    ) -> Result<WindowRead, PortError> {
        let keys: Vec<Item> = buckets.map(|bucket| Self::key(window, bucket)).collect();
        let mut members = Vec::new();
        for item in batch_get(&self.client, &self.table, keys, true).await? {
            if matches!(item.get("overflowed"), Some(AttributeValue::Bool(true))) {
                return Ok(WindowRead::Overflowed);
            }
            for (name, value) in &item {
                if let Some(id) = name.strip_prefix(MEMBER_PREFIX) {
                    members.push(member(id, value)?);
                }
            }
        }
        Ok(WindowRead::Members(members))
    }
}

fn member(id: &str, value: &AttributeValue) -> Result<WindowMember, PortError> {
    let corrupt = || PortError::corrupt(format!("window member {id}"));
    let AttributeValue::L(parts) = value else {
        return Err(corrupt());
    };
    let number = |i: usize| match parts.get(i) {
        Some(AttributeValue::N(raw) | AttributeValue::S(raw)) => Some(raw.as_str()),
        _ => None,
    };
    Ok(WindowMember {
        id: EventId::parse(id).map_err(|_| corrupt())?,
        received_at: Millis(number(0).and_then(|r| r.parse().ok()).ok_or_else(corrupt)?),
        amount: number(1).and_then(|r| r.parse().ok()).ok_or_else(corrupt)?,
        value: match parts.get(2) {
            None => None,
            Some(AttributeValue::S(value)) => Some(value.clone()),
            Some(_) => return Err(corrupt()),
        },
    })
}
