//! The tools: one per action-file op, with the op's own JSON Schema (minus `op` and the step
//! name; plus `confirm` for destructive tools).

use std::collections::BTreeMap;
use std::sync::Arc;

use reach_client::actions::{self, DESTRUCTIVE, READ_ONLY};
use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{Map, Value, json};

/// One tool.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// The action-file op it runs.
    pub op: String,
    /// Whether it needs `"confirm": true`.
    pub destructive: bool,
    /// What the client sees.
    pub tool: Tool,
}

/// Every tool, by name.
#[derive(Debug, Clone)]
pub struct Catalog {
    tools: BTreeMap<String, ToolSpec>,
}

impl Catalog {
    /// Builds the catalog from the action-file schema.
    pub fn build() -> Self {
        let schema = actions::schema();
        let defs = schema["$defs"].clone();
        let mut tools = BTreeMap::new();
        for entry in schema["properties"]["steps"]["items"]["oneOf"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(op) = entry["properties"]["op"]["const"].as_str() else {
                continue;
            };
            let destructive = DESTRUCTIVE.contains(&op);
            let input = input_schema(entry, &defs, destructive);
            let description = entry["description"].as_str().unwrap_or(op).to_owned();
            let name = format!("reach_{op}");
            let annotations = ToolAnnotations::new()
                .read_only(READ_ONLY.contains(&op))
                .destructive(destructive);
            let tool =
                Tool::new(name.clone(), description, Arc::new(input)).with_annotations(annotations);
            tools.insert(
                name,
                ToolSpec {
                    op: op.to_owned(),
                    destructive,
                    tool,
                },
            );
        }
        Self { tools }
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.get(name)
    }

    /// Every tool, sorted by name.
    pub fn tools(&self) -> Vec<Tool> {
        self.tools.values().map(|s| s.tool.clone()).collect()
    }
}

fn input_schema(entry: &Value, defs: &Value, destructive: bool) -> Map<String, Value> {
    let mut schema = entry.as_object().cloned().unwrap_or_default();
    schema.remove("description");
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.remove("op");
        props.remove("step");
        if destructive {
            props.insert(
                "confirm".into(),
                json!({"type": "boolean", "const": true, "description": "Must be true: this tool changes or removes something that cannot simply be undone."}),
            );
        }
    }
    let mut required: Vec<Value> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter(|v| *v != "op").cloned().collect())
        .unwrap_or_default();
    if destructive {
        required.push(json!("confirm"));
    }
    schema.insert("required".into(), Value::Array(required));
    schema.insert("type".into(), json!("object"));
    if defs.as_object().is_some_and(|d| !d.is_empty()) {
        schema.insert("$defs".into(), defs.clone());
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_a_tool_and_destructive_ones_require_confirm() {
        let catalog = Catalog::build();
        for name in [
            "reach_machines_list",
            "reach_session_open",
            "reach_support_code_create",
            "reach_usb_remote_list",
            "reach_usb_acl_add",
            "reach_wait_for",
        ] {
            assert!(catalog.get(name).is_some(), "{name}");
        }
        let end = catalog.get("reach_session_end").unwrap();
        assert!(end.destructive);
        let schema = Value::Object((*end.tool.input_schema).clone());
        assert_eq!(schema["required"], json!(["id", "confirm"]), "{schema}");
        assert!(schema["properties"].get("op").is_none());
        let list = catalog.get("reach_machines_list").unwrap();
        assert!(!list.destructive);
        assert!(
            list.tool
                .annotations
                .as_ref()
                .is_some_and(|a| a.read_only_hint == Some(true))
        );
    }
}
