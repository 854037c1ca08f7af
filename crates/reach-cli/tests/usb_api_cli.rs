//! `reach usb serve` with the host USB REST API as a real process: the printed token works,
//! the API and the CLI share one state, non-loopback binds are refused.

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

fn reach(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reach"));
    cmd.env("REACH_CONFIG_DIR", dir)
        .env("REACH_USB_BACKEND", "fake")
        .env_remove("REACH_USB_PASSTHROUGH");
    cmd
}

/// A running `reach usb serve`; killed on drop.
struct Served {
    child: Child,
    _lines: Lines<BufReader<ChildStdout>>,
    api: String,
    token: Option<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    lines.next().expect("a line").expect("utf-8")
}

/// Starts serve and reads its lines: the USB listener, the API, and (first start only) the
/// token.
fn serve(dir: &Path, first_start: bool) -> Served {
    let mut child = reach(dir)
        .args([
            "usb",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = next_line(&mut lines);
    assert!(first.starts_with("serving USB on tcp://"), "{first}");
    let api_line = next_line(&mut lines);
    assert!(api_line.contains("usb-api-token"), "{api_line}");
    let api = api_line
        .strip_prefix("serving the USB API on ")
        .and_then(|rest| rest.split(' ').next())
        .expect(&api_line)
        .to_owned();
    let token = first_start.then(|| {
        let line = next_line(&mut lines);
        line.strip_prefix("USB API token (shown once): ")
            .expect(&line)
            .to_owned()
    });
    Served {
        child,
        _lines: lines,
        api,
        token,
    }
}

async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), req.send())
        .await
        .expect("an answer in time")
        .expect("HTTP works");
    (resp.status().as_u16(), resp.json().await.expect("JSON"))
}

#[tokio::test]
async fn serve_prints_a_token_once_and_the_api_with_it_drives_the_same_host_as_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), true);
    let token = served.token.clone().unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", served.api);
    let (status, body) = call(http.get(url("/usb/passthrough"))).await;
    assert_eq!(status, 401, "{body}");
    let enable = http
        .post(url("/usb/passthrough"))
        .bearer_auth(&token)
        .json(&json!({"enabled": true}));
    assert_eq!(call(enable).await.0, 200);
    let rule = http
        .post(url("/usb/acl/rules"))
        .bearer_auth(&token)
        .json(&json!({"rule": {"vendor_id": "0525", "allow": true}}));
    assert_eq!(call(rule).await.0, 200);
    let status = reach(dir.path())
        .args(["usb", "status", "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["enabled"], true, "the CLI sees the API's switch");
    let (code, devices) = call(http.get(url("/usb/devices")).bearer_auth(&token)).await;
    assert_eq!(code, 200);
    assert_eq!(devices["devices"][0]["verdict"], "allow", "{devices}");
    let verify = reach(dir.path())
        .args(["usb", "audit", "verify", "--json"])
        .output()
        .unwrap();
    let verify: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(
        (verify["ok"].clone(), verify["records"].clone()),
        (json!(true), json!(2))
    );
    drop(served);

    let again = serve(dir.path(), false);
    let (code, _) = call(
        http.get(format!("{}/usb/acl", again.api))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(code, 200, "the stored token still works");
}

#[test]
fn serve_refuses_a_non_loopback_api_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let out = reach(dir.path())
        .args(["usb", "serve", "--no-listen", "--api", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--tls-cert"),
        "{err}"
    );
}

#[tokio::test]
async fn the_agent_serves_the_api_with_usb_api_and_keeps_one_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = format!("cak_{}", "ab".repeat(32));
    // No server listens on port 9: the agent keeps retrying while the API serves.
    let mut child = reach(dir.path())
        .args([
            "agent",
            "--server",
            "http://127.0.0.1:9",
            "--usb-backend",
            "fake",
        ])
        .args(["--usb-api", "127.0.0.1:0"])
        .env("REACH_AGENT_KEY", &key)
        .env_remove("DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the agent starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let api_line = next_line(&mut lines);
    let api = api_line
        .strip_prefix("serving the USB API on ")
        .and_then(|rest| rest.split(' ').next())
        .expect(&api_line)
        .to_owned();
    let token_line = next_line(&mut lines);
    let token = token_line
        .strip_prefix("USB API token (shown once): ")
        .expect(&token_line)
        .to_owned();
    let served = Served {
        child,
        _lines: lines,
        api,
        token: Some(token.clone()),
    };
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", served.api);
    let rule = http
        .post(url("/usb/acl/rules"))
        .bearer_auth(&token)
        .json(&json!({"rule": {"vendor_id": "0525", "allow": true}}));
    assert_eq!(call(rule).await.0, 200);
    let (code, devices) = call(http.get(url("/usb/devices")).bearer_auth(&token)).await;
    assert_eq!(code, 200);
    assert_eq!(devices["backend"], "fake", "the agent's backend: {devices}");
    let (_, verify) = call(http.get(url("/usb/audit/verify")).bearer_auth(&token)).await;
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["records"], 1, "{verify}");
}
