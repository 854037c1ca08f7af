//! `reach server` as a process: prints its URL and the first admin password once, serves,
//! stops cleanly on SIGTERM, and does not print a password on the next start.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: std::thread::JoinHandle<String>,
}

impl Server {
    fn start(data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reach"))
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("REACH_ADMIN_PASSWORD")
            .env_remove("REACH_TOKEN_SECRET")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn reach server");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, log }
    }

    /// Lines up to and including the one containing `marker`.
    fn read_until(&self, marker: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("no {marker:?} in {seen:?}"));
            let done = line.contains(marker);
            seen.push(line);
            if done {
                return seen;
            }
        }
    }

    /// Stops the server with SIGTERM; returns the remaining stdout lines and the whole log.
    fn terminate(mut self) -> (Vec<String>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let rest: Vec<String> = self.lines.iter().collect();
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "exit status {exit}");
        (rest, self.log.join().expect("log reader"))
    }
}

fn url_of(lines: &[String]) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains("listening on"))
        .expect("URL line");
    line.rsplit(' ').next().unwrap().to_owned()
}

#[tokio::test]
async fn first_start_prints_the_admin_password_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let mut lines = server.read_until("listening on");
    let url = url_of(&lines);
    lines.extend(server.read_until("password:"));
    let password = lines
        .last()
        .unwrap()
        .trim()
        .trim_start_matches("password:")
        .trim()
        .to_owned();
    assert!(password.len() >= 20, "{lines:?}");

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let login = client
        .post(format!("{url}/api/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let body: serde_json::Value = login.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let me = client
        .get(format!("{url}/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let (rest, log) = server.terminate();
    assert!(rest.iter().any(|l| l.contains("Shutting down")), "{rest:?}");
    // Debug logs show the requests, but never the password or the token.
    assert!(log.contains("/api/me"), "{log}");
    assert!(!log.contains(&password), "password in the log");
    assert!(!log.contains(&token), "token in the log");

    let again = Server::start(&data);
    let lines = again.read_until("listening on");
    let (rest, _) = again.terminate();
    let all: Vec<&String> = lines.iter().chain(rest.iter()).collect();
    assert!(!all.iter().any(|l| l.contains("password")), "{all:?}");
}
