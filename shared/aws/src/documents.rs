//! A document table (rules, or event schemas): versioned documents keyed (`doc_id`, `version`).
//! The head item (version 0) holds the current document and `current_version`; every change
//! also writes an immutable revision item, in one transaction with the head.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::items::{Item, condition_held, corrupt, read_item, unavailable, value};
use cuba_core::model::document::{DocumentAction, DocumentId, DocumentRecord, DocumentRevision};
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::{DocumentStore, DocumentWriteError, PortError};

/// Document ids cannot contain `#`, so this key never collides with a document.
const SEEDED_MARKER: &str = "#seeded";
/// Each document's current state lives at version 0; its revisions at versions 1, 2, ...
const HEAD: u64 = 0;

/// A head item (or, with `doc_id` [`SEEDED_MARKER`], the marker that the store was seeded).
#[derive(Serialize, Deserialize)]
struct HeadRow {
    doc_id: String,
    version: u64,
    #[serde(default)]
    current_version: u64,
    #[serde(default)]
    deleted: bool,
    /// The document's JSON text; absent once deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    document: Option<String>,
    #[serde(default)]
    updated_by: String,
    #[serde(default)]
    updated_at: Millis,
}

/// An immutable revision item.
#[derive(Serialize, Deserialize)]
struct RevisionRow {
    doc_id: DocumentId,
    version: u64,
    action: DocumentAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    document: Option<String>,
    updated_by: String,
    updated_at: Millis,
}

#[derive(Serialize)]
struct SeededRow<'a> {
    doc_id: &'static str,
    version: u64,
    seeded_by: &'a str,
    seeded_at: Millis,
}

fn parse_document(text: &str) -> Result<Value, PortError> {
    serde_json::from_str(text).map_err(|e| PortError::corrupt_from("a stored document", e))
}

impl HeadRow {
    /// The record this head describes; `None` once deleted.
    fn record(self) -> Result<Option<DocumentRecord>, PortError> {
        let (false, Some(text)) = (self.deleted, self.document) else {
            return Ok(None);
        };
        let id = DocumentId::parse(&self.doc_id)
            .map_err(|e| PortError::corrupt_from(format!("document id {:?}", self.doc_id), e))?;
        Ok(Some(DocumentRecord {
            id,
            version: self.current_version,
            document: parse_document(&text)?,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        }))
    }
}

#[derive(Debug, Clone)]
pub struct DynamoDocumentStore {
    client: Client,
    table: String,
}

impl DynamoDocumentStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDocumentStore {
            client,
            table: table.into(),
        }
    }

    async fn head(&self, id: &str) -> Result<Option<HeadRow>, PortError> {
        let key = Item::from([
            ("doc_id".to_owned(), value(id)?),
            ("version".to_owned(), value(HEAD)?),
        ]);
        read_item(&self.client, &self.table, key).await
    }

    /// The version a writer must have seen, and whether the document is deleted.
    async fn head_version(&self, id: &DocumentId) -> Result<Option<(u64, bool)>, PortError> {
        Ok(self
            .head(id.as_str())
            .await?
            .map(|h| (h.current_version, h.deleted)))
    }
}

