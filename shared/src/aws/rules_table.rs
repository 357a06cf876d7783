use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde_json::Value;

use super::items::{Item, condition_held, n, s, unavailable};
use crate::domain::Millis;
use crate::ports::{PortError, RuleAction, RuleRecord, RuleRevision, RuleStore, RuleWriteError};
use crate::rules::RuleId;

/// Rule ids cannot contain `#`, so this key never collides with a rule.
const SEEDED_MARKER: &str = "#seeded";
/// Each rule's current state lives at version 0; its revisions at versions 1, 2, ...
const HEAD: &str = "0";

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn document(item: &Item) -> Result<Option<Value>, PortError> {
    get_s(item, "document")
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| PortError::Corrupt(format!("rule document: {e}")))
}

/// Rules in one table keyed (`doc_id`, `version`): the head item (version 0) holds the current
/// document and `current_version`; every change also writes an immutable revision item.
#[derive(Debug, Clone)]
pub struct DynamoRuleStore {
    client: Client,
    table: String,
}

struct Head {
    version: u64,
    deleted: bool,
}

impl DynamoRuleStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoRuleStore {
            client,
            table: table.into(),
        }
    }

    async fn head_item(&self, id: &str) -> Result<Option<Item>, PortError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("doc_id", s(id))
            .key("version", n(HEAD))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item)
    }

    async fn head(&self, id: &RuleId) -> Result<Option<Head>, PortError> {
        Ok(self.head_item(id.as_str()).await?.map(|item| Head {
            version: get_n(&item, "current_version").unwrap_or(0),
            deleted: item
                .get("deleted")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        }))
    }

    fn record(item: &Item) -> Result<Option<RuleRecord>, PortError> {
        if item.get("deleted").and_then(|v| v.as_bool().ok()) == Some(&true) {
            return Ok(None);
        }
        let Some(id) = get_s(item, "doc_id").and_then(|id| RuleId::parse(id).ok()) else {
            return Ok(None);
        };
        let Some(document) = document(item)? else {
            return Ok(None);
        };
        Ok(Some(RuleRecord {
            id,
            version: get_n(item, "current_version").unwrap_or(0),
            document,
            updated_by: get_s(item, "updated_by").unwrap_or_default().to_owned(),
            updated_at: Millis(get_n(item, "updated_at").unwrap_or(0)),
        }))
    }
}

