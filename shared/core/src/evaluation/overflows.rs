//! Window buckets that remember which of them overflowed. A bucket that overflowed stays so
//! (it is never read as members again), and a heavy user's every further event would otherwise
//! try to record into it and read it: on DynamoDB a refused conditional update of a full bucket
//! (about 10 KB) costs as many write units as a successful one, about 20 per event with the
//! overflow mark, all on one item. At a heavy user's rate that is past the 1,000 write units a
//! second one partition serves. Once an instance has seen a bucket overflow, it neither records
//! into it nor reads it: the window is read from the user's events straight away.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::evaluation::ports::WindowStore;
use crate::evaluation::window::{Recorded, WindowKey, WindowMember, WindowRead};
use crate::model::ports::PortError;

/// Overflowed buckets one instance remembers; past that it forgets them all and learns again
/// (about 100 bytes each: a few megabytes at most).
pub const REMEMBERED_OVERFLOWS: usize = 20_000;

/// [`WindowStore`] over `inner` that skips the buckets it has seen overflow.
pub struct KnownOverflows {
    inner: Arc<dyn WindowStore>,
    overflowed: Mutex<HashSet<(WindowKey, u64)>>,
}

impl KnownOverflows {
    pub fn new(inner: Arc<dyn WindowStore>) -> Self {
        KnownOverflows {
            inner,
            overflowed: Mutex::default(),
        }
    }

    fn known(&self, key: &WindowKey, bucket: u64) -> bool {
        self.overflowed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(key.clone(), bucket))
    }

    fn remember(&self, key: &WindowKey, bucket: u64) {
        let mut overflowed = self.overflowed.lock().unwrap_or_else(|e| e.into_inner());
        if overflowed.len() >= REMEMBERED_OVERFLOWS {
            overflowed.clear();
        }
        overflowed.insert((key.clone(), bucket));
    }
}

#[async_trait]
impl WindowStore for KnownOverflows {
    async fn record(&self, key: &WindowKey, member: &WindowMember) -> Result<Recorded, PortError> {
        let bucket = key.bucket_of(member.received_at);
        if self.known(key, bucket) {
            return Ok(Recorded::Overflowed);
        }
        let recorded = self.inner.record(key, member).await?;
        if recorded == Recorded::Overflowed {
            self.remember(key, bucket);
        }
        Ok(recorded)
    }

    async fn buckets(
        &self,
        key: &WindowKey,
        buckets: RangeInclusive<u64>,
    ) -> Result<WindowRead, PortError> {
        if buckets.clone().any(|bucket| self.known(key, bucket)) {
            return Ok(WindowRead::Overflowed);
        }
        self.inner.buckets(key, buckets).await
    }
}
