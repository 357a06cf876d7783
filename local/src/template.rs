//! Reads `template.yaml` so the local stack is built from the same definitions AWS deploys:
//! resource names, keys, indexes, streams, queue settings, function environments and event
//! source mappings all come from the template rather than from a second copy here.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("{0}")]
    Shape(String),
    #[error("cannot resolve {0}: not known yet or not supported locally")]
    Unresolved(String),
}

fn shape(message: impl Into<String>) -> TemplateError {
    TemplateError::Shape(message.into())
}

/// What a resolved `Ref`/`Fn::GetAtt` may point at.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// `Ref` values: stack name pseudo parameters, parameters, and created resources.
    pub refs: BTreeMap<String, String>,
    /// `Fn::GetAtt` values, keyed `Logical.Attribute`.
    pub attributes: BTreeMap<String, String>,
}

impl Known {
    pub fn new(stack_name: &str, region: &str, account: &str) -> Self {
        let mut known = Known::default();
        known
            .refs
            .insert("AWS::StackName".into(), stack_name.into());
        known.refs.insert("AWS::Region".into(), region.into());
        known.refs.insert("AWS::AccountId".into(), account.into());
        known.refs.insert("AWS::Partition".into(), "aws".into());
        known
            .refs
            .insert("AWS::URLSuffix".into(), "amazonaws.com".into());
        known
    }

    /// Turns a template fragment into plain JSON, resolving `!Ref`, `!Sub` and `!GetAtt` in
    /// both their short (tag) and long (`Ref:`/`Fn::...:`) forms.
    pub fn resolve(&self, value: &Yaml) -> Result<Value, TemplateError> {
        match value {
            Yaml::Null => Ok(Value::Null),
            Yaml::Bool(b) => Ok(Value::Bool(*b)),
            Yaml::Number(n) => Ok(serde_json::to_value(n).unwrap_or(Value::Null)),
            Yaml::String(s) => Ok(Value::String(s.clone())),
            Yaml::Sequence(items) => items
                .iter()
                .map(|i| self.resolve(i))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                self.intrinsic(tag.trim_start_matches('!'), &tagged.value)
            }
            Yaml::Mapping(map) => {
                if map.len() == 1
                    && let Some((Yaml::String(key), inner)) = map.iter().next()
                {
                    let name = key.strip_prefix("Fn::").unwrap_or(key);
                    if key == "Ref" || key.starts_with("Fn::") {
                        return self.intrinsic(name, inner);
                    }
                }
                let mut out = Map::new();
                for (k, v) in map {
                    let key = k
                        .as_str()
                        .ok_or_else(|| shape("mapping keys must be strings"))?;
                    out.insert(key.to_owned(), self.resolve(v)?);
                }
                Ok(Value::Object(out))
            }
        }
    }

    fn intrinsic(&self, name: &str, argument: &Yaml) -> Result<Value, TemplateError> {
        match name {
            "Ref" => {
                let target = argument
                    .as_str()
                    .ok_or_else(|| shape("!Ref needs a name"))?;
                self.refs
                    .get(target)
                    .map(|v| Value::String(v.clone()))
                    .ok_or_else(|| TemplateError::Unresolved(format!("Ref {target}")))
            }
            "GetAtt" => {
                let key = match argument {
                    Yaml::String(s) => s.clone(),
                    Yaml::Sequence(parts) => parts
                        .iter()
                        .filter_map(Yaml::as_str)
                        .collect::<Vec<_>>()
                        .join("."),
                    _ => return Err(shape("!GetAtt needs Logical.Attribute")),
                };
                self.attributes
                    .get(&key)
                    .map(|v| Value::String(v.clone()))
                    .ok_or(TemplateError::Unresolved(format!("GetAtt {key}")))
            }
            "Sub" => {
                let text = argument
                    .as_str()
                    .ok_or_else(|| shape("only the one-argument form of !Sub is supported"))?;
                self.substitute(text).map(Value::String)
            }
            other => Err(TemplateError::Unresolved(format!(
                "intrinsic function {other}"
            ))),
        }
    }

    fn substitute(&self, text: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| shape(format!("unclosed ${{ in {text}")))?;
            let name = &after[..end];
            let value = match name.split_once('.') {
                Some(_) => self.attributes.get(name),
                None => self.refs.get(name),
            };
            out.push_str(value.ok_or_else(|| TemplateError::Unresolved(format!("${{{name}}}")))?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// One resource of the template: its logical id, type, and raw properties.
#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Yaml,
}

