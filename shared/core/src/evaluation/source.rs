//! Where the documents in force come from. Deployed functions read the document store through a
//! short cache, so a saved change takes effect everywhere within the cache's time-to-live; until
//! an operator's first start seeds the store, the shipped (or configured) documents apply.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::model::document::{DocumentRecord, DocumentSet};
use crate::model::ports::{DocumentStore, ErrorChain, PortError};
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
    unseeded: Arc<S>,
    cache: TtlCache<S>,
}

impl<S: DocumentSet> CachedDocuments<S> {
    /// `unseeded` applies while the store has never been seeded.
    pub fn new(store: Arc<dyn DocumentStore>, unseeded: Arc<S>, ttl: Duration) -> Self {
        CachedDocuments {
            store,
            unseeded,
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
            None => Ok(self.unseeded.clone()),
            Some(records) => Ok(Arc::new(assemble(&records))),
        }
    }
}

/// Reloads at most once per `ttl`; when a reload fails, keeps serving the last value loaded.
pub struct TtlCache<T> {
    ttl: Duration,
    slot: Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> TtlCache<T> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            slot: Mutex::new(None),
        }
    }

    /// A cache holding `value`, loaded now.
    pub fn loaded(ttl: Duration, value: Arc<T>) -> Self {
        TtlCache {
            ttl,
            slot: Mutex::new(Some((Instant::now(), value))),
        }
    }

    /// The cached value, or a fresh one from `load` once the cached one is older than the TTL.
    /// `what` names the value in the warning logged when a reload fails.
    pub async fn get<F, Fut>(&self, what: &str, load: F) -> Result<Arc<T>, PortError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<T>, PortError>>,
    {
        // One loader at a time; the others wait for its result instead of stampeding the table.
        let mut slot = self.slot.lock().await;
        if let Some((loaded_at, value)) = slot.as_ref()
            && loaded_at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        match load().await {
            Ok(value) => {
                *slot = Some((Instant::now(), value.clone()));
                Ok(value)
            }
            Err(e) => match slot.as_ref() {
                Some((_, stale)) => {
                    tracing::warn!(error = %ErrorChain(&e), "could not refresh the {what} set; using the last one loaded");
                    Ok(stale.clone())
                }
                None => Err(e),
            },
        }
    }
}
