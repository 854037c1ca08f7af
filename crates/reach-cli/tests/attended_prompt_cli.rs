//! The person at the machine, in a real terminal (a pty through `script`): `reach agent
//! --code` shows who asks (with their organisation), what access and whether USB, counts down,
//! and ends cleanly — exit 0 and a friendly sentence — on "no" and on no answer at all, even
//! though nobody pressed Enter.

use std::process::Stdio;
use std::time::Duration;

use reach_client::viewer::ApiClient;
use reach_server::{AppState, Config};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

const PASSWORD: &str = "prompt-admin-password";
const WAIT: Duration = Duration::from_secs(30);

async fn server(consent_timeout: Duration) -> (reach_server::server::Running, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    let (state, _) = AppState::open(config).await.unwrap();
    state.relay.set_consent_timeout(consent_timeout);
    (reach_server::server::start(state).await.unwrap(), data)
}

async fn code(url: &str) -> String {
    let mut api = ApiClient::new(url).unwrap();
    api.login("admin", PASSWORD).await.unwrap();
    let created = api
        .post_json(
            "/api/support-codes",
            &json!({"access": "view_only", "usb": false}),
        )
        .await
        .unwrap();
    created["code"].as_str().unwrap().to_owned()
}

/// `reach agent --code CODE` in a pty; stdin and the pty's output are the test's.
fn agent_in_a_terminal(url: &str, code: &str, config_dir: &std::path::Path) -> Child {
    let command = format!(
        "{} agent --server {url} --code {code}",
        env!("CARGO_BIN_EXE_reach")
    );
    Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("REACH_CONFIG_DIR", config_dir)
        .env_remove("DISPLAY")
        .env_remove("RUST_LOG")
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("script (util-linux) runs")
}

/// Reads the terminal until `needle` shows (returns everything read so far).
async fn until(child: &mut Child, seen: &mut String, needle: &str) {
    let out = child.stdout.as_mut().unwrap();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        while !seen.contains(needle) {
            let n = out.read(&mut buf).await.unwrap();
            assert!(n > 0, "the terminal closed before {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{needle:?} never showed: {seen}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_says_who_and_what_and_no_ends_the_agent_cleanly() {
    let (running, _data) = server(Duration::from_secs(60)).await;
    let code = code(&running.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = agent_in_a_terminal(&running.url(), &code, dir.path());
    let mut seen = String::new();
    until(&mut agent, &mut seen, "anything else denies").await;
    assert!(
        seen.contains("admin (default) asks to see this computer's screen."),
        "{seen}"
    );
    assert!(seen.contains("USB devices: no"), "{seen}");
    assert!(seen.contains("s left to answer"), "{seen}");
    assert!(
        !seen.contains("INFO"),
        "logs stay quiet for the person at the machine: {seen}"
    );
    let mut stdin = agent.stdin.take().unwrap();
    stdin.write_all(b"no\r").await.unwrap();
    until(&mut agent, &mut seen, "the support session is over").await;
    assert!(seen.contains("Denied: nothing is shared."), "{seen}");
    let status = tokio::time::timeout(WAIT, agent.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "saying no is not an error: {status:?}\n{seen}"
    );
    drop(stdin);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_counts_down_and_ends_without_anyone_pressing_enter() {
    let (running, _data) = server(Duration::from_secs(3)).await;
    let code = code(&running.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = agent_in_a_terminal(&running.url(), &code, dir.path());
    let stdin = agent.stdin.take();
    let mut seen = String::new();
    until(&mut agent, &mut seen, "anything else denies").await;
    until(&mut agent, &mut seen, "58 s left to answer").await;
    until(&mut agent, &mut seen, "the support session is over").await;
    let status = tokio::time::timeout(WAIT, agent.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}\n{seen}");
    drop(stdin);
    running.shutdown().await.unwrap();
}
