//! Silences in memory, as [`cuba_aws::DynamoSilences`] keeps them: at most
//! [`MAX_SILENCES`](cuba_core::delivery::silences::MAX_SILENCES), those past keeping dropped on
//! each new one ([`make_room`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::faults::{Faults, lock};
use cuba_core::delivery::silences::{
    CreateSilenceError, Silence, SilenceId, SilenceStore, make_room,
};
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;

#[derive(Default)]
pub struct MemorySilences {
    faults: Arc<Faults>,
    silences: Mutex<HashMap<SilenceId, Silence>>,
}

impl MemorySilences {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemorySilences {
            faults,
            ..MemorySilences::default()
        }
    }
}

#[async_trait]
impl SilenceStore for MemorySilences {
    async fn all(&self) -> Result<Vec<Silence>, PortError> {
        let call = self.faults.enter("silences.all")?;
        let all = lock(&self.silences).values().cloned().collect();
        call.finish(all)
    }

    async fn create(&self, silence: &Silence, now: Millis) -> Result<(), CreateSilenceError> {
        let call = self.faults.enter("silences.create")?;
        let mut silences = lock(&self.silences);
        for dropped in make_room(silences.values(), now)? {
            silences.remove(&dropped);
        }
        silences.insert(silence.id.clone(), silence.clone());
        Ok(call.finish(())?)
    }

    async fn end(
        &self,
        id: &SilenceId,
        at: Millis,
        by: &str,
    ) -> Result<Option<Silence>, PortError> {
        let call = self.faults.enter("silences.end")?;
        let mut silences = lock(&self.silences);
        let ended = silences.get_mut(id).map(|silence| {
            if silence.ends_at > at {
                silence.ends_at = at;
                silence.ended_by = Some(by.to_owned());
            }
            silence.clone()
        });
        call.finish(ended)
    }
}
