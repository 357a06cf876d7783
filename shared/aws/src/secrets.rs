//! AWS Secrets Manager: where the token secrets live in a deployed stack.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use cuba_core::model::ports::{PortError, SecretStore};

/// Reads secrets by ARN (or name).
#[derive(Debug, Clone)]
pub struct SecretsManagerStore {
    client: Client,
}

impl SecretsManagerStore {
    pub fn new(client: Client) -> Self {
        SecretsManagerStore { client }
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn secret(&self, id: &str) -> Result<String, PortError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| PortError::unavailable("secretsmanager", e))?;
        answer
            .secret_string
            .ok_or_else(|| PortError::corrupt(format!("the secret {id} has no text value")))
    }
}
