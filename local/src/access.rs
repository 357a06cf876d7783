//! Which AWS actions each function's code performs, on which resources: an SDK interceptor on
//! each function's clients records every request as an IAM action (`dynamodb:Query`) and the
//! ARN IAM would check it against (a table, one of its indexes, its stream, a queue, a topic, a
//! secret, or a phone number for an SMS). `local/tests/integration/privilege.rs` compares what
//! a run recorded with the policies `template.yaml` grants each function: moto checks no IAM,
//! so without this a missing grant would first show as `AccessDenied` in AWS. Only the local
//! runner compiles this.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::scan::ScanInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodbstreams::operation::describe_stream::DescribeStreamInput;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorInput;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueInput;
use aws_sdk_sns::operation::publish::PublishInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::lock;
use crate::provision::{ACCOUNT, REGION};

/// One request as IAM authorises it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    /// The function whose clients made it (`IngestFunction`, ...).
    pub function: String,
    /// `service:Operation`, as a policy names it.
    pub action: String,
    /// The ARN the action is checked against (`phone` for an SMS sent straight to a number, which
    /// has none).
    pub resource: String,
}

/// Every access recorded since the stack started.
#[derive(Debug, Default)]
pub struct AccessLog(Mutex<BTreeSet<Access>>);

impl AccessLog {
    pub fn new() -> Arc<Self> {
        Arc::new(AccessLog::default())
    }

    /// The interceptor for one function's clients.
    pub fn interceptor(self: &Arc<Self>, function: &str) -> AccessInterceptor {
        AccessInterceptor {
            log: self.clone(),
            function: function.to_owned(),
        }
    }

    pub fn accesses(&self) -> BTreeSet<Access> {
        lock(&self.0).clone()
    }
}

/// A DynamoDB table's ARN as moto and AWS spell it, and its index's.
pub fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
}

/// The ARN of the queue a queue URL names (its last path segment is the queue's name).
fn queue_arn(url: &str) -> String {
    let name = url.rsplit('/').next().unwrap_or(url);
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

/// The IAM prefix of a service as the SDK's operation metadata names it.
fn iam_prefix(service: &str) -> String {
    match service.to_ascii_lowercase().as_str() {
        "dynamodb" | "dynamodb streams" | "dynamodbstreams" => "dynamodb".to_owned(),
        "secrets manager" | "secretsmanager" => "secretsmanager".to_owned(),
        other => other.replace(' ', ""),
    }
}

/// What IAM authorises a request as: its own action on the resources it names, except a
/// DynamoDB transaction, which IAM checks as each of its writes (`dynamodb:PutItem`, ...) on
/// that write's table.
fn authorised_as(action: &str, input: &Input) -> Vec<(String, String)> {
    if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
        return i
            .transact_items()
            .iter()
            .filter_map(|item| {
                let (kind, table) = if let Some(p) = item.put() {
                    ("PutItem", p.table_name())
                } else if let Some(u) = item.update() {
                    ("UpdateItem", u.table_name())
                } else if let Some(d) = item.delete() {
                    ("DeleteItem", d.table_name())
                } else {
                    ("ConditionCheckItem", item.condition_check()?.table_name())
                };
                Some((format!("dynamodb:{kind}"), table_arn(table)))
            })
            .collect();
    }
    resources(input)
        .into_iter()
        .map(|resource| (action.to_owned(), resource))
        .collect()
}

/// The resources a request touches, by its input.
fn resources(input: &Input) -> Vec<String> {
    let table = |name: Option<&str>, index: Option<&str>| {
        let arn = table_arn(name.unwrap_or_default());
        match index {
            Some(index) => format!("{arn}/index/{index}"),
            None => arn,
        }
    };
    if let Some(i) = input.downcast_ref::<GetItemInput>() {
        vec![table(i.table_name(), None)]
    } else if let Some(i) = input.downcast_ref::<PutItemInput>() {
        vec![table(i.table_name(), None)]
    } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
        vec![table(i.table_name(), None)]
    } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
        vec![table(i.table_name(), None)]
    } else if let Some(i) = input.downcast_ref::<QueryInput>() {
        vec![table(i.table_name(), i.index_name())]
    } else if let Some(i) = input.downcast_ref::<ScanInput>() {
        vec![table(i.table_name(), i.index_name())]
    } else if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
        i.request_items()
            .map(|items| items.keys().map(|t| table(Some(t), None)).collect())
            .unwrap_or_default()
    } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
        i.request_items()
            .map(|items| items.keys().map(|t| table(Some(t), None)).collect())
            .unwrap_or_default()
    } else if let Some(i) = input.downcast_ref::<GetShardIteratorInput>() {
        vec![i.stream_arn().unwrap_or_default().to_owned()]
    } else if let Some(i) = input.downcast_ref::<DescribeStreamInput>() {
        vec![i.stream_arn().unwrap_or_default().to_owned()]
    } else if let Some(i) = input.downcast_ref::<PublishInput>() {
        match (i.topic_arn(), i.target_arn()) {
            (Some(topic), _) | (None, Some(topic)) => vec![topic.to_owned()],
            (None, None) => vec!["phone".to_owned()],
        }
    } else if let Some(i) = input.downcast_ref::<GetSecretValueInput>() {
        vec![i.secret_id().unwrap_or_default().to_owned()]
    } else if let Some(url) = queue_url(input) {
        vec![queue_arn(&url)]
    } else {
        // GetRecords names a shard iterator, SMS attributes name no resource: `*` in IAM.
        vec!["*".to_owned()]
    }
}

