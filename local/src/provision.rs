//! Creates the template's tables, queues and topics in moto, with the names and settings the
//! template gives them. Re-running against a moto that already has them reuses them.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_types::SdkConfig;
use serde_json::Value;

use crate::template::{Known, Template, TemplateError};

/// moto's fixed account and the region the local stack uses.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// What was created, by logical id, plus everything `Ref`/`GetAtt` can now resolve.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub stack_name: String,
    pub known: Known,
    pub tables: BTreeMap<String, String>,
    pub queue_urls: BTreeMap<String, String>,
    pub topic_arns: BTreeMap<String, String>,
    /// Secrets Manager secrets by logical id.
    pub secret_arns: BTreeMap<String, String>,
}

impl Provisioned {
    pub fn table(&self, logical_id: &str) -> Result<&str> {
        self.tables
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("no table {logical_id} in the template"))
    }

    pub fn queue_url(&self, logical_id: &str) -> Result<&str> {
        self.queue_urls
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("no queue {logical_id} in the template"))
    }

    pub fn topic_arn(&self, logical_id: &str) -> Result<&str> {
        self.topic_arns
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("no topic {logical_id} in the template"))
    }
}

pub async fn provision(
    sdk: &SdkConfig,
    template: &Template,
    stack_name: &str,
    parameters: &BTreeMap<String, String>,
    secret_values: &BTreeMap<String, String>,
) -> Result<Provisioned> {
    let mut known = Known::new(stack_name, REGION, ACCOUNT);
    known.refs.extend(template.parameter_defaults().clone());
    known.refs.extend(parameters.clone());
    let mut provisioned = Provisioned {
        stack_name: stack_name.to_owned(),
        known,
        tables: BTreeMap::new(),
        queue_urls: BTreeMap::new(),
        topic_arns: BTreeMap::new(),
        secret_arns: BTreeMap::new(),
    };
    // Secrets: the value the caller gives for the logical id, else one generated as the
    // template's `GenerateSecretString` asks (its template plus a random key).
    let secretsmanager = aws_sdk_secretsmanager::Client::new(sdk);
    for secret in template.resources_of("AWS::SecretsManager::Secret") {
        let props = provisioned.known.resolve(&secret.properties)?;
        let name = str_prop(&props, "Name")?;
        let value = match secret_values.get(&secret.logical_id) {
            Some(value) => value.clone(),
            None => generated_secret(&props)?,
        };
        let arn = secretsmanager
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| anyhow!("creating secret {name}: {}", DisplayErrorContext(e)))?
            .arn
            .ok_or_else(|| anyhow!("moto returned no secret ARN"))?;
        provisioned
            .known
            .refs
            .insert(secret.logical_id.clone(), arn.clone());
        provisioned
            .secret_arns
            .insert(secret.logical_id.clone(), arn);
    }

    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    for table in template.resources_of("AWS::DynamoDB::Table") {
        let props = provisioned.known.resolve(&table.properties)?;
        let (name, arn, stream_arn) = create_table(&dynamodb, &props)
            .await
            .with_context(|| format!("creating table {}", table.logical_id))?;
        let known = &mut provisioned.known;
        known.refs.insert(table.logical_id.clone(), name.clone());
        known
            .attributes
            .insert(format!("{}.Arn", table.logical_id), arn);
        if let Some(stream_arn) = stream_arn {
            known
                .attributes
                .insert(format!("{}.StreamArn", table.logical_id), stream_arn);
        }
        provisioned.tables.insert(table.logical_id.clone(), name);
    }

    // A queue's redrive policy names its dead-letter queue, so create queues in rounds until
    // each one's references resolve.
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut pending: Vec<_> = template.resources_of("AWS::SQS::Queue").collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut still_pending = Vec::new();
        for queue in pending {
            match provisioned.known.resolve(&queue.properties) {
                Ok(props) => {
                    let (url, arn, name) = create_queue(&sqs, &props)
                        .await
                        .with_context(|| format!("creating queue {}", queue.logical_id))?;
                    let known = &mut provisioned.known;
                    known.refs.insert(queue.logical_id.clone(), url.clone());
                    known
                        .attributes
                        .insert(format!("{}.Arn", queue.logical_id), arn);
                    known
                        .attributes
                        .insert(format!("{}.QueueName", queue.logical_id), name);
                    known
                        .attributes
                        .insert(format!("{}.QueueUrl", queue.logical_id), url.clone());
                    provisioned.queue_urls.insert(queue.logical_id.clone(), url);
                }
                Err(TemplateError::Unresolved(_)) => still_pending.push(queue),
                Err(e) => return Err(e.into()),
            }
        }
        if still_pending.len() == before {
            let ids: Vec<_> = still_pending
                .iter()
                .map(|q| q.logical_id.as_str())
                .collect();
            bail!("queues {ids:?} reference something that is never created");
        }
        pending = still_pending;
    }

    // Roles are IAM's, which moto's functions never check: their ARNs are known, nothing is made.
    for role in template.resources_of("AWS::IAM::Role") {
        let arn = format!(
            "arn:aws:iam::{ACCOUNT}:role/{stack_name}-{}",
            role.logical_id
        );
        let known = &mut provisioned.known;
        known.refs.insert(role.logical_id.clone(), arn.clone());
        known
            .attributes
            .insert(format!("{}.Arn", role.logical_id), arn);
    }
    // Functions run in this process, not in moto: what the template says of them is known
    // (their ARNs, SAM's `.Version` and `.Alias`, and the CodeDeploy application SAM makes for
    // their deployments), nothing is made.
    for function in template.resources_of("AWS::Serverless::Function") {
        let name = function
            .properties
            .get("FunctionName")
            .and_then(|name| provisioned.known.resolve(name).ok())
            .and_then(|name| name.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{stack_name}-{}", function.logical_id));
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
        let id = &function.logical_id;
        let known = &mut provisioned.known;
        known
            .refs
            .insert(format!("{id}.Version"), format!("{arn}:1"));
        known
            .refs
            .insert(format!("{id}.Alias"), format!("{arn}:live"));
        known.attributes.insert(format!("{id}.Arn"), arn);
    }
    provisioned.known.refs.insert(
        "ServerlessDeploymentApplication".to_owned(),
        format!("{stack_name}-ServerlessDeploymentApplication"),
    );
    let sns = aws_sdk_sns::Client::new(sdk);
    for topic in template.resources_of("AWS::SNS::Topic") {
        let props = provisioned.known.resolve(&topic.properties)?;
        let name = str_prop(&props, "TopicName")?;
        let arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .map_err(|e| anyhow!("creating topic {name}: {}", DisplayErrorContext(e)))?
            .topic_arn
            .ok_or_else(|| anyhow!("moto returned no topic ARN"))?;
        let known = &mut provisioned.known;
        known.refs.insert(topic.logical_id.clone(), arn.clone());
        known
            .attributes
            .insert(format!("{}.TopicArn", topic.logical_id), arn.clone());
        known
            .attributes
            .insert(format!("{}.TopicName", topic.logical_id), name.to_owned());
        provisioned.topic_arns.insert(topic.logical_id.clone(), arn);
    }
    Ok(provisioned)
}