/// The parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    resources: Vec<Resource>,
    global_environment: Yaml,
    /// Each parameter's `Default`, where it has one, as CloudFormation would apply it.
    parameter_defaults: BTreeMap<String, String>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let doc: Yaml = serde_yaml_ng::from_str(text)?;
        let resources = doc
            .get("Resources")
            .and_then(Yaml::as_mapping)
            .ok_or_else(|| shape("the template has no Resources"))?
            .iter()
            .map(|(id, body)| {
                Ok(Resource {
                    logical_id: id
                        .as_str()
                        .ok_or_else(|| shape("resource ids must be strings"))?
                        .to_owned(),
                    kind: body
                        .get("Type")
                        .and_then(Yaml::as_str)
                        .ok_or_else(|| shape("every resource needs a Type"))?
                        .to_owned(),
                    properties: body.get("Properties").cloned().unwrap_or(Yaml::Null),
                })
            })
            .collect::<Result<Vec<_>, TemplateError>>()?;
        let global_environment = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .cloned()
            .unwrap_or(Yaml::Null);
        let parameter_defaults = doc
            .get("Parameters")
            .and_then(Yaml::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(name, body)| {
                let default = match body.get("Default")? {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((name.as_str()?.to_owned(), default))
            })
            .collect();
        Ok(Template {
            resources,
            global_environment,
            parameter_defaults,
        })
    }

    /// The parameters' defaults, for those the caller does not give.
    pub fn parameter_defaults(&self) -> &BTreeMap<String, String> {
        &self.parameter_defaults
    }

    pub fn resources_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.kind == kind)
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.logical_id == logical_id)
    }

    /// The variables Lambda itself sets from a function's `LoggingConfig` (its advanced logging
    /// controls): `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`, which the Rust runtime's
    /// subscriber reads.
    pub fn lambda_log_environment(&self, function: &str) -> BTreeMap<String, String> {
        let config = self
            .resource(function)
            .and_then(|r| r.properties.get("LoggingConfig"));
        // A plain value, or a parameter's default (`!Ref ApplicationLogLevel`).
        let text = |name: &str| match config.and_then(|c| c.get(name))? {
            Yaml::String(value) => Some(value.clone()),
            Yaml::Tagged(tagged) if tagged.tag == "Ref" => tagged
                .value
                .as_str()
                .and_then(|parameter| self.parameter_defaults.get(parameter))
                .cloned(),
            _ => None,
        };
        let mut vars = BTreeMap::new();
        if let Some(format) = text("LogFormat") {
            vars.insert("AWS_LAMBDA_LOG_FORMAT".to_owned(), format);
        }
        if let Some(level) = text("ApplicationLogLevel") {
            vars.insert("AWS_LAMBDA_LOG_LEVEL".to_owned(), level);
        }
        vars
    }

    /// The environment a function gets in AWS: the global variables overlaid with its own.
    pub fn function_environment(
        &self,
        logical_id: &str,
        known: &Known,
    ) -> Result<BTreeMap<String, String>, TemplateError> {
        let function = self
            .resource(logical_id)
            .ok_or_else(|| shape(format!("no function {logical_id} in the template")))?;
        let mut env = BTreeMap::new();
        let own = function
            .properties
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .cloned()
            .unwrap_or(Yaml::Null);
        for vars in [&self.global_environment, &own] {
            if let Value::Object(map) = known.resolve(vars)? {
                for (k, v) in map {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    env.insert(k, v);
                }
            }
        }
        Ok(env)
    }

    /// The event source mapping of `kind` (`DynamoDB` or `SQS`) on a function, resolved.
    pub fn event_source(
        &self,
        function: &str,
        kind: &str,
        known: &Known,
    ) -> Result<Value, TemplateError> {
        let events = self
            .resource(function)
            .and_then(|f| f.properties.get("Events"))
            .and_then(Yaml::as_mapping)
            .ok_or_else(|| shape(format!("function {function} has no Events")))?;
        for event in events.values() {
            if event.get("Type").and_then(Yaml::as_str) == Some(kind) {
                return known.resolve(event.get("Properties").unwrap_or(&Yaml::Null));
            }
        }
        Err(shape(format!("function {function} has no {kind} event")))
    }
}