#[async_trait]
impl DocumentStore for DynamoDocumentStore {
    async fn current(&self) -> Result<Option<Vec<DocumentRecord>>, PortError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("#version = :head")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":head", value(HEAD)?)
            .into_paginator()
            .send();
        let mut seeded = false;
        let mut records = Vec::new();
        while let Some(page) = pages.next().await {
            for item in page.map_err(unavailable)?.items.unwrap_or_default() {
                let head: HeadRow = serde_dynamo::from_item(item).map_err(corrupt)?;
                if head.doc_id == SEEDED_MARKER {
                    seeded = true;
                } else if let Some(record) = head.record()? {
                    records.push(record);
                }
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(seeded.then_some(records))
    }

    async fn get(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, PortError> {
        match self.head(id.as_str()).await? {
            None => Ok(None),
            Some(head) => head.record(),
        }
    }

    async fn seed(
        &self,
        documents: &[(DocumentId, Value)],
        by: &str,
        at: Millis,
    ) -> Result<bool, PortError> {
        if self.head(SEEDED_MARKER).await?.is_some() {
            return Ok(false);
        }
        // Documents first, marker last: a seeder that dies half-way leaves the store unseeded,
        // and the next start finishes the job (documents already there are left as they are).
        for (id, document) in documents {
            match self
                .write(id, 0, Some(document), DocumentAction::Seeded, by, at)
                .await
            {
                Ok(_) | Err(DocumentWriteError::Conflict { .. }) => {}
                Err(DocumentWriteError::Port(e)) => return Err(e),
            }
        }
        let marker = SeededRow {
            doc_id: SEEDED_MARKER,
            version: HEAD,
            seeded_by: by,
            seeded_at: at,
        };
        let marked = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(marker).map_err(corrupt)?))
            .condition_expression("attribute_not_exists(doc_id)")
            .send()
            .await;
        condition_held(marked)
    }

    async fn write(
        &self,
        id: &DocumentId,
        expected: u64,
        document: Option<&Value>,
        action: DocumentAction,
        by: &str,
        at: Millis,
    ) -> Result<u64, DocumentWriteError> {
        let head = self.head_version(id).await?;
        let base = match (head, expected) {
            (None, 0) => 0,
            (Some((version, true)), 0) => version,
            (Some((version, false)), e) if version == e => e,
            (Some((version, deleted)), _) => {
                return Err(DocumentWriteError::Conflict {
                    current: (!deleted).then_some(version),
                });
            }
            (None, _) => return Err(DocumentWriteError::Conflict { current: None }),
        };
        let version = base + 1;
        let text = document.map(Value::to_string);
        let head_row = HeadRow {
            doc_id: id.as_str().to_owned(),
            version: HEAD,
            current_version: version,
            deleted: document.is_none(),
            document: text.clone(),
            updated_by: by.to_owned(),
            updated_at: at,
        };
        let revision = RevisionRow {
            doc_id: id.clone(),
            version,
            action,
            document: text,
            updated_by: by.to_owned(),
            updated_at: at,
        };
        let head_put = match head {
            None => Put::builder().condition_expression("attribute_not_exists(doc_id)"),
            Some(_) => Put::builder()
                .condition_expression("current_version = :base")
                .expression_attribute_values(":base", value(base)?),
        }
        .table_name(&self.table)
        .set_item(Some(serde_dynamo::to_item(head_row).map_err(corrupt)?))
        .build()
        .map_err(|e| PortError::corrupt_from("a transaction item", e))?;
        let revision_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(revision).map_err(corrupt)?))
            .condition_expression("attribute_not_exists(doc_id)")
            .build()
            .map_err(|e| PortError::corrupt_from("a transaction item", e))?;
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
                    .head_version(id)
                    .await?
                    .filter(|(_, deleted)| !deleted)
                    .map(|(version, _)| version);
                Err(DocumentWriteError::Conflict { current })
            }
            Err(e) => Err(unavailable(e).into()),
        }
    }

    async fn history(&self, id: &DocumentId) -> Result<Vec<DocumentRevision>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("doc_id = :id AND #version > :head")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":id", value(id)?)
            .expression_attribute_values(":head", value(HEAD)?)
            .scan_index_forward(false)
            .into_paginator()
            .send();
        let mut revisions = Vec::new();
        while let Some(page) = pages.next().await {
            for item in page.map_err(unavailable)?.items.unwrap_or_default() {
                let row: RevisionRow = serde_dynamo::from_item(item).map_err(corrupt)?;
                revisions.push(DocumentRevision {
                    version: row.version,
                    action: row.action,
                    document: row.document.as_deref().map(parse_document).transpose()?,
                    updated_by: row.updated_by,
                    updated_at: row.updated_at,
                });
            }
        }
        Ok(revisions)
    }
}