/// `GenerateSecretString`: `SecretStringTemplate` with `GenerateStringKey` set to random
/// alphanumerics of `PasswordLength`.
fn generated_secret(props: &Value) -> Result<String> {
    let spec = props
        .get("GenerateSecretString")
        .ok_or_else(|| anyhow!("a secret needs GenerateSecretString or a value"))?;
    let mut document: Value = serde_json::from_str(str_prop(spec, "SecretStringTemplate")?)?;
    let length = spec
        .get("PasswordLength")
        .and_then(Value::as_u64)
        .unwrap_or(32) as usize;
    let random: String = std::iter::repeat_with(|| uuid::Uuid::new_v4().simple().to_string())
        .flat_map(|s| s.chars().collect::<Vec<_>>())
        .take(length)
        .collect();
    document[str_prop(spec, "GenerateStringKey")?] = Value::String(random);
    Ok(document.to_string())
}

fn str_prop<'a>(props: &'a Value, name: &str) -> Result<&'a str> {
    props
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("property {name} is missing"))
}

fn key_schema(value: &Value) -> Result<Vec<KeySchemaElement>> {
    value
        .as_array()
        .ok_or_else(|| anyhow!("KeySchema must be a list"))?
        .iter()
        .map(|k| {
            Ok(KeySchemaElement::builder()
                .attribute_name(str_prop(k, "AttributeName")?)
                .key_type(KeyType::from(str_prop(k, "KeyType")?))
                .build()?)
        })
        .collect()
}