/// Reads an integer property the way CloudFormation does (numbers or numeric strings).
pub fn int_property(properties: &Value, name: &str) -> Option<i64> {
    match properties.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
Parameters:
  Secret:
    Type: String
    NoEcho: true
  Issuer:
    Type: String
    Default: ""
  Days:
    Type: Number
    Default: 30
Globals:
  Function:
    Environment:
      Variables:
        RUST_LOG: info
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-events"
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: { "Fn::GetAtt": [Dlq, Arn] }
        maxReceiveCount: 5
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          TABLE: !Ref Table
          STREAM: !GetAtt Table.StreamArn
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            BatchSize: 25
"#;

    #[test]
    fn parameters_default_as_cloudformation_applies_them() {
        let template = Template::parse(SAMPLE).unwrap();
        let defaults: Vec<(&str, &str)> = template
            .parameter_defaults()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(defaults, [("Days", "30"), ("Issuer", "")]);
    }

    #[test]
    fn resolves_short_and_long_intrinsics() {
        let template = Template::parse(SAMPLE).unwrap();
        let mut known = Known::new("dev", "us-east-1", "123456789012");
        let table = template.resource("Table").unwrap();
        assert_eq!(
            known.resolve(&table.properties).unwrap()["TableName"],
            "dev-events"
        );

        let queue = template.resource("Queue").unwrap();
        assert!(matches!(
            known.resolve(&queue.properties),
            Err(TemplateError::Unresolved(_))
        ));
        known.attributes.insert("Dlq.Arn".into(), "arn:dlq".into());
        assert_eq!(
            known.resolve(&queue.properties).unwrap()["RedrivePolicy"]["deadLetterTargetArn"],
            "arn:dlq"
        );

        known.refs.insert("Table".into(), "dev-events".into());
        known
            .attributes
            .insert("Table.StreamArn".into(), "arn:stream".into());
        let env = template.function_environment("Fn", &known).unwrap();
        assert_eq!(env["TABLE"], "dev-events");
        assert_eq!(env["STREAM"], "arn:stream");
        assert_eq!(env["RUST_LOG"], "info");
        let mapping = template.event_source("Fn", "DynamoDB", &known).unwrap();
        assert_eq!(int_property(&mapping, "BatchSize"), Some(25));
    }

    /// Every string in a template fragment, tagged values (`!Sub "..."`) included.
    fn strings(value: &Yaml, into: &mut Vec<String>) {
        match value {
            Yaml::String(s) => into.push(s.clone()),
            Yaml::Sequence(items) => items.iter().for_each(|i| strings(i, into)),
            Yaml::Mapping(map) => map.values().for_each(|v| strings(v, into)),
            Yaml::Tagged(tagged) => strings(&tagged.value, into),
            _ => {}
        }
    }

    #[test]
    fn each_function_may_query_only_the_indexes_it_names() {
        let template = Template::parse(include_str!("../../template.yaml")).unwrap();
        let functions: Vec<&Resource> =
            template.resources_of("AWS::Serverless::Function").collect();
        assert!(functions.len() >= 5);
        for function in functions {
            let mut granted = Vec::new();
            if let Some(policies) = function.properties.get("Policies") {
                strings(policies, &mut granted);
            }
            let wildcard: Vec<&String> = granted
                .iter()
                .filter(|s| s.contains("/index/") && s.ends_with('*'))
                .collect();
            assert!(
                wildcard.is_empty(),
                "{} may query every index: {wildcard:?}",
                function.logical_id
            );
        }
    }

    /// A deployment shifts each function's `live` alias gradually and rolls back on that
    /// function's own alarms, which watch the alias (not the whole function, whose old version
    /// would hide the new one's errors).
    #[test]
    fn every_function_deploys_through_an_alias_that_its_own_alarms_roll_back() {
        let text = include_str!("../../template.yaml");
        let template = Template::parse(text).unwrap();
        let doc: Yaml = serde_yaml_ng::from_str(text).unwrap();
        let globals = &doc["Globals"]["Function"];
        assert_eq!(globals["AutoPublishAlias"].as_str(), Some("live"));
        let mut kind = Vec::new();
        strings(&globals["DeploymentPreference"]["Type"], &mut kind);
        assert_eq!(kind, ["DeploymentType"], "the type is the parameter's");
        let functions: Vec<&Resource> = template
            .resources_of("AWS::Serverless::Function")
            // The two that serve no traffic: CodeDeploy's hook and CloudFormation's seeding.
            .filter(|f| {
                !["PreTrafficHookFunction", "StoreSeedingFunction"].contains(&f.logical_id.as_str())
            })
            .collect();
        assert_eq!(functions.len(), 6);
        for function in functions {
            let id = &function.logical_id;
            let alarms = function.properties["DeploymentPreference"]["Alarms"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{id} has no rollback alarms"));
            assert!(!alarms.is_empty(), "{id}");
            for alarm in alarms.iter().filter_map(Yaml::as_str) {
                let resource = template
                    .resource(alarm)
                    .unwrap_or_else(|| panic!("{id}: no alarm {alarm}"));
                assert_eq!(resource.kind, "AWS::CloudWatch::Alarm");
                let mut dimensions = Vec::new();
                strings(&resource.properties["Dimensions"], &mut dimensions);
                assert!(
                    dimensions.contains(&format!("${{{id}}}:live")),
                    "{alarm} watches {id}'s alias: {dimensions:?}"
                );
            }
        }
    }

    /// The API's routes, as (route key, its resource's properties).
    fn routes(template: &Template) -> Vec<(String, &Yaml)> {
        template
            .resources_of("AWS::ApiGatewayV2::Route")
            .map(|route| {
                let key = route.properties["RouteKey"].as_str().unwrap_or_default();
                (key.to_owned(), &route.properties)
            })
            .collect()
    }

    #[test]
    fn each_throttled_route_is_one_the_api_serves() {
        let template = Template::parse(include_str!("../../template.yaml")).unwrap();
        let openapi: Value = serde_json::from_str(cuba_web::ingest::OPENAPI_JSON).unwrap();
        let routes = routes(&template);
        for (key, _) in &routes {
            let path = key
                .split_once(' ')
                .map(|(_, path)| path)
                .unwrap_or_default();
            assert!(
                path == "/" || (path.starts_with('/') && !path.ends_with('/')),
                "HTTP API refuses a route key ending in a slash: {key}"
            );
        }
        let stage = template
            .resource("HttpApiStage")
            .expect("the $default stage");
        let settings = stage.properties["RouteSettings"]
            .as_mapping()
            .expect("route settings");
        let mut depends = Vec::new();
        strings(
            &serde_yaml_ng::from_str::<Yaml>(include_str!("../../template.yaml")).unwrap()["Resources"]
                ["HttpApiStage"]["DependsOn"],
            &mut depends,
        );
        let mut throttled = 0;
        for key in settings.keys().filter_map(Yaml::as_str) {
            let route = template
                .resources_of("AWS::ApiGatewayV2::Route")
                .find(|r| r.properties["RouteKey"].as_str() == Some(key))
                .unwrap_or_else(|| panic!("a throttle for {key}, which is no route"));
            assert!(
                depends.contains(&route.logical_id),
                "the stage must wait for {key}'s route"
            );
            let (method, path) = key.split_once(' ').unwrap_or_default();
            if path.contains('{') {
                continue;
            }
            throttled += 1;
            assert!(
                openapi["paths"][path][method.to_ascii_lowercase()].is_object(),
                "{key} is not an operation of the API"
            );
        }
        assert_eq!(throttled, 5, "five ingest routes");
    }

    /// In `oidc` mode the gateway checks tokens before any function runs, on every route that
    /// takes one: the app's with the app's authorizer, the admin API's with the console's. The
    /// API's description and the console's page and assets stay open (a browser loads them
    /// before it signs in).
    #[test]
    fn every_route_that_takes_a_token_has_the_authorizer_of_its_audience() {
        let template = Template::parse(include_str!("../../template.yaml")).unwrap();
        let open = [
            "GET /api/v1/openapi.json",
            "ANY /admin/{proxy+}",
            "GET /admin",
        ];
        let routes = routes(&template);
        assert_eq!(routes.len(), 10);
        for (key, properties) in routes {
            let mut authorizer = Vec::new();
            strings(&properties["AuthorizerId"], &mut authorizer);
            let mut kind = Vec::new();
            strings(&properties["AuthorizationType"], &mut kind);
            let expected = if open.contains(&key.as_str()) {
                None
            } else if key.contains(" /admin/api/") {
                Some("AdminTokenAuthorizer")
            } else {
                assert!(key.contains(" /api/v1/"), "{key}");
                Some("UserTokenAuthorizer")
            };
            match expected {
                None => assert!(authorizer.is_empty() && kind.is_empty(), "{key}"),
                Some(expected) => {
                    assert_eq!(kind, ["GatewayJwtCheck", "JWT", "NONE"], "{key}");
                    assert_eq!(
                        authorizer,
                        ["GatewayJwtCheck", expected, "AWS::NoValue"],
                        "{key}"
                    );
                }
            }
        }
        for (authorizer, issuer, audience) in [
            ("UserTokenAuthorizer", "TokenIssuer", "TokenAudience"),
            (
                "AdminTokenAuthorizer",
                "AdminTokenIssuer",
                "AdminTokenAudience",
            ),
        ] {
            let resource = template.resource(authorizer).expect(authorizer);
            let mut named = Vec::new();
            strings(&resource.properties["JwtConfiguration"], &mut named);
            assert_eq!(named, [issuer, audience], "{authorizer}");
        }
        // The authorizers exist with provider tokens only, and only where the deployment lets
        // the gateway check them (an ES256 provider's it cannot: API Gateway checks RSA only).
        let doc: Yaml = serde_yaml_ng::from_str(include_str!("../../template.yaml")).unwrap();
        for authorizer in ["UserTokenAuthorizer", "AdminTokenAuthorizer"] {
            assert_eq!(
                doc["Resources"][authorizer]["Condition"].as_str(),
                Some("GatewayJwtCheck"),
                "{authorizer}"
            );
        }
        let mut check = Vec::new();
        strings(&doc["Conditions"]["GatewayJwtCheck"], &mut check);
        assert_eq!(check, ["ProviderTokens", "GatewayChecksTokens", "true"]);
        assert_eq!(
            template
                .parameter_defaults
                .get("GatewayChecksTokens")
                .map(String::as_str),
            Some("true"),
            "the gateway checks tokens unless told not to"
        );
    }

    /// The API invokes each function's `live` alias, which canary deployments shift.
    #[test]
    fn the_api_invokes_the_functions_aliases() {
        let template = Template::parse(include_str!("../../template.yaml")).unwrap();
        let integrations: Vec<&Resource> = template
            .resources_of("AWS::ApiGatewayV2::Integration")
            .collect();
        assert_eq!(integrations.len(), 2);
        let permissions: Vec<&Resource> =
            template.resources_of("AWS::Lambda::Permission").collect();
        for integration in integrations {
            let mut uri = Vec::new();
            strings(&integration.properties["IntegrationUri"], &mut uri);
            let [alias] = uri.as_slice() else {
                panic!("{}: {uri:?}", integration.logical_id)
            };
            assert!(alias.ends_with("Function.Alias"), "{alias}");
            assert!(
                permissions.iter().any(|p| {
                    let mut function = Vec::new();
                    strings(&p.properties["FunctionName"], &mut function);
                    function == [alias.clone()]
                        && p.properties["Principal"].as_str() == Some("apigateway.amazonaws.com")
                }),
                "the API may invoke {alias}"
            );
        }
    }

    /// CodeDeploy checks the new ingest and rules versions before moving traffic: the hook runs
    /// as a function SAM's CodeDeploy role may invoke, replaced at once itself, and may invoke
    /// exactly the two new versions it checks.
    #[test]
    fn ingest_and_rules_deploy_behind_the_pre_traffic_check() {
        let template = Template::parse(include_str!("../../template.yaml")).unwrap();
        for id in ["IngestFunction", "RulesFunction"] {
            let function = template.resource(id).expect(id);
            let mut hook = Vec::new();
            strings(
                &function.properties["DeploymentPreference"]["Hooks"],
                &mut hook,
            );
            assert_eq!(hook, ["PreTrafficHookFunction"], "{id}");
        }
        let hook = template
            .resource("PreTrafficHookFunction")
            .expect("the hook");
        let mut name = Vec::new();
        strings(&hook.properties["FunctionName"], &mut name);
        assert!(name[0].starts_with("CodeDeployHook_"), "{name:?}");
        assert_eq!(
            hook.properties["DeploymentPreference"]["Enabled"].as_bool(),
            Some(false)
        );
        let mut checked = Vec::new();
        strings(&hook.properties["Environment"], &mut checked);
        assert_eq!(checked, ["IngestFunction.Version", "RulesFunction.Version"]);
        let mut invoked = Vec::new();
        let statements = hook.properties["Policies"][0]["Statement"]
            .as_sequence()
            .expect("statements");
        let invoke = statements
            .iter()
            .find(|s| s["Action"][0].as_str() == Some("lambda:InvokeFunction"))
            .expect("an invoke grant");
        strings(&invoke["Resource"], &mut invoked);
        assert_eq!(invoked, checked, "the versions it checks, nothing else");
    }

    #[test]
    fn every_function_logs_json_at_a_level_that_keeps_the_metric_lines() {
        let template = Template::parse(include_str!("../../template.yaml")).unwrap();
        for function in template.resources_of("AWS::Serverless::Function") {
            let vars = template.lambda_log_environment(&function.logical_id);
            assert_eq!(
                vars.get("AWS_LAMBDA_LOG_FORMAT").map(String::as_str),
                Some("JSON"),
                "{}",
                function.logical_id
            );
            assert_eq!(
                vars.get("AWS_LAMBDA_LOG_LEVEL").map(String::as_str),
                Some("INFO"),
                "{}: the metric lines have no level, so Lambda files them as INFO",
                function.logical_id
            );
        }
    }
}
