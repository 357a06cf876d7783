//! Silences in the rule-state table: one item, `silences`, holding each silence as an attribute
//! of its own (`s_{id}`), so creating one is a single update that cannot overwrite another, and
//! every function reads them all in one small read (cached; see
//! [`cuba_core::delivery::silences::SilenceSource`]). At most
//! [`cuba_core::delivery::silences::MAX_SILENCES`] are kept, about 300 bytes each.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::items::{Item, condition_held, corrupt, n, s, unavailable, value};
use crate::partition_keys::SILENCES;
use cuba_core::delivery::silences::{
    CreateSilenceError, Silence, SilenceId, SilenceStore, make_room,
};
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;

/// The prefix of a silence's attribute name; the rest is its id.
const PREFIX: &str = "s_";

#[derive(Debug, Clone)]
pub struct DynamoSilences {
    client: Client,
    table: String,
}

impl DynamoSilences {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoSilences {
            client,
            table: table.into(),
        }
    }

    fn key() -> Item {
        Item::from([("pk".to_owned(), s(SILENCES))])
    }

    async fn item(&self) -> Result<Item, PortError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?
            .item
            .unwrap_or_default())
    }
}

fn attribute(id: &SilenceId) -> String {
    format!("{PREFIX}{}", id.as_str())
}

fn silences_of(item: &Item) -> Result<Vec<Silence>, PortError> {
    item.iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .map(|(_, stored)| silence_of(stored))
        .collect()
}

fn silence_of(stored: &AttributeValue) -> Result<Silence, PortError> {
    serde_dynamo::from_attribute_value(stored.clone()).map_err(corrupt)
}

#[async_trait]
impl SilenceStore for DynamoSilences {
    async fn all(&self) -> Result<Vec<Silence>, PortError> {
        silences_of(&self.item().await?)
    }

    async fn create(&self, silence: &Silence, now: Millis) -> Result<(), CreateSilenceError> {
        let dropped = make_room(&silences_of(&self.item().await?)?, now)?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key()))
            .expression_attribute_names("#new", attribute(&silence.id))
            .expression_attribute_values(":silence", value(silence)?);
        let mut expression = "SET #new = :silence".to_owned();
        if !dropped.is_empty() {
            let names: Vec<String> = (0..dropped.len()).map(|i| format!("#old{i}")).collect();
            for (name, old) in names.iter().zip(&dropped) {
                update = update.expression_attribute_names(name, attribute(old));
            }
            expression.push_str(&format!(" REMOVE {}", names.join(", ")));
        }
        update
            .update_expression(expression)
            .send()
            .await
            .map_err(|e| CreateSilenceError::Port(unavailable(e)))?;
        Ok(())
    }

    async fn end(
        &self,
        id: &SilenceId,
        at: Millis,
        by: &str,
    ) -> Result<Option<Silence>, PortError> {
        let ended = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key()))
            .update_expression("SET #s.ends_at = :at, #s.ended_by = :by")
            .condition_expression("attribute_exists(#s) AND #s.ends_at > :at")
            .expression_attribute_names("#s", attribute(id))
            .expression_attribute_values(":at", n(at.0))
            .expression_attribute_values(":by", s(by))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match ended {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(e) => {
                condition_held::<(), _, _>(Err(e))?;
                // Already ended, or never there.
                self.item().await?
            }
        };
        item.get(&attribute(id)).map(silence_of).transpose()
    }
}
