//! Newest-first, cursor-paginated listings of events and alerts.
//!
//! Listings for one user (or one rule) query an index partitioned by it. Listings across
//! everyone query the `by_hour` indexes one hour bucket at a time, walking back from `to`.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::items::{Item, corrupt, unavailable, value};
use cuba_core::alert::{AlertEntry, AlertFilter};
use cuba_core::domain::{Millis, StoredEvent};
use cuba_core::listing::{EventFilter, Page, Times};
use cuba_core::ports::{Browse, PortError};

/// The bucket an item is indexed under in the `by_hour` indexes: whole hours since the epoch.
pub fn hour_of(at: Millis) -> u64 {
    crate::partition_keys::hour_bucket(at)
}

/// Where a listing stopped: the hour bucket (for cross-partition walks) and the last key read.
#[derive(Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hour: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Value>,
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(raw: &str) -> Result<Cursor, PortError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| PortError::InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| PortError::InvalidCursor)
    }

    fn start_key(&self) -> Result<Option<Item>, PortError> {
        self.key
            .as_ref()
            .map(|k| serde_dynamo::to_item(k).map_err(|_| PortError::InvalidCursor))
            .transpose()
    }
}

fn key_json(key: Item) -> Option<Value> {
    serde_dynamo::from_item(key).ok()
}

/// What to query: one index partition, or the hour buckets of a `by_hour` index.
pub(super) enum Partition {
    Fixed {
        index: &'static str,
        attribute: &'static str,
        value: AttributeValue,
    },
    Hourly {
        index: &'static str,
    },
}

pub(super) struct Listing<'a> {
    pub client: &'a Client,
    pub table: &'a str,
    pub partition: Partition,
    pub sort_attribute: &'static str,
    pub from: Millis,
    pub to: Millis,
    pub filters: Vec<Filter>,
}

/// A condition applied after the key condition (all of them must hold).
pub(super) struct Filter {
    pub attribute: &'static str,
    pub value: AttributeValue,
    /// `contains(attribute, value)` (a list holds the value) instead of equality.
    pub contains: bool,
}

impl Filter {
    pub(super) fn eq(attribute: &'static str, value: AttributeValue) -> Self {
        Filter {
            attribute,
            value,
            contains: false,
        }
    }
}

impl Listing<'_> {
    /// One page of items decoded as `T`, and the cursor for the next.
    pub(super) async fn page<T: DeserializeOwned>(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<T>, PortError> {
        let (items, next) = self.raw_page(limit, cursor).await?;
        let items = items
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?;
        Ok(Page { items, next })
    }

    async fn raw_page(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), PortError> {
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let mut hour = match (&self.partition, &cursor) {
            (Partition::Hourly { .. }, Some(c)) => c.hour.ok_or(PortError::InvalidCursor)?,
            (Partition::Hourly { .. }, None) => hour_of(self.to),
            (Partition::Fixed { .. }, _) => 0,
        };
        let mut start_key = cursor
            .as_ref()
            .map(Cursor::start_key)
            .transpose()?
            .flatten();
        let mut items = Vec::new();
        loop {
            let (index, partition_attribute, partition_value) = match &self.partition {
                Partition::Fixed {
                    index,
                    attribute,
                    value,
                } => (*index, *attribute, value.clone()),
                Partition::Hourly { index } => {
                    (*index, "hour", AttributeValue::N(hour.to_string()))
                }
            };
            let mut query = self
                .client
                .query()
                .table_name(self.table)
                .index_name(index)
                .key_condition_expression("#p = :p AND #s BETWEEN :from AND :to")
                .expression_attribute_names("#p", partition_attribute)
                .expression_attribute_names("#s", self.sort_attribute)
                .expression_attribute_values(":p", partition_value)
                .expression_attribute_values(":from", AttributeValue::N(self.from.0.to_string()))
                .expression_attribute_values(":to", AttributeValue::N(self.to.0.to_string()))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start_key.take());
            if !self.filters.is_empty() {
                let mut conditions = Vec::new();
                for (i, filter) in self.filters.iter().enumerate() {
                    conditions.push(if filter.contains {
                        format!("contains(#f{i}, :f{i})")
                    } else {
                        format!("#f{i} = :f{i}")
                    });
                    query = query
                        .expression_attribute_names(format!("#f{i}"), filter.attribute)
                        .expression_attribute_values(format!(":f{i}"), filter.value.clone());
                }
                query = query.filter_expression(conditions.join(" AND "));
            }
            let out = query.send().await.map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(last) => {
                    if items.len() >= limit {
                        let next = Cursor {
                            hour: matches!(self.partition, Partition::Hourly { .. })
                                .then_some(hour),
                            key: key_json(last),
                        };
                        return Ok((items, Some(next.encode())));
                    }
                    start_key = Some(last);
                }
                None => {
                    let more_hours = matches!(self.partition, Partition::Hourly { .. })
                        && hour > hour_of(self.from);
                    if !more_hours {
                        return Ok((items, None));
                    }
                    hour -= 1;
                    if items.len() >= limit {
                        let next = Cursor {
                            hour: Some(hour),
                            key: None,
                        };
                        return Ok((items, Some(next.encode())));
                    }
                }
            }
        }
    }
}

