//! Where the schemas in force come from: the schema store through a short cache, or the shipped
//! defaults until an operator's first start seeds the store (as with rules).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::ports::{PortError, RuleStore};
use crate::schemas::SchemaSet;
use crate::ttl_cache::TtlCache;

/// The schema registry shipped with Cuba (`schemas/default.json`).
pub const DEFAULT_SCHEMAS: &str = include_str!("../../schemas/default.json");

/// The documents of a schemas file: `{"schemas": [...]}`.
pub fn documents_of_file(text: &str) -> Result<Vec<Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    value
        .get("schemas")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| "expected {\"schemas\": [...]}".to_owned())
}

#[async_trait]
pub trait SchemaSource: Send + Sync {
    /// The schemas in force, possibly cached.
    async fn current(&self) -> Result<Arc<SchemaSet>, PortError>;
    /// The schemas as stored right now (replays decide on the operator's latest fix).
    async fn fresh(&self) -> Result<Arc<SchemaSet>, PortError>;
}

/// A registry that never changes (tests, benches).
pub struct FixedSchemas(pub Arc<SchemaSet>);

#[async_trait]
impl SchemaSource for FixedSchemas {
    async fn current(&self) -> Result<Arc<SchemaSet>, PortError> {
        Ok(self.0.clone())
    }

    async fn fresh(&self) -> Result<Arc<SchemaSet>, PortError> {
        Ok(self.0.clone())
    }
}

/// The schema store, re-read at most once per `ttl`.
pub struct CachedSchemas {
    store: Arc<dyn RuleStore>,
    unseeded: Arc<SchemaSet>,
    cache: TtlCache<SchemaSet>,
}

impl CachedSchemas {
    pub fn new(store: Arc<dyn RuleStore>, unseeded: Arc<SchemaSet>, ttl: Duration) -> Self {
        CachedSchemas {
            store,
            unseeded,
            cache: TtlCache::new(ttl),
        }
    }
}

#[async_trait]
impl SchemaSource for CachedSchemas {
    async fn current(&self) -> Result<Arc<SchemaSet>, PortError> {
        self.cache.get("schemas", || self.fresh()).await
    }

    async fn fresh(&self) -> Result<Arc<SchemaSet>, PortError> {
        let Some(records) = self.store.current().await? else {
            return Ok(self.unseeded.clone());
        };
        let (set, broken) = SchemaSet::from_documents(
            records
                .iter()
                .map(|record| (record.version, &record.document)),
        );
        for (id, error) in broken {
            // Validated when written; one unreadable schema must not take the others down.
            tracing::error!(schema_id = %id, %error, "stored schema is invalid; skipping it");
        }
        Ok(Arc::new(set))
    }
}
