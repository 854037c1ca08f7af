//! Two `reach server` processes on one database and a real `nats-server`, behind one address
//! (a TCP front that sends each connection to the first instance that accepts it, as a load
//! balancer with health checks would). Instance A is killed with SIGKILL: its agent is back
//! online through B within its backoff, B's live session is untouched, A's sessions end as
//! `server_lost`, and restarting A ends none of B's sessions.

#[path = "../../reach-server/tests/common/nats.rs"]
mod nats;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const PASSWORD: &str = "cluster-admin-password";
const SECRET: &str = "the token secret every instance of this test shares";
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `reach server` on `port`; on `database`, else the SQLite file in its data directory.
fn server(port: u16, data: &Path, database: Option<&str>, bus: &str) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reach"));
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .args(["--nats-url", bus]);
    if let Some(database) = database {
        cmd.args(["--database-url", database]);
    }
    cmd.env("REACH_TOKEN_SECRET", SECRET)
        .env("REACH_ADMIN_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("reach server runs")
}

async fn ready(client: &reqwest::Client, port: u16) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    tokio::time::timeout(WAIT, async {
        loop {
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the instance gets ready");
}

/// A TCP front on `port`: each connection goes to the first backend that accepts it.
fn front(port: u16, backends: Vec<u16>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("front binds");
    listener.set_nonblocking(true).expect("nonblocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("front listens");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let backends = backends.clone();
            tokio::spawn(async move {
                for port in backends {
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(client: &reqwest::Client, port: u16) -> Self {
        let base = format!("http://127.0.0.1:{port}");
        let v: Value = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = v["token"].as_str().expect("login token").to_owned();
        Self {
            client: client.clone(),
            base,
            token,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A machine and its key.
    async fn machine(&self, name: &str) -> (String, String) {
        let (status, m) = self
            .call(Method::POST, "/api/machines", Some(json!({"name": name})))
            .await;
        assert_eq!(status, 201, "{m}");
        let id = m["id"].as_str().unwrap().to_owned();
        let (status, k) = self
            .call(Method::POST, &format!("/api/machines/{id}/keys"), None)
            .await;
        assert_eq!(status, 201, "{k}");
        (id, k["key"].as_str().unwrap().to_owned())
    }

    async fn until(&self, what: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Duration {
        let start = Instant::now();
        tokio::time::timeout(WAIT, async {
            loop {
                let (status, v) = self.call(Method::GET, path, None).await;
                if status == 200 && ok(&v) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}"));
        start.elapsed()
    }

    async fn session(&self, id: &str) -> Value {
        let (status, v) = self
            .call(Method::GET, &format!("/api/sessions/{id}"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

fn agent(server: &str, key: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_reach"))
        .args(["agent", "--server", server])
        .env("REACH_AGENT_KEY", key)
        .env("REACH_DISPLAY", "")
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("reach agent runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_moves_its_agents_and_leaves_the_other_instances_sessions_alone() {
    let bus = nats::Nats::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let database = format!("sqlite://{}", dir_a.path().join("reach.db").display());
    let (port_a, port_b, port_front) = (free_port(), free_port(), free_port());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut a = server(port_a, dir_a.path(), None, &bus.url);
    ready(&client, port_a).await;
    let _b = server(port_b, dir_b.path(), Some(&database), &bus.url);
    ready(&client, port_b).await;
    front(port_front, vec![port_a, port_b]);
    let (api_a, api_b) = (
        Api::login(&client, port_a).await,
        Api::login(&client, port_b).await,
    );

    // One agent through the front (it lands on A), one straight on B with a live session.
    let (moving, moving_key) = api_a.machine("moving-pc").await;
    let _moving_agent = agent(&format!("http://127.0.0.1:{port_front}"), &moving_key);
    let path = format!("/api/machines/{moving}");
    api_b
        .until("the agent comes online", &path, |m| m["online"] == true)
        .await;
    let (staying, staying_key) = api_b.machine("staying-pc").await;
    let _staying_agent = agent(&format!("http://127.0.0.1:{port_b}"), &staying_key);
    api_b
        .until(
            "the second agent comes online",
            &format!("/api/machines/{staying}"),
            |m| m["online"] == true,
        )
        .await;
    let body = json!({"machine_id": moving});
    let (status, on_a) = api_b.call(Method::POST, "/api/sessions", Some(body)).await;
    assert_eq!(status, 201, "{on_a}");
    let on_a = on_a["id"].as_str().unwrap().to_owned();
    let body = json!({"machine_id": staying});
    let (status, on_b) = api_b.call(Method::POST, "/api/sessions", Some(body)).await;
    assert_eq!(status, 201, "{on_b}");
    let on_b = on_b["id"].as_str().unwrap().to_owned();

    // A viewer on B watching A's session: relayed through the bus to A.
    let mut viewer = reach_client::viewer::ApiClient::new(&api_b.base)
        .unwrap()
        .with_token(api_b.token.clone())
        .join(&on_a)
        .await
        .expect("the viewer joins through B");

    a.start_kill().expect("SIGKILL");
    let _ = a.wait().await;
    // Back through B when B holds it: a session opened there now is held by B itself.
    let start = Instant::now();
    tokio::time::timeout(WAIT, async {
        loop {
            let body = json!({"machine_id": moving, "access": "view_only"});
            let (status, _) = api_b.call(Method::POST, "/api/sessions", Some(body)).await;
            if status == 201 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the moved agent is back online through B");
    eprintln!("agent back through B after {:?}", start.elapsed());
    // The viewer is told to rejoin once B sees A gone.
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match viewer.recv().await {
                Ok(reach_client::ws::Incoming::Closed { code, reason }) => return (code, reason),
                Ok(_) => {}
                Err(e) => panic!("viewer error: {e}"),
            }
        }
    })
    .await
    .expect("the viewer relayed for A is closed");
    assert_eq!(closed.0, 1001, "{closed:?}");
    eprintln!(
        "viewer closed {:?} after the kill: {closed:?}",
        start.elapsed()
    );
    let lost = api_b
        .until(
            "A's session ends as server_lost",
            &format!("/api/sessions/{on_a}"),
            |s| s["end_reason"] == "server_lost",
        )
        .await;
    eprintln!("A's session ended {lost:?} after the agent came back");
    assert!(
        api_b.session(&on_b).await["ended_at_ms"].is_null(),
        "B's live session is untouched"
    );

    // A comes back: it ends none of B's sessions.
    let _a = server(port_a, dir_a.path(), None, &bus.url);
    ready(&client, port_a).await;
    let api_a = Api::login(&client, port_a).await;
    assert!(api_a.session(&on_b).await["ended_at_ms"].is_null());
    assert!(api_b.session(&on_b).await["ended_at_ms"].is_null());
}
