//! Every server operation a script, an AI agent or a person at a terminal can ask for, as data:
//! one [`Op`] names a REST call and its arguments. The `reach` command's verbs, action files
//! (`reach run`) and the MCP server all build an `Op` and [`run`] it, so each operation exists
//! once.
//!
//! Ops deserialize from JSON (`{"op": "machines_create", "name": "front desk"}`); unknown
//! fields are refused, so a typo in an action file is an error, not a silently ignored option.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ClientError;
use crate::viewer::ApiClient;

/// Access a session or support code asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Watch only.
    ViewOnly,
    /// Watch and control.
    Control,
}

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the tenant.
    Admin,
    /// View, control, USB, support codes.
    Technician,
    /// View only.
    Viewer,
}

/// One server operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// `GET /api/machines` (optionally filtered by text).
    MachinesList {
        /// Text in name, organization, site, host name or a tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        q: Option<String>,
    },
    /// `GET /api/machines/{id}`.
    MachinesShow {
        /// Machine id.
        id: String,
    },
    /// `POST /api/machines`.
    MachinesCreate {
        /// Display name.
        name: String,
        /// Organization (customer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        organization: Option<String>,
        /// Site.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site: Option<String>,
        /// Tags.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<String>>,
    },
    /// `PATCH /api/machines/{id}`: absent fields stay as they are.
    MachinesUpdate {
        /// Machine id.
        id: String,
        /// New name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// New organization.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        organization: Option<String>,
        /// New site.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site: Option<String>,
        /// New tags (replace the list).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<Vec<String>>,
    },
    /// `DELETE /api/machines/{id}`: revokes its keys (the agent is disconnected), ends its live
    /// sessions and removes it.
    MachinesDelete {
        /// Machine id.
        id: String,
    },
    /// `POST /api/machines/{machine}/keys`: a new agent key (shown once).
    AgentKeyIssue {
        /// Machine id.
        machine: String,
    },
    /// `GET /api/machines/{machine}/keys`.
    AgentKeyList {
        /// Machine id.
        machine: String,
    },
    /// `DELETE /api/machines/{machine}/keys/{key}`: the agent using it is disconnected.
    AgentKeyRevoke {
        /// Machine id.
        machine: String,
        /// Key id.
        key: String,
    },
    /// `POST /api/support-codes`: a one-time code for attended support.
    SupportCodeCreate {
        /// Access to ask the person for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access: Option<Access>,
        /// Also ask for USB devices.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usb: Option<bool>,
        /// Lifetime in seconds (60–86400).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_secs: Option<u64>,
    },
    /// `GET /api/support-codes`: unused codes.
    SupportCodeList,
    /// `DELETE /api/support-codes/{id}`.
    SupportCodeRevoke {
        /// Code id.
        id: String,
    },
    /// `POST /api/sessions`: a session to an online managed machine.
    SessionOpen {
        /// Machine id.
        machine: String,
        /// Access asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access: Option<Access>,
        /// Also USB.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usb: Option<bool>,
    },
    /// `DELETE /api/sessions/{id}`.
    SessionEnd {
        /// Session id.
        id: String,
    },
    /// `GET /api/sessions`.
    SessionList {
        /// Include ended sessions.
        #[serde(default)]
        include_ended: bool,
    },
    /// `GET /api/users`.
    UsersList,
    /// `POST /api/users`.
    UsersCreate {
        /// Login name.
        username: String,
        /// Initial password.
        password: String,
        /// Role.
        role: Role,
    },
    /// `PATCH /api/users/{id}`.
    UsersUpdate {
        /// User id.
        id: String,
        /// New role.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        /// Disable or enable.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disabled: Option<bool>,
    },
    /// `DELETE /api/users/{id}`.
    UsersDelete {
        /// User id.
        id: String,
    },
    /// `GET /api/audit/verify`: the whole chain and its recorded heads.
    AuditVerify,
    /// `GET /api/audit`: newest first.
    AuditList {
        /// Only this event type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<String>,
        /// At most this many records.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
}

/// The REST call an op makes: method, path (with query) and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// HTTP method.
    pub method: Method,
    /// Path and query, e.g. `/api/machines?q=front`.
    pub path: String,
    /// JSON body, for POST and PATCH.
    pub body: Option<Value>,
}

impl Op {
    /// Its name (`machines_list`…), as in action files and MCP tool names.
    pub fn name(&self) -> String {
        op_tag(self)
    }

    /// The REST call it makes. Path segments are percent-encoded.
    pub fn call(&self) -> Call {
        let (method, path) = self.route();
        let body = match method {
            Method::POST | Method::PATCH => Some(self.body()),
            _ => None,
        };
        Call { method, path, body }
    }

