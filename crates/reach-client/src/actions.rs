//! Action files: a JSON list of steps run in order (`reach run FILE.json`).
//!
//! ```json
//! {"steps": [
//!   {"step": "m", "op": "machines_create", "name": "front desk"},
//!   {"step": "key", "op": "agent_key_issue", "machine": "$steps.m.id"},
//!   {"op": "wait_for", "machine_online": "$steps.m.id", "timeout_secs": 60}
//! ]}
//! ```
//!
//! `step` names a step (optional; `step3` otherwise) so later steps can use its answer.
//! A string that is exactly `$steps.ID.PATH` becomes the value at `PATH` (dot-separated keys or
//! array indexes) in the answer of the earlier step `ID`; `${steps.ID.PATH}` inside a longer
//! string is replaced by that value's text. The whole file is checked before any step runs
//! ([`Plan::parse`]): unknown ops, unknown or missing fields, duplicate ids and references to
//! steps that do not come earlier are all refused with the step named.

use std::collections::HashMap;
use std::time::Duration;

use reach_usb::ops::HostOp;
use reach_usb::tools::UsbPaths;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ClientError;
use crate::ops::{self, Op};
use crate::remote::RemoteOp;
use crate::viewer::ApiClient;

/// Ops that end, revoke, delete, replace or widen something that cannot simply be made again:
/// MCP tools for them need `"confirm": true`.
pub const DESTRUCTIVE: &[&str] = &[
    "session_end",
    "machines_delete",
    "agent_key_revoke",
    "users_delete",
    "support_code_revoke",
    "usb_acl_set_default",
    "usb_acl_import",
    "usb_acl_remove",
    "usb_passthrough_enable",
];

/// Ops that only read.
pub const READ_ONLY: &[&str] = &[
    "machines_list",
    "machines_show",
    "agent_key_list",
    "support_code_list",
    "session_list",
    "users_list",
    "audit_verify",
    "audit_list",
    "usb_passthrough_status",
    "usb_acl_list",
    "usb_acl_export",
    "usb_loopback_list",
    "usb_remote_list",
    "wait_for",
];

/// Waits until something is true, or fails after `timeout_secs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// A machine id that must come online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_online: Option<String>,
    /// A session id whose consent must be answered (granted: the step succeeds; denied or
    /// timed out: it fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_answered: Option<String>,
    /// How long to wait (default 60 s, at most 3600).
    #[serde(default = "default_wait")]
    pub timeout_secs: u64,
}

fn default_wait() -> u64 {
    60
}

/// What one step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A server operation (REST).
    Server(Op),
    /// An operation on this host's USB.
    Host(HostOp),
    /// An operation on a remote host's USB through a session.
    Remote(RemoteOp),
    /// Wait for a condition.
    WaitFor(WaitFor),
}

impl Action {
    /// The op's name, as written in the file.
    pub fn name(&self) -> String {
        match self {
            Self::Server(op) => op.name(),
            Self::Host(op) => op.name(),
            Self::Remote(op) => ops::op_tag(op),
            Self::WaitFor(_) => "wait_for".into(),
        }
    }

    /// Whether it ends, revokes, deletes, replaces or widens something ([`DESTRUCTIVE`]).
    pub fn is_destructive(&self) -> bool {
        DESTRUCTIVE.contains(&self.name().as_str())
    }

    /// Whether it only reads ([`READ_ONLY`]).
    pub fn is_read_only(&self) -> bool {
        READ_ONLY.contains(&self.name().as_str())
    }

    /// Whether it needs a login (server, remote and wait ops).
    pub fn needs_login(&self) -> bool {
        !matches!(self, Self::Host(_))
    }
}

/// One step as written: its id and its JSON (variables not yet resolved).
#[derive(Debug, Clone)]
pub struct Step {
    /// Position, from 1.
    pub number: usize,
    /// Its id (`"step3"` when the file gives none).
    pub id: String,
    /// The op's name.
    pub op: String,
    /// The op's JSON, with `step` removed.
    pub raw: Value,
    /// Whether the step refers to earlier answers (typed only once they are known).
    pub has_variables: bool,
    /// Whether it needs a login (server, remote and wait steps; assumed for a step whose type
    /// is known only once its variables are).
    pub needs_login: bool,
}

