//! Where the documents in force come from. Deployed functions read the document store through a
//! short cache, so a saved change takes effect everywhere within the cache's time-to-live; until
//! the store is seeded (when the stack is created), the shipped (or configured) documents apply.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::model::cache::TtlCache;
use crate::model::document::{DocumentRecord, DocumentSet};
use crate::model::ports::{DocumentStore, PortError};
use crate::rules::RuleSet;
use crate::schemas::SchemaSet;

#[async_trait]
pub trait DocumentSource<S: DocumentSet>: Send + Sync {
    /// The set in force, possibly cached.
    async fn current(&self) -> Result<Arc<S>, PortError>;
    /// The set as stored right now (a replay decides on the operator's latest fix).
    async fn fresh(&self) -> Result<Arc<S>, PortError>;
}

/// The rules in force.
pub type RuleSource = dyn DocumentSource<RuleSet>;
/// The schema registry in force.
pub type SchemaSource = dyn DocumentSource<SchemaSet>;

/// The document store, re-read at most once per `ttl`.
pub struct CachedDocuments<S> {
    store: Arc<dyn DocumentStore>,
    unseeded: Box<dyn Fn() -> Arc<S> + Send + Sync>,
    cache: TtlCache<S>,
}

impl<S: DocumentSet> CachedDocuments<S> {
    /// `unseeded` applies while the store has never been seeded.
    pub fn new(store: Arc<dyn DocumentStore>, unseeded: Arc<S>, ttl: Duration) -> Self {
        Self::unseeded_from(store, move || unseeded.clone(), ttl)
    }

    /// What `unseeded` gives applies while the store has never been seeded. It is asked only
    /// then: a deployed stack's stores are seeded when it is created, so a function need not
    /// build that set at every cold start.
    pub fn unseeded_from(
        store: Arc<dyn DocumentStore>,
        unseeded: impl Fn() -> Arc<S> + Send + Sync + 'static,
        ttl: Duration,
    ) -> Self {
        CachedDocuments {
            store,
            unseeded: Box::new(unseeded),
            cache: TtlCache::new(ttl),
        }
    }
}

/// The set that stored `records` make. A document that no longer parses (it was validated when
/// written, so only a newer writer or a hand edit can cause this) is logged and left out: one
/// unreadable document must not silence the others.
pub fn assemble<S: DocumentSet>(records: &[DocumentRecord]) -> S {
    let documents = records
        .iter()
        .filter(|record| S::in_force(record))
        .filter_map(|record| match S::parse_record(record) {
            Ok(document) => Some(document),
            Err(error) => {
                tracing::error!(kind = S::NOUN, id = %record.id, version = record.version, %error, "stored document is invalid; skipping it");
                None
            }
        })
        .collect();
    S::assemble(documents)
}

#[async_trait]
impl<S: DocumentSet> DocumentSource<S> for CachedDocuments<S> {
    async fn current(&self) -> Result<Arc<S>, PortError> {
        self.cache.get(S::NOUN, || self.fresh()).await
    }

    async fn fresh(&self) -> Result<Arc<S>, PortError> {
        match self.store.current().await? {
            None => Ok((self.unseeded)()),
            Some(records) => Ok(Arc::new(assemble(&records))),
        }
    }
}
