//! A document store (rules or schemas) in memory: heads and revisions with the DynamoDB
//! adapter's versioning, so a writer that saw an old version gets a conflict.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use cuba_core::model::document::{DocumentAction, DocumentId, DocumentRecord, DocumentRevision};
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::{DocumentStore, DocumentWriteError, PortError};

use crate::faults::{Faults, lock};

struct Head {
    version: u64,
    /// `None` once deleted.
    current: Option<DocumentRecord>,
    /// Newest last.
    revisions: Vec<DocumentRevision>,
}

#[derive(Default)]
struct Documents {
    seeded: bool,
    heads: BTreeMap<DocumentId, Head>,
}

#[derive(Default)]
pub struct MemoryDocuments {
    faults: Arc<Faults>,
    documents: Mutex<Documents>,
}

impl MemoryDocuments {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryDocuments {
            faults,
            documents: Mutex::default(),
        }
    }
}

fn write(
    documents: &mut Documents,
    id: &DocumentId,
    expected: u64,
    document: Option<&Value>,
    action: DocumentAction,
    by: &str,
    at: Millis,
) -> Result<u64, DocumentWriteError> {
    let head = documents.heads.get(id);
    let base = match (head, expected) {
        (None, 0) => 0,
        (Some(h), 0) if h.current.is_none() => h.version,
        (Some(h), e) if h.current.is_some() && h.version == e => e,
        (Some(h), _) => {
            return Err(DocumentWriteError::Conflict {
                current: h.current.is_some().then_some(h.version),
            });
        }
        (None, _) => return Err(DocumentWriteError::Conflict { current: None }),
    };
    let version = base + 1;
    let head = documents.heads.entry(id.clone()).or_insert(Head {
        version: 0,
        current: None,
        revisions: Vec::new(),
    });
    head.version = version;
    head.current = document.map(|document| DocumentRecord {
        id: id.clone(),
        version,
        document: document.clone(),
        updated_by: by.to_owned(),
        updated_at: at,
    });
    head.revisions.push(DocumentRevision {
        version,
        action,
        document: document.cloned(),
        updated_by: by.to_owned(),
        updated_at: at,
    });
    Ok(version)
}

#[async_trait]
impl DocumentStore for MemoryDocuments {
    async fn current(&self) -> Result<Option<Vec<DocumentRecord>>, PortError> {
        let call = self.faults.enter("documents.current")?;
        let documents = lock(&self.documents);
        let current = documents.seeded.then(|| {
            documents
                .heads
                .values()
                .filter_map(|head| head.current.clone())
                .collect()
        });
        call.finish(current)
    }

    async fn get(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, PortError> {
        let call = self.faults.enter("documents.get")?;
        let found = lock(&self.documents)
            .heads
            .get(id)
            .and_then(|head| head.current.clone());
        call.finish(found)
    }

    async fn seed(
        &self,
        seed: &[(DocumentId, Value)],
        by: &str,
        at: Millis,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("documents.seed")?;
        let mut documents = lock(&self.documents);
        if documents.seeded {
            return call.finish(false);
        }
        for (id, document) in seed {
            match write(
                &mut documents,
                id,
                0,
                Some(document),
                DocumentAction::Seeded,
                by,
                at,
            ) {
                Ok(_) | Err(DocumentWriteError::Conflict { .. }) => {}
                Err(DocumentWriteError::Port(e)) => return Err(e),
            }
        }
        documents.seeded = true;
        call.finish(true)
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
        let call = self.faults.enter("documents.write")?;
        let version = write(
            &mut lock(&self.documents),
            id,
            expected,
            document,
            action,
            by,
            at,
        )?;
        Ok(call.finish(version)?)
    }

    async fn history(&self, id: &DocumentId) -> Result<Vec<DocumentRevision>, PortError> {
        let call = self.faults.enter("documents.history")?;
        let revisions = lock(&self.documents)
            .heads
            .get(id)
            .map(|head| head.revisions.iter().rev().cloned().collect())
            .unwrap_or_default();
        call.finish(revisions)
    }
}