/// A checked action file.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// Why a file was refused or a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The file is not an action file; nothing ran.
    #[error("invalid action file: {0}")]
    Invalid(String),
    /// A step failed; the steps before it ran.
    #[error("step {number} ({id}, {op}) failed: {reason}")]
    Step {
        /// Position, from 1.
        number: usize,
        /// Its id.
        id: String,
        /// Its op.
        op: String,
        /// Why.
        reason: String,
    },
}

/// At most this many steps in one file.
pub const MAX_STEPS: usize = 1000;

impl Plan {
    /// Parses and checks a whole file before anything runs.
    ///
    /// # Errors
    /// [`ActionError::Invalid`] naming the step and the problem.
    pub fn parse(text: &str) -> Result<Self, ActionError> {
        let bad = |m: String| ActionError::Invalid(m);
        let file: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let object = file
            .as_object()
            .ok_or_else(|| bad("the file must be an object with \"steps\"".into()))?;
        if let Some(key) = object.keys().find(|k| *k != "steps" && *k != "$schema") {
            return Err(bad(format!("unknown top-level field {key:?}")));
        }
        let list = object
            .get("steps")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("\"steps\" must be a list".into()))?;
        if list.len() > MAX_STEPS {
            return Err(bad(format!("{} steps; at most {MAX_STEPS}", list.len())));
        }
        let mut steps: Vec<Step> = Vec::with_capacity(list.len());
        for (i, value) in list.iter().enumerate() {
            let step = check_step(i + 1, value, &steps)
                .map_err(|m| bad(format!("step {}: {m}", i + 1)))?;
            steps.push(step);
        }
        Ok(Self { steps })
    }

    /// Whether any step needs a login.
    pub fn needs_login(&self) -> bool {
        self.steps.iter().any(|s| s.needs_login)
    }
}