#[async_trait]
impl RuleStore for DynamoRuleStore {
    async fn current(&self) -> Result<Option<Vec<RuleRecord>>, PortError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("#version = :head")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":head", n(HEAD))
            .into_paginator()
            .send();
        let mut seeded = false;
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            for item in page.map_err(unavailable)?.items.unwrap_or_default() {
                if get_s(&item, "doc_id") == Some(SEEDED_MARKER) {
                    seeded = true;
                } else if let Some(record) = Self::record(&item)? {
                    records.push(record);
                }
            }
        }
        records.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        Ok(seeded.then_some(records))
    }

    async fn get(&self, id: &RuleId) -> Result<Option<RuleRecord>, PortError> {
        match self.head_item(id.as_str()).await? {
            None => Ok(None),
            Some(item) => Self::record(&item),
        }
    }

    async fn seed(
        &self,
        rules: &[(RuleId, Value)],
        by: &str,
        at: Millis,
    ) -> Result<bool, PortError> {
        if self.head_item(SEEDED_MARKER).await?.is_some() {
            return Ok(false);
        }
        // Rules first, marker last: a seeder that dies half-way leaves the store unseeded, and
        // the next start finishes the job (rules already there are left as they are).
        for (id, document) in rules {
            match self
                .write(id, 0, Some(document), RuleAction::Seeded, by, at)
                .await
            {
                Ok(_) | Err(RuleWriteError::Conflict { .. }) => {}
                Err(RuleWriteError::Port(e)) => return Err(e),
            }
        }
        let marked = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("doc_id", s(SEEDED_MARKER))
            .item("version", n(HEAD))
            .item("seeded_by", s(by))
            .item("seeded_at", n(at.0))
            .condition_expression("attribute_not_exists(doc_id)")
            .send()
            .await;
        condition_held(marked)
    }

    async fn write(
        &self,
        id: &RuleId,
        expected: u64,
        document: Option<&Value>,
        action: RuleAction,
        by: &str,
        at: Millis,
    ) -> Result<u64, RuleWriteError> {
        let head = self.head(id).await?;
        let base = match (&head, expected) {
            (None, 0) => 0,
            (Some(h), 0) if h.deleted => h.version,
            (Some(h), e) if !h.deleted && h.version == e => e,
            (Some(h), _) => {
                return Err(RuleWriteError::Conflict {
                    current: (!h.deleted).then_some(h.version),
                });
            }
            (None, _) => return Err(RuleWriteError::Conflict { current: None }),
        };
        let version = base + 1;
        let text = document.map(Value::to_string);
        let mut head_item = Item::from([
            ("doc_id".to_owned(), s(id.as_str())),
            ("version".to_owned(), n(HEAD)),
            ("current_version".to_owned(), n(version)),
            (
                "deleted".to_owned(),
                AttributeValue::Bool(document.is_none()),
            ),
            ("updated_by".to_owned(), s(by)),
            ("updated_at".to_owned(), n(at.0)),
        ]);
        let mut revision = Item::from([
            ("doc_id".to_owned(), s(id.as_str())),
            ("version".to_owned(), n(version)),
            ("action".to_owned(), s(action.as_str())),
            ("updated_by".to_owned(), s(by)),
            ("updated_at".to_owned(), n(at.0)),
        ]);
        if let Some(text) = text {
            head_item.insert("document".to_owned(), s(text.clone()));
            revision.insert("document".to_owned(), s(text));
        }
        let head_put = match head {
            None => Put::builder().condition_expression("attribute_not_exists(doc_id)"),
            Some(_) => Put::builder()
                .condition_expression("current_version = :base")
                .expression_attribute_values(":base", n(base)),
        }
        .table_name(&self.table)
        .set_item(Some(head_item))
        .build()
        .map_err(|e| PortError::Corrupt(e.to_string()))?;
        let revision_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(revision))
            .condition_expression("attribute_not_exists(doc_id)")
            .build()
            .map_err(|e| PortError::Corrupt(e.to_string()))?;
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(head_put).build())
            .transact_items(TransactWriteItem::builder().put(revision_put).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(version),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_transaction_canceled_exception()) =>
            {
                let current = self
                    .head(id)
                    .await?
                    .filter(|h| !h.deleted)
                    .map(|h| h.version);
                Err(RuleWriteError::Conflict { current })
            }
            Err(e) => Err(unavailable(e).into()),
        }
    }

    async fn history(&self, id: &RuleId) -> Result<Vec<RuleRevision>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("doc_id = :id AND #version > :head")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":id", s(id.as_str()))
            .expression_attribute_values(":head", n(HEAD))
            .scan_index_forward(false)
            .into_paginator()
            .send();
        let mut revisions = Vec::new();
        while let Some(page) = pages.next().await {
            for item in page.map_err(unavailable)?.items.unwrap_or_default() {
                let action = get_s(&item, "action")
                    .and_then(|a| serde_json::from_value(Value::String(a.to_owned())).ok())
                    .ok_or_else(|| PortError::Corrupt("rule revision without an action".into()))?;
                revisions.push(RuleRevision {
                    version: get_n(&item, "version").unwrap_or(0),
                    action,
                    document: document(&item)?,
                    updated_by: get_s(&item, "updated_by").unwrap_or_default().to_owned(),
                    updated_at: Millis(get_n(&item, "updated_at").unwrap_or(0)),
                });
            }
        }
        Ok(revisions)
    }
}