fn projection(index: &Value) -> Projection {
    let projection = index.get("Projection");
    let kind = projection
        .and_then(|p| p.get("ProjectionType"))
        .and_then(Value::as_str)
        .unwrap_or("ALL");
    let non_key: Option<Vec<String>> = projection
        .and_then(|p| p.get("NonKeyAttributes"))
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    Projection::builder()
        .projection_type(ProjectionType::from(kind))
        .set_non_key_attributes(non_key)
        .build()
}

/// Returns the table's name, ARN and stream ARN.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    props: &Value,
) -> Result<(String, String, Option<String>)> {
    let name = str_prop(props, "TableName")?;
    let mut request = client
        .create_table()
        .table_name(name)
        .set_key_schema(Some(key_schema(&props["KeySchema"])?))
        .billing_mode(BillingMode::from(
            props
                .get("BillingMode")
                .and_then(Value::as_str)
                .unwrap_or("PROVISIONED"),
        ));
    for definition in props["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(str_prop(definition, "AttributeName")?)
                .attribute_type(ScalarAttributeType::from(str_prop(
                    definition,
                    "AttributeType",
                )?))
                .build()?,
        );
    }
    for index in props
        .get("LocalSecondaryIndexes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        request = request.local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(str_prop(index, "IndexName")?)
                .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                .projection(projection(index))
                .build()?,
        );
    }
    for index in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(str_prop(index, "IndexName")?)
                .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                .projection(projection(index))
                .build()?,
        );
    }
    if let Some(view) = props
        .get("StreamSpecification")
        .and_then(|s| s.get("StreamViewType"))
        .and_then(Value::as_str)
    {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => bail!("{}", DisplayErrorContext(e)),
    }
    if let Some(ttl) = props.get("TimeToLiveSpecification")
        && ttl.get("Enabled").and_then(Value::as_bool) == Some(true)
    {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(str_prop(ttl, "AttributeName")?)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))?;
    }
    let table = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| anyhow!("{}", DisplayErrorContext(e)))?
        .table
        .ok_or_else(|| anyhow!("moto did not describe table {name}"))?;
    Ok((
        name.to_owned(),
        table.table_arn.unwrap_or_default(),
        table.latest_stream_arn,
    ))
}

/// CloudFormation property name to SQS attribute, for the properties the local stack honours.
const QUEUE_ATTRIBUTES: [(&str, QueueAttributeName); 6] = [
    ("DelaySeconds", QueueAttributeName::DelaySeconds),
    ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
    (
        "MessageRetentionPeriod",
        QueueAttributeName::MessageRetentionPeriod,
    ),
    (
        "ReceiveMessageWaitTimeSeconds",
        QueueAttributeName::ReceiveMessageWaitTimeSeconds,
    ),
    ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
    ("RedrivePolicy", QueueAttributeName::RedrivePolicy),
];

/// Creates (or finds) a queue from CloudFormation-style properties; returns its URL, ARN and name.
pub async fn create_queue(
    client: &aws_sdk_sqs::Client,
    props: &Value,
) -> Result<(String, String, String)> {
    let name = str_prop(props, "QueueName")?;
    let mut attributes = HashMap::new();
    for (property, attribute) in QUEUE_ATTRIBUTES {
        match props.get(property) {
            None => {}
            Some(Value::String(s)) => {
                attributes.insert(attribute, s.clone());
            }
            Some(other) => {
                attributes.insert(attribute, other.to_string());
            }
        }
    }
    let url = client
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .queue_url
        .ok_or_else(|| anyhow!("moto returned no queue URL"))?;
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow!("moto returned no queue ARN"))?;
    Ok((url, arn, name.to_owned()))
}