fn check_step(number: usize, value: &Value, earlier: &[Step]) -> Result<Step, String> {
    let mut raw = value
        .as_object()
        .cloned()
        .ok_or("a step must be an object")?;
    let id = match raw.remove("step") {
        None => format!("step{number}"),
        Some(Value::String(id)) if valid_id(&id) => id,
        Some(other) => return Err(format!("step name {other} must be 1-64 of a-z A-Z 0-9 _ -")),
    };
    if earlier.iter().any(|s| s.id == id) {
        return Err(format!("step name {id:?} is used twice"));
    }
    let op = raw
        .get("op")
        .and_then(Value::as_str)
        .ok_or("missing \"op\"")?
        .to_owned();
    let raw = Value::Object(raw);
    let mut refs = Vec::new();
    collect_refs(&raw, &mut refs);
    for r in &refs {
        if !earlier.iter().any(|s| s.id == *r) {
            return Err(format!("refers to step {r:?}, which does not come earlier"));
        }
    }
    let needs_login = match classify(&op, &placeholder(&raw)) {
        Ok(action) => action.needs_login(),
        Err(e) if refs.is_empty() || !e.contains("invalid type") => return Err(e),
        Err(_) => true,
    };
    Ok(Step {
        number,
        id,
        op,
        raw,
        has_variables: !refs.is_empty(),
        needs_login,
    })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The typed action for `op` with fields `raw` (which include `"op"`), or a sentence.
pub fn classify(op: &str, raw: &Value) -> Result<Action, String> {
    if op == "wait_for" {
        let mut fields = raw.clone();
        if let Some(m) = fields.as_object_mut() {
            m.remove("op");
        }
        let wait: WaitFor = serde_json::from_value(fields).map_err(|e| e.to_string())?;
        if wait.machine_online.is_some() == wait.consent_answered.is_some() {
            return Err("wait_for needs exactly one of machine_online or consent_answered".into());
        }
        if wait.timeout_secs == 0 || wait.timeout_secs > 3600 {
            return Err("timeout_secs must be 1-3600".into());
        }
        return Ok(Action::WaitFor(wait));
    }
    let unknown = |e: &serde_json::Error| e.to_string().starts_with("unknown variant");
    match serde_json::from_value::<Op>(raw.clone()) {
        Ok(op) => return Ok(Action::Server(op)),
        Err(e) if !unknown(&e) => return Err(e.to_string()),
        Err(_) => {}
    }
    match serde_json::from_value::<HostOp>(raw.clone()) {
        Ok(op) => return Ok(Action::Host(op)),
        Err(e) if !unknown(&e) => return Err(e.to_string()),
        Err(_) => {}
    }
    match serde_json::from_value::<RemoteOp>(raw.clone()) {
        Ok(op) => Ok(Action::Remote(op)),
        Err(e) if !unknown(&e) => Err(e.to_string()),
        Err(_) => Err(format!(
            "unknown op {op:?} (`reach run --schema` lists them)"
        )),
    }
}

/// The step ids a value refers to.
fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            for reference in references(s) {
                out.push(reference.split('.').next().unwrap_or_default().to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The `ID.PATH` parts of the variables in a string.
fn references(s: &str) -> Vec<&str> {
    if let Some(whole) = s.strip_prefix("$steps.") {
        return vec![whole];
    }
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${steps.") {
        let after = &rest[start + 8..];
        match after.find('}') {
            Some(end) => {
                found.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    found
}

/// The value with every variable replaced by a placeholder string (for type checks before run).
fn placeholder(value: &Value) -> Value {
    match value {
        Value::String(s) if !references(s).is_empty() => Value::String("placeholder".into()),
        Value::Array(items) => Value::Array(items.iter().map(placeholder).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), placeholder(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The value with every variable replaced from earlier answers.
fn resolve(value: &Value, answers: &HashMap<String, Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            if let Some(whole) = s.strip_prefix("$steps.") {
                lookup(whole, answers)?
            } else if s.contains("${steps.") {
                let mut text = s.clone();
                for r in references(s) {
                    let v = lookup(r, answers)?;
                    let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    text = text.replace(&format!("${{steps.{r}}}"), &shown);
                }
                Value::String(text)
            } else {
                value.clone()
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve(v, answers))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| resolve(v, answers).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn lookup(reference: &str, answers: &HashMap<String, Value>) -> Result<Value, String> {
    let mut parts = reference.split('.');
    let id = parts.next().unwrap_or_default();
    let mut value = answers
        .get(id)
        .ok_or_else(|| format!("no answer from step {id:?}"))?;
    for part in parts {
        value = match value {
            Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            Value::Object(map) => map.get(part),
            _ => None,
        }
        .ok_or_else(|| format!("${{steps.{reference}}}: step {id:?} answered no {part:?}"))?;
    }
    Ok(value.clone())
}

/// Where steps run: the login (when the plan needs one) and this host's USB paths.
#[derive(Debug, Clone)]
pub struct Context {
    /// Server API with the login token.
    pub api: Option<ApiClient>,
    /// This host's config directory.
    pub paths: UsbPaths,
}

/// One step's outcome, reported as it finishes.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Position, from 1.
    pub step: usize,
    /// Its id.
    pub id: String,
    /// Its op.
    pub op: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// The answer.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub result: Value,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Runs every step in order; stops at the first failure. `report` sees each step as it ends.
///
/// # Errors
/// [`ActionError::Step`] for the step that failed.
pub async fn run(
    plan: &Plan,
    cx: &Context,
    mut report: impl FnMut(&StepReport),
) -> Result<(), ActionError> {
    let mut answers: HashMap<String, Value> = HashMap::new();
    for step in &plan.steps {
        let outcome = run_step(step, cx, &answers).await;
        let (ok, result, error) = match outcome {
            Ok(v) => (true, v, None),
            Err(e) => (false, Value::Null, Some(e)),
        };
        report(&StepReport {
            step: step.number,
            id: step.id.clone(),
            op: step.op.clone(),
            ok,
            result: result.clone(),
            error: error.clone(),
        });
        if let Some(reason) = error {
            return Err(ActionError::Step {
                number: step.number,
                id: step.id.clone(),
                op: step.op.clone(),
                reason,
            });
        }
        answers.insert(step.id.clone(), result);
    }
    Ok(())
}

async fn run_step(
    step: &Step,
    cx: &Context,
    answers: &HashMap<String, Value>,
) -> Result<Value, String> {
    let raw = resolve(&step.raw, answers)?;
    execute(classify(&step.op, &raw)?, cx).await
}

/// Runs one action in `cx`; its answer, or a sentence.
///
/// # Errors
/// Why it failed (the server's refusal, the host's error, not logged in).
pub async fn execute(action: Action, cx: &Context) -> Result<Value, String> {
    let api = || {
        cx.api.as_ref().ok_or_else(|| {
            "not logged in: run `reach login` (or set REACH_SERVER and REACH_TOKEN)".to_owned()
        })
    };
    match action {
        Action::Server(op) => ops::run(api()?, &op).await.map_err(|e| ops::refusal(&e)),
        Action::Host(op) => op.run(&cx.paths).await,
        Action::Remote(op) => op.run(api()?).await.map_err(|e| e.to_string()),
        Action::WaitFor(wait) => wait_for(api()?, &wait).await,
    }
}

async fn wait_for(api: &ApiClient, wait: &WaitFor) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.timeout_secs);
    loop {
        let done = match (&wait.machine_online, &wait.consent_answered) {
            (Some(machine), _) => {
                let op = Op::MachinesShow {
                    id: machine.clone(),
                };
                let m = ops::run(api, &op).await.map_err(|e| ops::refusal(&e))?;
                (m["online"] == true).then(|| json!({"machine": m}))
            }
            (None, Some(session)) => {
                let s = api
                    .request(
                        reqwest::Method::GET,
                        &format!("/api/sessions/{}", ops::segment(session)),
                        None,
                    )
                    .await
                    .map_err(|e: ClientError| ops::refusal(&e))?;
                match s["consent"].as_str() {
                    Some("granted" | "not_required") => Some(json!({"session": s})),
                    Some("denied") => {
                        return Err(format!(
                            "consent for session {session} was not given ({})",
                            s["consent"]
                        ));
                    }
                    _ if s["ended_at_ms"].is_number() => {
                        return Err(format!("session {session} ended before consent"));
                    }
                    _ => None,
                }
            }
            (None, None) => return Err("nothing to wait for".into()),
        };
        if let Some(v) = done {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("still not true after {} s", wait.timeout_secs));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The JSON Schema of action files (`reach run --schema`).
pub fn schema() -> Value {
    let step_schemas = [
        serde_json::to_value(schemars::schema_for!(Op)).unwrap_or_default(),
        serde_json::to_value(schemars::schema_for!(HostOp)).unwrap_or_default(),
        serde_json::to_value(schemars::schema_for!(RemoteOp)).unwrap_or_default(),
    ];
    let mut one_of = Vec::new();
    let mut defs = serde_json::Map::new();
    for s in step_schemas {
        if let Some(list) = s["oneOf"].as_array() {
            one_of.extend(list.iter().cloned().map(with_id));
        }
        if let Some(d) = s["$defs"].as_object() {
            defs.extend(d.clone());
        }
    }
    let mut wait = serde_json::to_value(schemars::schema_for!(WaitFor)).unwrap_or_default();
    if let Some(o) = wait.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
        if let Some(p) = o.get_mut("properties").and_then(Value::as_object_mut) {
            p.insert("op".into(), json!({"const": "wait_for"}));
        }
        o.insert("required".into(), json!(["op"]));
    }
    one_of.push(with_id(wait));
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Reach action file",
        "description": "Steps run in order by `reach run`. \"$steps.ID.PATH\" takes a value from an earlier step's answer.",
        "type": "object",
        "additionalProperties": false,
        "required": ["steps"],
        "properties": {
            "$schema": {"type": "string"},
            "steps": {"type": "array", "maxItems": MAX_STEPS, "items": {"oneOf": one_of}}
        },
        "$defs": defs,
    })
}

/// Adds the optional step name to one op's schema.
fn with_id(mut op: Value) -> Value {
    if let Some(p) = op.get_mut("properties").and_then(Value::as_object_mut) {
        let name = json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
            "description": "Names this step; later steps use its answer as \"$steps.NAME.FIELD\"."});
        p.insert("step".into(), name);
    }
    op
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        Plan::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_file_is_checked_whole_before_anything_runs() {
        let ok = Plan::parse(
            r#"{"steps": [
                {"step": "m", "op": "machines_create", "name": "a"},
                {"op": "agent_key_issue", "machine": "$steps.m.id"},
                {"op": "usb_acl_remove", "index": "$steps.m.n"},
                {"op": "wait_for", "machine_online": "$steps.m.id"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(ok.steps.len(), 4);
        assert_eq!(ok.steps[1].id, "step2");
        assert!(ok.needs_login());
        assert!(refused(r#"{"steps": [{"op": "drop_tables"}]}"#).contains("step 1: unknown op"));
        assert!(
            refused(r#"{"steps": [{"op": "machines_create", "name": "a", "nmae": 1}]}"#)
                .contains("unknown field")
        );
        assert!(
            refused(r#"{"steps": [{"op": "machines_create"}]}"#).contains("missing field `name`")
        );
        assert!(refused(r#"{"steps": [{"op": "agent_key_issue", "machine": "$steps.later.id"}, {"step": "later", "op": "machines_list"}]}"#).contains("does not come earlier"));
        assert!(refused(r#"{"steps": [{"step": "a", "op": "machines_list"}, {"step": "a", "op": "machines_list"}]}"#).contains("used twice"));
        assert!(
            refused(r#"{"steps": [{"op": "usb_acl_remove", "index": "one"}]}"#)
                .contains("invalid type")
        );
        assert!(
            refused(r#"{"steps": [{"op": "wait_for", "timeout_secs": 5}]}"#)
                .contains("exactly one")
        );
        assert!(refused(r#"{"steps": [], "extra": 1}"#).contains("unknown top-level field"));
        assert!(refused("[1]").contains("must be an object"));
        let host_only = Plan::parse(r#"{"steps": [{"op": "usb_passthrough_status"}]}"#).unwrap();
        assert!(!host_only.needs_login());
    }

    #[test]
    fn variables_take_values_from_earlier_answers() {
        let mut answers = HashMap::new();
        answers.insert(
            "m".to_owned(),
            json!({"id": "m-1", "tags": ["a", "b"], "n": 3}),
        );
        let raw = json!({"machine": "$steps.m.id", "index": "$steps.m.n", "note": "on ${steps.m.id} tag ${steps.m.tags.1}"});
        let resolved = resolve(&raw, &answers).unwrap();
        assert_eq!(
            resolved,
            json!({"machine": "m-1", "index": 3, "note": "on m-1 tag b"})
        );
        let missing = resolve(&json!("$steps.m.nothing"), &answers).unwrap_err();
        assert!(missing.contains("answered no \"nothing\""), "{missing}");
    }

    #[test]
    fn destructive_and_read_only_ops_are_marked_and_are_real_ops() {
        let end = classify("session_end", &json!({"op": "session_end", "id": "s"})).unwrap();
        assert!(end.is_destructive() && !end.is_read_only());
        let list = classify("session_list", &json!({"op": "session_list"})).unwrap();
        assert!(!list.is_destructive() && list.is_read_only());
        let verify = classify("audit_verify", &json!({"op": "audit_verify"})).unwrap();
        assert!(verify.is_read_only());
        let create =
            json!({"op": "users_create", "username": "a", "password": "p", "role": "viewer"});
        assert!(!classify("users_create", &create).unwrap().is_read_only());
        let schema = schema();
        let ops = schema["properties"]["steps"]["items"]["oneOf"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = ops
            .iter()
            .filter_map(|o| o["properties"]["op"]["const"].as_str())
            .collect();
        for name in DESTRUCTIVE.iter().chain(READ_ONLY) {
            assert!(names.contains(name), "{name} is not an op");
        }
    }

    #[test]
    fn the_schema_lists_every_op_with_the_step_name() {
        let schema = schema();
        let ops = schema["properties"]["steps"]["items"]["oneOf"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = ops
            .iter()
            .filter_map(|o| o["properties"]["op"]["const"].as_str())
            .collect();
        for name in [
            "machines_create",
            "usb_acl_add",
            "usb_remote_list",
            "wait_for",
            "session_open",
            "audit_verify",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(ops.iter().all(|o| o["properties"]["step"].is_object()));
    }
}
