//! `reach mcp` spoken to over stdio by a hand-written MCP client (JSON-RPC, one message per
//! line), against a real server: tools listed with schemas, a read tool, a destructive tool
//! refused without `confirm` and done with it, resources read; the login token never appears.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reach_server::{AppState, Config};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

const PASSWORD: &str = "mcp-admin-password";
const WAIT: Duration = Duration::from_secs(30);

struct Client {
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    transcript: String,
}

impl Client {
    async fn send(&mut self, message: Value) {
        let line = format!("{message}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .expect("an answer in time")
                .unwrap()
                .expect("reach mcp still running");
            self.transcript.push_str(&line);
            let message: Value = serde_json::from_str(&line).expect("JSON-RPC on stdout only");
            if message["id"] == id {
                return message;
            }
        }
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer = self
            .request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await;
        answer["result"].clone()
    }
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn login(dir: &Path, url: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_reach"))
        .args(["login", "--server", url, "--user", "admin"])
        .env("REACH_CONFIG_DIR", dir)
        .env("REACH_PASSWORD", PASSWORD)
        .env_remove("REACH_TOKEN")
        .env_remove("REACH_SERVER")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored: Value =
        serde_json::from_slice(&std::fs::read(dir.join("login.json")).unwrap()).unwrap();
    stored["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_lists_tools_reads_and_needs_confirm_for_destructive_ones() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    let (state, _) = AppState::open(config).await.unwrap();
    let running = reach_server::server::start(state).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = login(dir.path(), &running.url()).await;

    let mut child = Command::new(env!("CARGO_BIN_EXE_reach"))
        .arg("mcp")
        .env("REACH_CONFIG_DIR", dir.path())
        .env_remove("REACH_TOKEN")
        .env_remove("REACH_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut client = Client {
        stdin: child.stdin.take().unwrap(),
        lines: BufReader::new(child.stdout.take().unwrap()).lines(),
        next_id: 0,
        transcript: String::new(),
    };
    let init = client
        .request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
        )
        .await;
    assert_eq!(init["result"]["serverInfo"]["name"], "reach", "{init}");
    client
        .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;

    let tools = client.request("tools/list", json!({})).await;
    let tools = tools["result"]["tools"].as_array().unwrap().clone();
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    assert_eq!(
        tool("reach_machines_list")["annotations"]["readOnlyHint"],
        true
    );
    let end = tool("reach_session_end");
    assert_eq!(end["annotations"]["destructiveHint"], true);
    assert_eq!(end["inputSchema"]["required"], json!(["id", "confirm"]));
    assert!(tool("reach_usb_acl_add")["inputSchema"]["properties"]["rule"].is_object());

    let created = client
        .call("reach_machines_create", json!({"name": "mcp host"}))
        .await;
    assert_ne!(created["isError"], true, "{created}");
    let machine: Value = serde_json::from_str(&text(&created)).unwrap();
    let listed = client.call("reach_machines_list", json!({})).await;
    assert!(text(&listed).contains("mcp host"));

    let key = client
        .call("reach_agent_key_issue", json!({"machine": machine["id"]}))
        .await;
    let key: Value = serde_json::from_str(&text(&key)).unwrap();
    let revoke = json!({"machine": machine["id"], "key": key["id"]});
    let refused = client.call("reach_agent_key_revoke", revoke.clone()).await;
    assert_eq!(refused["isError"], true);
    assert!(text(&refused).contains("\"confirm\": true"), "{refused}");
    let keys = client
        .call("reach_agent_key_list", json!({"machine": machine["id"]}))
        .await;
    assert!(
        text(&keys).contains("\"revoked_at_ms\": null"),
        "refused changed nothing: {keys}"
    );
    let mut confirmed = revoke;
    confirmed["confirm"] = json!(true);
    let done = client.call("reach_agent_key_revoke", confirmed).await;
    assert_ne!(done["isError"], true, "{done}");
    let keys = client
        .call("reach_agent_key_list", json!({"machine": machine["id"]}))
        .await;
    assert!(!text(&keys).contains("\"revoked_at_ms\": null"), "{keys}");

    let bad = client
        .call("reach_machines_create", json!({"nmae": "typo"}))
        .await;
    assert_eq!(bad["isError"], true);
    assert!(text(&bad).contains("unknown field"), "{bad}");

    let resources = client.request("resources/list", json!({})).await;
    let uris: Vec<&str> = resources["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert_eq!(uris, ["reach://machines", "reach://audit/verify"]);
    let audit = client
        .request("resources/read", json!({"uri": "reach://audit/verify"}))
        .await;
    let verdict: Value =
        serde_json::from_str(audit["result"]["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(verdict["ok"], true);

    assert!(
        !client.transcript.contains(&token),
        "the login token is never sent to the model"
    );
    drop(client);
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
    running.shutdown().await.unwrap();
}
