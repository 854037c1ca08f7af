//! `reach mcp`: a Model Context Protocol server on stdio that offers every operation of
//! action files as a tool (`reach_machines_list`, `reach_session_open`,
//! `reach_support_code_create`, `reach_usb_remote_list`, `reach_usb_acl_add`, …), with each
//! tool's JSON Schema taken from the same types `reach run` validates against, and two
//! resources (the machine list, the audit verification).
//!
//! Tools that end, revoke, delete or widen something are marked destructive and refuse to run
//! without `"confirm": true`. The login comes from `reach login` or `REACH_TOKEN`; it is never
//! part of a tool's answer.
#![forbid(unsafe_code)]

mod catalog;

use std::sync::Arc;

use reach_client::actions::{self, Context};
use reach_client::ops::Op;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::Value;

pub use catalog::{Catalog, ToolSpec};

/// URI of the machine-list resource.
pub const MACHINES_URI: &str = "reach://machines";
/// URI of the audit-verification resource.
pub const AUDIT_URI: &str = "reach://audit/verify";

/// The MCP server: the tool catalog and where tools run.
#[derive(Clone)]
pub struct ReachMcp {
    catalog: Arc<Catalog>,
    cx: Arc<Context>,
}

impl ReachMcp {
    /// A server running tools in `cx` (its login and this host's USB paths).
    pub fn new(cx: Context) -> Self {
        Self {
            catalog: Arc::new(Catalog::build()),
            cx: Arc::new(cx),
        }
    }

    /// Runs one tool call; the answer as JSON text, or a sentence (never the login token).
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<serde_json::Map<String, Value>>,
    ) -> Result<Value, String> {
        let spec = self
            .catalog
            .get(name)
            .ok_or_else(|| format!("unknown tool {name:?}"))?;
        let mut args = arguments.unwrap_or_default();
        let confirmed = args.remove("confirm") == Some(Value::Bool(true));
        if spec.destructive && !confirmed {
            return Err(format!(
                "{name} changes or removes something that cannot simply be undone; call it again with \"confirm\": true if that is intended"
            ));
        }
        args.insert("op".into(), Value::String(spec.op.clone()));
        let action = actions::classify(&spec.op, &Value::Object(args))?;
        actions::execute(action, &self.cx).await
    }

    async fn read(&self, uri: &str) -> Result<Value, String> {
        let op = match uri {
            MACHINES_URI => Op::MachinesList { q: None },
            AUDIT_URI => Op::AuditVerify,
            other => return Err(format!("unknown resource {other:?}")),
        };
        actions::execute(actions::Action::Server(op), &self.cx).await
    }
}

impl ServerHandler for ReachMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("reach", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Reach: remote support with USB passthrough. Tools mirror `reach run` steps; \
                 destructive ones need \"confirm\": true.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.catalog.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let result = match self.call(&request.name, request.arguments).await {
            Ok(value) => CallToolResult::success(vec![ContentBlock::text(pretty(&value))]),
            Err(reason) => CallToolResult::error(vec![ContentBlock::text(reason)]),
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut machines = Resource::new(MACHINES_URI, "machines");
        machines.description = Some("Machines of your tenant, online first (JSON).".into());
        machines.mime_type = Some("application/json".into());
        let mut audit = Resource::new(AUDIT_URI, "audit-verification");
        audit.description =
            Some("Verification of the tenant's audit hash chain and its heads (JSON).".into());
        audit.mime_type = Some("application/json".into());
        Ok(ListResourcesResult::with_all_items(vec![machines, audit]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let value = self
            .read(&request.uri)
            .await
            .map_err(|m| ErrorData::resource_not_found(m, None))?;
        let contents = ResourceContents::text(pretty(&value), request.uri);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Serves MCP on stdin/stdout until the client closes stdin.
///
/// # Errors
/// The transport failed to start or ended with an error.
pub async fn serve_stdio(cx: Context) -> Result<(), String> {
    let service = ReachMcp::new(cx)
        .serve(rmcp::transport::io::stdio())
        .await
        .map_err(|e| format!("MCP start: {e}"))?;
    service.waiting().await.map_err(|e| format!("MCP: {e}"))?;
    Ok(())
}
