//! A value reloaded at most once per time-to-live, that keeps serving the last value loaded when
//! a reload fails: the documents in force, the silences, the token keys.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::model::ports::{ErrorChain, PortError};

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
