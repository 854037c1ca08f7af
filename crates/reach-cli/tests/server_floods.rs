//! `reach server` as a process under floods: slow half-requests against a server limited to
//! 256 descriptors, large unauthenticated first messages, and viewers that never read. RSS is
//! read from `/proc/<pid>/status` of the server process. Only 127.0.0.0/8 is used.

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reach_agent::consent::DenyAll;
use reach_agent::viewer::ApiClient;
use reach_agent::ws::{self, Incoming};
use reach_agent::{AgentConfig, AgentEvent, Credential};
use reach_proto::agent_key::AgentKey;
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, envelope::Body};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

const PASSWORD: &str = "flood-test-admin-password";
const WAIT: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;

/// A `reach server` child limited to 256 open files (`prlimit`, which execs the server, so
/// the child's pid is the server's).
struct Server {
    child: Child,
    url: String,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("reach.toml");
        // Cheap password hashing: the test measures the network path, not Argon2.
        std::fs::write(
            &config,
            "[password_hash_cost]\nmemory_kib = 8\niterations = 1\nparallelism = 1\n",
        )
        .unwrap();
        let mut child = Command::new("prlimit")
            .arg("--nofile=256:256")
            .arg(env!("CARGO_BIN_EXE_reach"))
            .args(["server", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("REACH_ADMIN_PASSWORD", PASSWORD)
            .env_remove("REACH_TOKEN_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prlimit reach server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let url = loop {
            let line = rx.recv_timeout(WAIT).expect("server prints its URL");
            if line.contains("listening on") {
                break line.rsplit(' ').next().unwrap().to_owned();
            }
        };
        let addr = url.trim_start_matches("http://").parse().unwrap();
        Self {
            child,
            url,
            addr,
            _dir: dir,
        }
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn client_from(&self, ip: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(ip.parse::<IpAddr>().unwrap())
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap()
    }

    async fn admin_token(&self) -> String {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let body: Value = client
            .post(format!("{}/api/auth/login", self.url))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect_from(ip: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip.parse().unwrap(), 0))?;
    socket.connect(to).await
}

/// Sends a request's head one byte per second (at most 20 s); returns when the server
/// closed the connection or the head was sent.
async fn slow_half_request(mut stream: TcpStream, started: tokio::sync::mpsc::Sender<()>) {
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaa\r\n";
    let first = stream.write_all(&head[..1]).await;
    let _ = started.send(()).await;
    if first.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for byte in &head[1..] {
        tick.tick().await;
        if stream.write_all(&[*byte]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_half_requests_cannot_starve_healthz_or_login_on_256_descriptors() {
    let server = Server::start();
    let (started, mut started_rx) = tokio::sync::mpsc::channel(300);
    let mut slow = JoinSet::new();
    for _ in 0..300 {
        let started = started.clone();
        let addr = server.addr;
        slow.spawn(async move {
            match connect_from("127.0.0.1", addr).await {
                Ok(stream) => slow_half_request(stream, started).await,
                Err(_) => {
                    let _ = started.send(()).await;
                }
            }
        });
    }
    for _ in 0..300 {
        tokio::time::timeout(WAIT, started_rx.recv())
            .await
            .expect("slow clients connect");
    }
    // A legitimate client elsewhere is answered within 1 s (the client's timeout).
    let legit = server.client_from("127.0.0.2");
    let health = legit
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("healthz within 1 s");
    assert_eq!(health.status(), 200);
    let login = legit
        .post(format!("{}/api/auth/login", server.url))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .expect("login within 1 s");
    assert_eq!(login.status(), 200);

    // A slow client is cut off by the header-read timeout (10 s), not kept forever.
    let mut lone = connect_from("127.0.0.3", server.addr).await.unwrap();
    lone.write_all(b"G").await.unwrap();
    let mut buf = [0u8; 256];
    let ended = tokio::time::timeout(Duration::from_secs(15), lone.read(&mut buf)).await;
    assert!(ended.is_ok(), "the half request was still open after 15 s");
    slow.abort_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_unauthenticated_first_messages_do_not_grow_the_server() {
    let server = Server::start();
    let url = ws::socket_url(&server.url, "/ws/agent").unwrap();
    let before = server.status_kib("VmRSS");
    let payload = Bytes::from(vec![0x0a_u8; AGENT_MAX_MESSAGE - 1024]);
    let mut attempts = JoinSet::new();
    for i in 0..64 {
        let (url, payload, addr) = (url.clone(), payload.clone(), server.addr);
        // Four addresses, so the per-IP cap on unauthenticated sockets (16) is not what
        // stops them: the pre-authentication read budget is.
        let ip = format!("127.0.0.{}", 1 + i % 4);
        attempts.spawn(async move {
            let Ok(stream) = connect_from(&ip, addr).await else {
                return;
            };
            let Ok(mut socket) = ws::connect_over(&url, stream, AGENT_MAX_MESSAGE).await else {
                return;
            };
            let _ = ws::send_encoded(&mut socket, payload).await;
            let _ = tokio::time::timeout(WAIT, ws::recv(&mut socket, AGENT_MAX_MESSAGE)).await;
        });
    }
    tokio::time::timeout(Duration::from_secs(60), attempts.join_all())
        .await
        .expect("every attempt ends");
    let peak = server.status_kib("VmHWM");
    let growth = peak.saturating_sub(before);
    eprintln!("64 unauthenticated 4 MiB attempts: peak RSS growth {growth} KiB");
    assert!(growth < 32 * 1024, "peak RSS grew by {} MiB", growth / 1024);
}

/// A managed machine with a connected agent; returns (agent, session id).
async fn agent_with_session(server: &Server, token: &str) -> (reach_agent::AgentHandle, String) {
    let api = ApiClient::new(&server.url)
        .unwrap()
        .with_token(token.to_owned());
    let machine = api
        .post_json("/api/machines", &json!({"name": "slow viewers"}))
        .await
        .unwrap();
    let id = machine["id"].as_str().unwrap().to_owned();
    let key = api
        .post_json(&format!("/api/machines/{id}/keys"), &json!({}))
        .await
        .unwrap();
    let key = AgentKey::parse(key["key"].as_str().unwrap()).unwrap();
    let config = AgentConfig::new(server.url.clone(), Credential::Key(key), Arc::new(DenyAll));
    let mut agent = reach_agent::spawn(config);
    loop {
        let event = tokio::time::timeout(WAIT, agent.events.recv())
            .await
            .unwrap();
        if let Some(AgentEvent::Connected { .. }) = event {
            break;
        }
    }
    let session = api
        .post_json("/api/sessions", &json!({"machine_id": id}))
        .await
        .unwrap();
    (agent, session["id"].as_str().unwrap().to_owned())
}

fn video(session_id: &str, sequence: u64, len: usize, keyframe: bool) -> v1::Envelope {
    reach_proto::codec::envelope(
        session_id,
        Body::VideoFrame(v1::VideoFrame {
            bitstream: Bytes::from(vec![7u8; len]),
            sequence,
            keyframe,
            ..Default::default()
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_that_never_read_hold_a_bounded_amount_of_video() {
    let server = Server::start();
    let token = server.admin_token().await;
    let (agent, session_id) = agent_with_session(&server, &token).await;
    let api = ApiClient::new(&server.url).unwrap().with_token(token);
    let mut stalled = Vec::new();
    for _ in 0..8 {
        stalled.push(api.join(&session_id).await.unwrap());
    }
    let mut reader = api.join(&session_id).await.unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(0u64);
    let reading = tokio::spawn(async move {
        while let Ok(Ok(Incoming::Envelope(env))) = tokio::time::timeout(WAIT, reader.recv()).await
        {
            if let Some(Body::VideoFrame(f)) = env.body {
                let _ = seen_tx.send(f.sequence);
            }
        }
    });
    let before = server.status_kib("VmRSS");
    // 40 frames of 3 MiB (120 MiB) to 9 viewers, 8 of which never read.
    for sequence in 1..=40 {
        let frame = video(&session_id, sequence, 3 * MIB as usize, sequence % 10 == 1);
        agent.send(frame).await.unwrap();
    }
    // Small keyframes until the reading viewer saw one: everything before was handled.
    let mut through = false;
    for marker in 1000..1100 {
        agent
            .send(video(&session_id, marker, 1024, true))
            .await
            .unwrap();
        let waited = tokio::time::timeout(
            Duration::from_millis(200),
            seen_rx.wait_for(|seq| *seq >= 1000),
        )
        .await;
        if waited.is_ok() {
            through = true;
            break;
        }
    }
    assert!(through, "the reading viewer never caught up");
    let growth = server.status_kib("VmHWM").saturating_sub(before);
    eprintln!("8 stalled viewers, 40 x 3 MiB frames: peak RSS growth {growth} KiB");
    assert!(growth < 64 * 1024, "peak RSS grew by {} MiB", growth / 1024);
    reading.abort();
    drop(stalled);
}
