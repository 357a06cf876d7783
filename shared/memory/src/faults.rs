//! Fault injection for the memory ports: make the Nth port call fail, before it takes effect (the
//! request never reached the service) or after (it took effect, then the answer was lost, as
//! with a timeout). Counting every call of a [`crate::MemoryPorts`] set from 1 lets a test fail
//! each step of a flow in turn.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cuba_core::model::ports::PortError;

/// When an injected failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails without any effect.
    Before,
    /// The call takes effect, then reports a failure.
    After,
}

#[derive(Debug, Default)]
pub struct Faults {
    calls: AtomicU64,
    plan: Mutex<HashMap<u64, Fault>>,
    next_of: Mutex<HashMap<&'static str, Fault>>,
    log: Mutex<Vec<&'static str>>,
}

/// A call in progress; [`Call::finish`] reports its result, or the injected failure.
#[must_use]
pub struct Call {
    op: &'static str,
    fail_after: bool,
}

impl Call {
    pub fn finish<T>(self, value: T) -> Result<T, PortError> {
        if self.fail_after {
            Err(injected(self.op, "after it took effect"))
        } else {
            Ok(value)
        }
    }
}

fn injected(op: &'static str, when: &str) -> PortError {
    PortError::unavailable_because("memory", format!("injected failure of {op} {when}"))
}

impl Faults {
    /// Makes call number `n` (from 1) fail.
    pub fn fail_call(&self, n: u64, fault: Fault) {
        lock(&self.plan).insert(n, fault);
    }

    /// Makes the next call of `op` (`ledger.claim`, `notifier.send_sms`, ...) fail.
    pub fn fail_next(&self, op: &'static str, fault: Fault) {
        lock(&self.next_of).insert(op, fault);
    }

    /// How many port calls were made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The operations called so far, in order (`events.insert`, `ledger.claim`, ...).
    pub fn log(&self) -> Vec<&'static str> {
        lock(&self.log).clone()
    }

    /// How many times `op` was called so far.
    pub fn count(&self, op: &str) -> usize {
        lock(&self.log)
            .iter()
            .filter(|called| **called == op)
            .count()
    }

    /// Starts a call of `op`: fails here if the call is planned to fail before its effect.
    pub fn enter(&self, op: &'static str) -> Result<Call, PortError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&self.log).push(op);
        let planned = lock(&self.plan).remove(&n);
        match planned.or_else(|| lock(&self.next_of).remove(op)) {
            Some(Fault::Before) => Err(injected(op, "before it took effect")),
            Some(Fault::After) => Ok(Call {
                op,
                fail_after: true,
            }),
            None => Ok(Call {
                op,
                fail_after: false,
            }),
        }
    }
}

/// A poisoned lock only means another test thread panicked; the data is still whole.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
