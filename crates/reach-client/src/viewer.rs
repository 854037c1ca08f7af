//! Viewer client: log in ([`ApiClient`]), mint a viewer token, join a session
//! ([`ViewerConnection`]) and exchange envelopes; [`LiveViewer`] serves the socket from a task
//! and carries the session's USB channel for `reach_usb`'s `UsbClient`.

mod live;

pub use live::{EVENT_QUEUE, KEEPALIVE, LiveViewer, SILENCE, ViewerSender, server_released};

use crate::ClientError;
use crate::ws::{self, Incoming, Ws};
use reach_proto::codec;
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::policy::ViewerAccess;
use reach_proto::v1::{self, envelope::Body};

/// A viewer joined to a session.
#[derive(Debug)]
pub struct ViewerConnection {
    socket: Ws,
    /// Session joined.
    pub session_id: String,
    /// Access the server granted.
    pub access: ViewerAccess,
    /// This viewer's id in the session.
    pub viewer_id: u64,
    /// USB devices may be used in this session.
    pub usb: bool,
    /// Why not, when `usb` is false (a sentence from the server).
    pub usb_unavailable: String,
}

impl ViewerConnection {
    /// Connects to `server` and joins with `token` (sent as the first message, never
    /// in the URL).
    ///
    /// # Errors
    /// [`ClientError::Rejected`] when the server refuses the token.
    pub async fn join(server: &str, token: &str) -> Result<Self, ClientError> {
        let url = ws::socket_url(server, "/ws/viewer")?;
        let mut socket = ws::connect(&url, AGENT_MAX_MESSAGE).await?;
        let auth = Body::ViewerAuth(v1::ViewerAuth {
            token: token.to_owned(),
        });
        ws::send(&mut socket, &codec::envelope("", auth)).await?;
        let ok = ws::recv_auth_ok(&mut socket).await?;
        Ok(Self {
            access: match ok.access() {
                v1::AccessMode::Control => ViewerAccess::Control,
                _ => ViewerAccess::ViewOnly,
            },
            socket,
            session_id: ok.session_id,
            viewer_id: ok.viewer_id,
            usb: ok.usb,
            usb_unavailable: ok.usb_unavailable,
        })
    }

    /// Sends a message body to the session.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the socket is broken.
    pub async fn send(&mut self, body: Body) -> Result<(), ClientError> {
        ws::send(&mut self.socket, &codec::envelope(&self.session_id, body)).await
    }

    /// Sends raw bytes as one binary message (for tests of malformed input).
    ///
    /// # Errors
    /// [`ClientError::Connect`] when the socket is broken.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                bytes.into(),
            ))
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))
    }

    /// Receives the next message or the close.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] for a message that does not decode.
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        ws::recv(&mut self.socket, AGENT_MAX_MESSAGE).await
    }

    /// Leaves the session.
    pub async fn leave(mut self) {
        ws::close_with(&mut self.socket, reach_proto::close::NORMAL, "viewer left").await;
    }
}

/// The REST side of a viewer: log in, mint a viewer token, join.
#[derive(Debug, Clone)]
pub struct ApiClient {
    server: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `server` (`https://…` or `http://…`).
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] for other schemes.
    pub fn new(server: &str) -> Result<Self, ClientError> {
        let server = server.trim_end_matches('/').to_owned();
        if !(server.starts_with("https://") || server.starts_with("http://")) {
            return Err(ClientError::BadUrl(server));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        Ok(Self {
            server,
            http,
            token: None,
        })
    }

    /// Uses an existing login token.
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    /// The login token, once logged in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `POST /api/auth/login`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with the server's answer when refused.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<(), ClientError> {
        let body = serde_json::json!({"username": username, "password": password});
        let value = self.post("login", "/api/auth/login", &body).await?;
        let token = value["token"]
            .as_str()
            .ok_or_else(|| ClientError::Protocol("login answer has no token".into()))?;
        self.token = Some(token.to_owned());
        Ok(())
    }

    /// `POST /api/sessions/{id}/viewer-token`: a 5-minute token for one session.
    ///
    /// # Errors
    /// [`ClientError::Api`] with the server's answer when refused.
    pub async fn viewer_token(&self, session_id: &str) -> Result<String, ClientError> {
        let path = format!("/api/sessions/{session_id}/viewer-token");
        let value = self
            .post("viewer-token", &path, &serde_json::json!({}))
            .await?;
        value["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Protocol("viewer-token answer has no token".into()))
    }

    /// Mints a viewer token and joins the session with it.
    ///
    /// # Errors
    /// As [`Self::viewer_token`] and [`ViewerConnection::join`].
    pub async fn join(&self, session_id: &str) -> Result<ViewerConnection, ClientError> {
        let token = self.viewer_token(session_id).await?;
        ViewerConnection::join(&self.server, &token).await
    }

    /// `GET` any API route with the login token (scripts, benchmarks).
    ///
    /// # Errors
    /// [`ClientError::Api`] with the server's answer when refused.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let request = self.http.get(format!("{}{path}", self.server));
        self.call("get", request).await
    }

    /// `POST` a JSON body to any API route with the login token (scripts, `reach demo`).
    ///
    /// # Errors
    /// [`ClientError::Api`] with the server's answer when refused.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        self.post("api", path, body).await
    }

    /// Any API call with the login token: `method` on `path` (with its query) and an optional
    /// JSON body. An empty answer (204) is `null`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with the server's answer when refused.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.server));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.call("api", request).await
    }

    async fn post(
        &self,
        call: &'static str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let request = self.http.post(format!("{}{path}", self.server)).json(body);
        self.call(call, request).await
    }

    /// Sends with the login token; a non-2xx answer becomes [`ClientError::Api`].
    async fn call(
        &self,
        call: &'static str,
        mut request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, ClientError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ClientError::Api {
                call,
                status,
                body: text,
            });
        }
        if text.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Protocol(e.to_string()))
    }
}
