//! Test helpers: a real server on an ephemeral loopback port with a fresh SQLite database.
#![allow(dead_code, unreachable_pub)]

use reach_server::server::Running;
use reach_server::{AppState, Config};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};

/// The first admin's password in tests (set through the config, like `REACH_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running server with its state, an HTTP client and an admin token.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub admin_token: String,
    /// The database URL in use (`None`: the SQLite file in the data directory).
    pub database_url: Option<String>,
    running: Option<Running>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with the test configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` changed the test configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests(dir.path());
        config.database_url = postgres_database().await;
        config.admin_password = Some(ADMIN_PASSWORD.to_owned().into());
        adjust(&mut config);
        Self::start_in(dir, config).await
    }

    async fn start_in(dir: tempfile::TempDir, config: Config) -> Self {
        let database_url = config.database_url.clone();
        let (state, _) = AppState::open(config).await.expect("open state");
        let running = reach_server::server::start(state.clone())
            .await
            .expect("start");
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut server = Self {
            url: running.url(),
            state,
            client,
            admin_token: String::new(),
            database_url,
            running: Some(running),
            dir,
        };
        server.admin_token = server.login_token(None, "admin", ADMIN_PASSWORD).await;
        server
    }

    /// The database URL another instance uses to share this one's database.
    pub fn shared_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir().join("reach.db").display()))
    }

    /// `GET /api/audit/verify` as the admin (asserting 200): the verdict's JSON.
    pub async fn audit_verdict(&self) -> Value {
        let (status, body) = self
            .call(
                Method::GET,
                "/api/audit/verify",
                Some(&self.admin_token),
                None,
            )
            .await;
        assert_eq!(status, 200);
        body
    }

    /// Records the audit chain heads now (database and data-dir mirror), as the server's
    /// periodic checkpoint does.
    pub async fn audit_checkpoint(&self) {
        let mirror = self.data_dir().join(reach_server::audit::HEAD_MIRROR_FILE);
        reach_server::audit::checkpoint(&self.state.db, &self.state.audit_keys, &mirror)
            .await
            .unwrap();
    }

    /// The data directory (to restart on it).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().to_owned()
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("shutdown");
        }
        self.dir
    }

    /// A request to `path` with an optional bearer token.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.url));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, tenant: Option<&str>, username: &str, password: &str) -> Response {
        let mut body = json!({"username": username, "password": password});
        if let Some(tenant) = tenant {
            body["tenant"] = json!(tenant);
        }
        self.request(Method::POST, "/api/auth/login", None)
            .json(&body)
            .send()
            .await
            .expect("login request")
    }

    /// Logs in and returns the token; panics unless 200.
    pub async fn login_token(
        &self,
        tenant: Option<&str>,
        username: &str,
        password: &str,
    ) -> String {
        let response = self.login(tenant, username, password).await;
        assert_eq!(response.status(), 200, "login of {username}");
        let body: Value = response.json().await.expect("login body");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Sends a JSON request and returns status and JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut builder = self.request(method, path, token);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        let response = builder.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Creates a user with the admin token; returns its JSON.
    pub async fn create_user(&self, username: &str, password: &str, role: &str) -> Value {
        let body = json!({"username": username, "password": password, "role": role});
        let (status, user) = self
            .call(
                Method::POST,
                "/api/users",
                Some(&self.admin_token),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "create {username}: {user}");
        user
    }

    /// Runs SQL directly against the database (to tamper with it).
    pub async fn sql(&self, statement: &str) -> u64 {
        sqlx::query(statement)
            .execute(&self.state.db)
            .await
            .expect("direct SQL")
            .rows_affected()
    }
}

/// With `REACH_TEST_POSTGRES=postgres://user@host:port` set, every test server gets a fresh
/// PostgreSQL database on that cluster instead of a SQLite file (to check SQL portability).
async fn postgres_database() -> Option<String> {
    let base = std::env::var("REACH_TEST_POSTGRES").ok()?;
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&format!("{base}/postgres"))
        .await
        .expect("postgres");
    let name = format!(
        "reach_test_{}",
        reach_server::db::new_id("db").trim_start_matches("db_")
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    Some(format!("{base}/{name}"))
}

/// The token secret every instance of a multi-instance test shares.
pub const SHARED_SECRET: &str = "one token secret shared by every instance of this test";

/// `n` instances on one database (the first one's: a SQLite file, or PostgreSQL in the CI
/// pass), with one token secret, each with its own data directory; on the NATS server at
/// `nats_url` when given.
pub async fn instances(n: usize, nats_url: Option<&str>) -> Vec<TestServer> {
    let bus = nats_url.map(str::to_owned);
    let first_bus = bus.clone();
    let first = TestServer::start_with(move |c| {
        c.token_secret = Some(SHARED_SECRET.to_owned().into());
        c.nats_url = first_bus;
    })
    .await;
    let db = first.shared_database_url();
    let mut all = vec![first];
    for _ in 1..n {
        let (db, bus) = (db.clone(), bus.clone());
        all.push(
            TestServer::start_with(move |c| {
                c.database_url = Some(db);
                c.token_secret = Some(SHARED_SECRET.to_owned().into());
                c.nats_url = bus;
            })
            .await,
        );
    }
    all
}

/// An HTTP client whose connections come from the loopback address `ip` (e.g. `127.0.0.7`),
/// so per-IP limits see a client of its own.
pub fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Asserts a JSON error response with the given status and code.
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "status of {}", got.1);
    assert_eq!(got.1["error"], code, "error code of {}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {}",
        got.1
    );
}
