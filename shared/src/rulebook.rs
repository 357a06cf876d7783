//! Where the rules in force come from. Deployed functions read the rule store through a short
//! cache; until an operator's first start seeds the store, the default rule set applies.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ports::{PortError, RuleStore};
use crate::rules::{Rule, RuleSet};
use crate::ttl_cache::TtlCache;

#[async_trait]
pub trait RuleSource: Send + Sync {
    async fn current(&self) -> Result<Arc<RuleSet>, PortError>;
}

/// A rule set that never changes (a rules file, or tests).
pub struct FixedRules(pub Arc<RuleSet>);

#[async_trait]
impl RuleSource for FixedRules {
    async fn current(&self) -> Result<Arc<RuleSet>, PortError> {
        Ok(self.0.clone())
    }
}

/// The rule store, re-read at most once per `ttl`. A saved change therefore takes effect within
/// `ttl` in every function instance.
pub struct CachedRules {
    store: Arc<dyn RuleStore>,
    unseeded: Arc<RuleSet>,
    cache: TtlCache<RuleSet>,
}

impl CachedRules {
    /// `unseeded` applies while the store has never been seeded.
    pub fn new(store: Arc<dyn RuleStore>, unseeded: Arc<RuleSet>, ttl: Duration) -> Self {
        CachedRules {
            store,
            unseeded,
            cache: TtlCache::new(ttl),
        }
    }

    async fn load(&self) -> Result<Arc<RuleSet>, PortError> {
        let Some(records) = self.store.current().await? else {
            return Ok(self.unseeded.clone());
        };
        let rules = records
            .into_iter()
            .filter_map(|record| match Rule::from_json(&record.document, "$") {
                Ok(rule) => Some(rule),
                Err(e) => {
                    // Validated when written; one unreadable rule must not silence the others.
                    tracing::error!(rule_id = %record.id, version = record.version, error = %e, "stored rule is invalid; skipping it");
                    None
                }
            })
            .collect();
        Ok(Arc::new(RuleSet::from_rules(rules)))
    }
}

#[async_trait]
impl RuleSource for CachedRules {
    async fn current(&self) -> Result<Arc<RuleSet>, PortError> {
        self.cache.get("rules", || self.load()).await
    }
}
