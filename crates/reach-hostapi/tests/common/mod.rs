//! A host API on a real socket over the fake USB backend in a temp config dir, a reqwest
//! client, and a small Server-Sent Events reader.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reach_hostapi::{ApiConfig, RunningApi};
use reach_usb::audit::LocalAudit;
use reach_usb::backend::fake::{FakeBackend, FakeDevice, FakeHandle};
use reach_usb::tools::UsbPaths;
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Host {
    pub dir: tempfile::TempDir,
    pub paths: UsbPaths,
    pub api: RunningApi,
    pub token: String,
    pub fake: FakeBackend,
    pub device: FakeHandle,
    pub http: reqwest::Client,
    /// The chain shared with the API (as an agent shares its own), if any.
    pub audit: Option<Arc<LocalAudit>>,
}

impl Host {
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// `shared_audit`: the API appends to a chain this process holds open (like an agent).
    pub async fn start_with(shared_audit: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let paths = UsbPaths {
            config_dir: dir.path().to_path_buf(),
        };
        let audit =
            shared_audit.then(|| Arc::new(LocalAudit::open(&paths.audit(), "agent").unwrap()));
        let fake = FakeBackend::new();
        let device = fake.add(FakeDevice::loopback());
        let api = reach_hostapi::start(ApiConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            paths: paths.clone(),
            backend: Arc::new(fake.clone()),
            audit: audit.clone(),
        })
        .await
        .unwrap();
        let token = api.new_token.clone().expect("a new token on first start");
        Self {
            dir,
            paths,
            api,
            token,
            fake,
            device,
            http: reqwest::Client::new(),
            audit,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api.addr)
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// Sends and returns status and JSON body.
    pub async fn call(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = tokio::time::timeout(WAIT, req.send())
            .await
            .unwrap()
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.expect("every answer is JSON");
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        self.call(self.req(method, path).json(&body)).await
    }

    /// Raw body with `Content-Type: application/json`.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        self.call(
            self.req(method, path)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    /// The audit log's records.
    pub fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.paths.audit())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn events(&self, last_id: Option<u64>) -> Events {
        let mut req = self.req(reqwest::Method::GET, "/usb/events");
        if let Some(id) = last_id {
            req = req.header("last-event-id", id.to_string());
        }
        let resp = tokio::time::timeout(WAIT, req.send())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        Events {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }
}

/// One SSE event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: u64,
    pub kind: String,
    pub data: Value,
}

pub struct Events {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Events {
    /// The next event (comments skipped), within [`WAIT`].
    pub async fn next(&mut self) -> Sse {
        tokio::time::timeout(WAIT, self.next_inner())
            .await
            .expect("an event within the timeout")
    }

    async fn next_inner(&mut self) -> Sse {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if let Some(id) = id {
                    return Sse {
                        id,
                        kind,
                        data: serde_json::from_str(&data).unwrap(),
                    };
                }
            }
            let chunk = self
                .stream
                .next()
                .await
                .expect("the stream stays open")
                .unwrap();
            self.buf
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }

    /// Skips events until one named `kind`.
    pub async fn until(&mut self, kind: &str) -> Sse {
        loop {
            let e = self.next().await;
            if e.kind == kind {
                return e;
            }
        }
    }
}