    fn route(&self) -> (Method, String) {
        let e = |s: &str| segment(s);
        match self {
            Self::MachinesList { q } => (Method::GET, with_query("/api/machines", &[("q", q)])),
            Self::MachinesShow { id } => (Method::GET, format!("/api/machines/{}", e(id))),
            Self::MachinesCreate { .. } => (Method::POST, "/api/machines".into()),
            Self::MachinesUpdate { id, .. } => (Method::PATCH, format!("/api/machines/{}", e(id))),
            Self::MachinesDelete { id } => (Method::DELETE, format!("/api/machines/{}", e(id))),
            Self::AgentKeyIssue { machine } => {
                (Method::POST, format!("/api/machines/{}/keys", e(machine)))
            }
            Self::AgentKeyList { machine } => {
                (Method::GET, format!("/api/machines/{}/keys", e(machine)))
            }
            Self::AgentKeyRevoke { machine, key } => (
                Method::DELETE,
                format!("/api/machines/{}/keys/{}", e(machine), e(key)),
            ),
            Self::SupportCodeCreate { .. } => (Method::POST, "/api/support-codes".into()),
            Self::SupportCodeList => (Method::GET, "/api/support-codes".into()),
            Self::SupportCodeRevoke { id } => {
                (Method::DELETE, format!("/api/support-codes/{}", e(id)))
            }
            Self::SessionOpen { .. } => (Method::POST, "/api/sessions".into()),
            Self::SessionEnd { id } => (Method::DELETE, format!("/api/sessions/{}", e(id))),
            Self::SessionList { include_ended } => {
                let q = include_ended.then(|| "true".to_owned());
                (
                    Method::GET,
                    with_query("/api/sessions", &[("include_ended", &q)]),
                )
            }
            Self::UsersList => (Method::GET, "/api/users".into()),
            Self::UsersCreate { .. } => (Method::POST, "/api/users".into()),
            Self::UsersUpdate { id, .. } => (Method::PATCH, format!("/api/users/{}", e(id))),
            Self::UsersDelete { id } => (Method::DELETE, format!("/api/users/{}", e(id))),
            Self::AuditVerify => (Method::GET, "/api/audit/verify".into()),
            Self::AuditList { event_type, limit } => {
                let limit = limit.map(|l| l.to_string());
                let q = [("event_type", event_type), ("limit", &limit)];
                (Method::GET, with_query("/api/audit", &q))
            }
        }
    }

    /// The JSON body: the op's own fields, minus the ones that went into the path.
    fn body(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.remove("op");
            for in_path in ["id", "key"] {
                map.remove(in_path);
            }
            if let Some(machine) = map.remove("machine")
                && matches!(self, Self::SessionOpen { .. })
            {
                map.insert("machine_id".into(), machine);
            }
        }
        value
    }
}

/// Runs `op` with `api`'s login; the server's answer (`null` for an empty one).
///
/// # Errors
/// [`ClientError::Api`] with the server's refusal (see [`refusal`] for one sentence).
pub async fn run(api: &ApiClient, op: &Op) -> Result<Value, ClientError> {
    let call = op.call();
    api.request(call.method, &call.path, call.body.as_ref())
        .await
}

/// One sentence for a failed call: the server's own message (`"you need the usb
/// permission"`), else the status.
pub fn refusal(error: &ClientError) -> String {
    match error {
        ClientError::Api { status, body, .. } => {
            let parsed: Value = serde_json::from_str(body).unwrap_or_default();
            match parsed["message"].as_str() {
                Some(message) => format!("refused by the server (HTTP {status}): {message}"),
                None => format!("refused by the server (HTTP {status})"),
            }
        }
        other => other.to_string(),
    }
}

/// The `op` tag a serde-tagged operation is written with (`"machines_list"`…).
pub(crate) fn op_tag(op: &impl Serialize) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v["op"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `text` as one percent-encoded path segment (it can never walk to another route).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_query(path: &str, pairs: &[(&str, &Option<String>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ops_read_from_json_and_unknown_fields_are_refused() {
        let op: Op =
            serde_json::from_value(json!({"op": "session_open", "machine": "m1", "usb": true}))
                .unwrap();
        assert_eq!(
            op.call(),
            Call {
                method: Method::POST,
                path: "/api/sessions".into(),
                body: Some(json!({"machine_id": "m1", "usb": true})),
            }
        );
        let typo = serde_json::from_value::<Op>(
            json!({"op": "session_open", "machine": "m1", "usbb": true}),
        );
        assert!(typo.unwrap_err().to_string().contains("unknown field"));
        assert!(serde_json::from_value::<Op>(json!({"op": "drop_tables"})).is_err());
    }

    #[test]
    fn ids_in_paths_are_escaped_so_they_cannot_walk_to_another_route() {
        let op = Op::MachinesShow {
            id: "../users?x=1".into(),
        };
        assert_eq!(op.call().path, "/api/machines/..%2Fusers%3Fx%3D1");
        let op = Op::MachinesList {
            q: Some("front desk&x".into()),
        };
        assert_eq!(op.call().path, "/api/machines?q=front%20desk%26x");
    }

    #[test]
    fn an_op_is_named_as_in_action_files() {
        assert_eq!(Op::SupportCodeList.name(), "support_code_list");
    }

    #[test]
    fn a_refusal_is_one_sentence_with_the_servers_message() {
        let e = ClientError::Api {
            call: "api",
            status: 403,
            body: r#"{"error":"forbidden","message":"you need the usb permission"}"#.into(),
        };
        assert_eq!(
            refusal(&e),
            "refused by the server (HTTP 403): you need the usb permission"
        );
    }
}