/// The queue an SQS request names.
fn queue_url(input: &Input) -> Option<String> {
    use aws_sdk_sqs::operation::{
        change_message_visibility::ChangeMessageVisibilityInput,
        delete_message::DeleteMessageInput, delete_message_batch::DeleteMessageBatchInput,
        get_queue_attributes::GetQueueAttributesInput, receive_message::ReceiveMessageInput,
        send_message::SendMessageInput, send_message_batch::SendMessageBatchInput,
    };
    let url = if let Some(i) = input.downcast_ref::<SendMessageInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<SendMessageBatchInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<ReceiveMessageInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<DeleteMessageInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<DeleteMessageBatchInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<ChangeMessageVisibilityInput>() {
        i.queue_url()
    } else if let Some(i) = input.downcast_ref::<GetQueueAttributesInput>() {
        i.queue_url()
    } else {
        None
    };
    url.map(str::to_owned)
}

#[derive(Debug)]
pub struct AccessInterceptor {
    log: Arc<AccessLog>,
    function: String,
}

impl Intercept for AccessInterceptor {
    fn name(&self) -> &'static str {
        "AccessLog"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let action = format!("{}:{}", iam_prefix(metadata.service()), metadata.name());
        let mut log = lock(&self.log.0);
        for (action, resource) in authorised_as(&action, context.input()) {
            log.insert(Access {
                function: self.function.clone(),
                action,
                resource,
            });
        }
        Ok(())
    }
}

/// One `Allow` statement of a function's policy, resolved against the stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub function: String,
    pub actions: Vec<String>,
    /// ARN patterns (`*` matches any run of characters).
    pub resources: Vec<String>,
    /// `NotResource`: the statement covers every resource but these.
    pub not_resource: bool,
}

impl Grant {
    /// Whether this statement allows `access` (its conditions aside).
    pub fn allows(&self, access: &Access) -> bool {
        self.function == access.function
            && self
                .actions
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&access.action))
            && self.covers(&access.resource)
    }

    /// Whether the statement's resources take in `resource` (`*`: a request naming no
    /// resource, which any grant of its action covers).
    pub fn covers(&self, resource: &str) -> bool {
        if resource == "*" {
            return true;
        }
        let listed = self.resources.iter().any(|p| glob(p, resource));
        listed != self.not_resource
    }
}

/// IAM's resource wildcards: `*` any run of characters, `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Positions to resume from after the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Every `Allow` statement of every function's `Policies` in `template`, with its references
/// resolved as the stack provisioned them.
pub fn granted(
    template: &crate::template::Template,
    known: &crate::template::Known,
) -> Result<Vec<Grant>, crate::template::TemplateError> {
    let strings = |value: Option<&serde_json::Value>| -> Vec<String> {
        match value {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut grants = Vec::new();
    for function in template.resources_of("AWS::Serverless::Function") {
        let Some(policies) = function.properties.get("Policies") else {
            continue;
        };
        let policies = known.resolve(policies)?;
        for policy in policies.as_array().into_iter().flatten() {
            let statements = policy.get("Statement").cloned().unwrap_or_default();
            for statement in statements.as_array().into_iter().flatten() {
                if statement.get("Effect").and_then(serde_json::Value::as_str) != Some("Allow") {
                    continue;
                }
                let not_resource = statement.get("NotResource").is_some();
                grants.push(Grant {
                    function: function.logical_id.clone(),
                    actions: strings(statement.get("Action")),
                    resources: strings(
                        statement
                            .get("Resource")
                            .or_else(|| statement.get("NotResource")),
                    ),
                    not_resource,
                });
            }
        }
    }
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn resource_wildcards_match_as_iam_matches_them() {
        assert!(glob("arn:aws:sns:*:*:*", "arn:aws:sns:us-east-1:1:ops"));
        assert!(!glob("arn:aws:sns:*:*:*", "phone"));
        assert!(glob("*", "anything"));
        assert!(glob("a?c", "abc"));
        assert!(!glob(
            "arn:aws:dynamodb:r:1:table/t",
            "arn:aws:dynamodb:r:1:table/t/index/i"
        ));
        assert!(glob(
            "log-group:sns/*/1/Direct*",
            "log-group:sns/us/1/DirectPublish"
        ));
    }
}
