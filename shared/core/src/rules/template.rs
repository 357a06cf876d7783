//! Message templates: text with `{{field.path}}` placeholders filled from the alert's context.

use serde_json::Value;

use super::pattern::FieldPath;

pub const MESSAGE_MAX_CHARS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Field(FieldPath),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageTemplate {
    source: String,
    segments: Vec<Segment>,
}

impl MessageTemplate {
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if source.chars().count() > MESSAGE_MAX_CHARS {
            return Err(format!("must be at most {MESSAGE_MAX_CHARS} characters"));
        }
        let mut segments = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "`{{{{` at byte {} is never closed",
                    source.len() - rest.len() + open
                )
            })?;
            let name = after[..close].trim();
            let field = FieldPath::parse(name)
                .map_err(|why| format!("placeholder {{{{{name}}}}}: {why}"))?;
            segments.push(Segment::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(MessageTemplate {
            source: source.to_owned(),
            segments,
        })
    }

    /// Fills placeholders from `context`; a field the context lacks renders as nothing, because
    /// events are free-form and a missing property must not stop an alert.
    pub fn render(&self, context: &Value) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(f) => match f.lookup(context) {
                    None => {}
                    Some(Value::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                },
            }
        }
        out
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_fields_and_nested_properties() {
        let t = MessageTemplate::parse(
            "User {{user}} paid {{ properties.amount }} for {{properties.type}}.",
        )
        .unwrap();
        let ctx = json!({"user": 1, "properties": {"amount": 3000, "type": "electricity"}});
        assert_eq!(t.render(&ctx), "User 1 paid 3000 for electricity.");
    }

    #[test]
    fn missing_fields_render_empty() {
        let t = MessageTemplate::parse("[{{properties.nope}}]").unwrap();
        assert_eq!(t.render(&json!({})), "[]");
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(MessageTemplate::parse("hi {{user").is_err());
        assert!(MessageTemplate::parse("hi {{}}").is_err());
        assert!(MessageTemplate::parse("  ").is_err());
        assert!(MessageTemplate::parse(&"x".repeat(1001)).is_err());
        assert!(MessageTemplate::parse("no placeholders } {").is_ok());
    }
}