/// Every `sort_attribute` in `[from, to]` of a `by_hour` index, reading only that attribute.
async fn hourly_times(
    client: &Client,
    table: &str,
    sort_attribute: &str,
    from: Millis,
    to: Millis,
    cap: usize,
) -> Result<Times, PortError> {
    let mut times = Vec::new();
    for hour in hour_of(from)..=hour_of(to) {
        let mut start_key = None;
        loop {
            let out = client
                .query()
                .table_name(table)
                .index_name("by_hour")
                .key_condition_expression("#h = :h AND #s BETWEEN :from AND :to")
                .projection_expression("#s")
                .expression_attribute_names("#h", "hour")
                .expression_attribute_names("#s", sort_attribute)
                .expression_attribute_values(":h", AttributeValue::N(hour.to_string()))
                .expression_attribute_values(":from", AttributeValue::N(from.0.to_string()))
                .expression_attribute_values(":to", AttributeValue::N(to.0.to_string()))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(unavailable)?;
            for mut item in out.items.unwrap_or_default() {
                if times.len() >= cap {
                    return Ok(Times {
                        times,
                        truncated: true,
                    });
                }
                let at = match item.remove(sort_attribute) {
                    Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| PortError::corrupt(format!("{table}: a bad {sort_attribute}")))?;
                times.push(Millis(at));
            }
            start_key = out.last_evaluated_key;
            if start_key.is_none() {
                break;
            }
        }
    }
    Ok(Times {
        times,
        truncated: false,
    })
}

/// Listings over the events table and the alert ledger.
#[derive(Debug, Clone)]
pub struct DynamoBrowse {
    client: Client,
    events_table: String,
    alerts_table: String,
}

impl DynamoBrowse {
    pub fn new(
        client: Client,
        events_table: impl Into<String>,
        alerts_table: impl Into<String>,
    ) -> Self {
        DynamoBrowse {
            client,
            events_table: events_table.into(),
            alerts_table: alerts_table.into(),
        }
    }
}

#[async_trait]
impl Browse for DynamoBrowse {
    async fn events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<StoredEvent>, PortError> {
        let partition = match (&filter.session, filter.user) {
            (Some(session), _) => Partition::Fixed {
                index: "by_session",
                attribute: "session_id",
                value: AttributeValue::S(session.as_str().to_owned()),
            },
            (None, Some(user)) => Partition::Fixed {
                index: crate::events::EVENTS_BY_RECEIVED_INDEX,
                attribute: "user",
                value: AttributeValue::N(user.to_string()),
            },
            (None, None) => Partition::Hourly { index: "by_hour" },
        };
        let mut filters: Vec<Filter> = filter
            .kind
            .map(|kind| value(kind).map(|v| Filter::eq("kind", v)))
            .transpose()?
            .into_iter()
            .collect();
        if let (Some(_), Some(user)) = (&filter.session, filter.user) {
            filters.push(Filter::eq("user", AttributeValue::N(user.to_string())));
        }
        let listing = Listing {
            client: &self.client,
            table: &self.events_table,
            partition,
            sort_attribute: "received_at",
            from: filter.from,
            to: filter.to,
            filters,
        };
        listing.page(limit, cursor).await
    }

    async fn alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AlertEntry>, PortError> {
        let (partition, rule_filter) = match (filter.user, &filter.rule) {
            (Some(user), rule) => (
                Partition::Fixed {
                    index: "by_user",
                    attribute: "user",
                    value: AttributeValue::N(user.to_string()),
                },
                rule.as_ref()
                    .map(|r| Filter::eq("rule_id", AttributeValue::S(r.as_str().to_owned()))),
            ),
            (None, Some(rule)) => (
                Partition::Fixed {
                    index: "by_rule",
                    attribute: "rule_id",
                    value: AttributeValue::S(rule.as_str().to_owned()),
                },
                None,
            ),
            (None, None) => (Partition::Hourly { index: "by_hour" }, None),
        };
        let listing = Listing {
            client: &self.client,
            table: &self.alerts_table,
            partition,
            sort_attribute: "fired_at",
            from: filter.from,
            to: filter.to,
            filters: rule_filter.into_iter().collect(),
        };
        listing.page(limit, cursor).await
    }

    async fn event_times(&self, from: Millis, to: Millis, cap: usize) -> Result<Times, PortError> {
        hourly_times(
            &self.client,
            &self.events_table,
            "received_at",
            from,
            to,
            cap,
        )
        .await
    }

    async fn alert_times(&self, from: Millis, to: Millis, cap: usize) -> Result<Times, PortError> {
        hourly_times(&self.client, &self.alerts_table, "fired_at", from, to, cap).await
    }
}
