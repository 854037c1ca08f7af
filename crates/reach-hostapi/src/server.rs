//! Starting the API: checks the bind address, loads or creates the token, builds the router
//! (bearer layer, body cap, JSON 404/405, `/openapi.json`) and serves it, with TLS when given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use reach_usb::audit::{AuditError, LocalAudit};
use reach_usb::backend::UsbBackend;
use reach_usb::ops::HostOp;
use reach_usb::tools::UsbPaths;
use serde_json::json;
use tokio::task::JoinHandle;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, HttpError};
use crate::events::EventHub;
use crate::token::{self, Token};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9939";

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 16 * 1024;

/// How to serve the API.
#[derive(Clone)]
pub struct ApiConfig {
    /// Address; must be loopback unless `tls` is given.
    pub listen: SocketAddr,
    /// Certificate and key (PEM) for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The host's USB configuration (ACL, switch, audit log, token file).
    pub paths: UsbPaths,
    /// Devices.
    pub backend: Arc<dyn UsbBackend>,
    /// The audit chain to append to when another part of this process holds it open (the
    /// agent); `None`: the log in `paths` is opened for each change.
    pub audit: Option<Arc<LocalAudit>>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) paths: UsbPaths,
    pub(crate) backend: Arc<dyn UsbBackend>,
    pub(crate) hub: EventHub,
    pub(crate) changes: Arc<tokio::sync::Mutex<()>>,
    audit: Option<Arc<LocalAudit>>,
    token: Token,
    token_path: PathBuf,
}

impl AppState {
    /// The shared audit chain, if this process holds one.
    pub(crate) fn audit(&self) -> Option<Arc<LocalAudit>> {
        self.audit.clone()
    }

    /// Appends `{"action": "api_change", "op": …}` with the op's arguments to the local chain.
    pub(crate) fn audit_change(&self, op: &HostOp) -> Result<(), AuditError> {
        let mut details = serde_json::to_value(op).unwrap_or_default();
        details["action"] = json!("api_change");
        let opened;
        let audit = match &self.audit {
            Some(a) => a.as_ref(),
            None => {
                std::fs::create_dir_all(&self.paths.config_dir).map_err(|source| {
                    AuditError::Io {
                        path: self.paths.config_dir.clone(),
                        source,
                    }
                })?;
                opened = LocalAudit::open(&self.paths.audit(), "local")?;
                &opened
            }
        };
        audit.append("api:usb", details)
    }
}

/// A running API.
pub struct RunningApi {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The token's text when it was created by this start (print it once).
    pub new_token: Option<String>,
    /// The token file.
    pub token_path: PathBuf,
    /// The event hub (other parts of the process may publish to it).
    pub hub: EventHub,
    tls: bool,
    handle: Handle,
    server: JoinHandle<std::io::Result<()>>,
    sources: Vec<JoinHandle<()>>,
}

impl RunningApi {
    /// Runs until the server stops.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn wait(mut self) -> std::io::Result<()> {
        let server = std::mem::replace(&mut self.server, tokio::spawn(async { Ok(()) }));
        server.await.map_err(std::io::Error::other)?
    }

    /// Whether it serves HTTPS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Stops accepting and closes connections.
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}

impl Drop for RunningApi {
    fn drop(&mut self) {
        for task in &self.sources {
            task.abort();
        }
        self.handle.shutdown();
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Reach host USB API", description = "The USB API of one agent machine \
        (`reach usb serve`, `reach agent --usb-api`). Authenticate with \
        `Authorization: Bearer <token>` from the file `usb-api-token` in the config directory."),
    modifiers(&BearerAuth),
    tags((name = "usb", description = "This host's USB devices, switch, ACL and events"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::router())
        .split_for_parts()
        .1
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented.is_some_and(|t| state.token.matches(t.trim())) {
        return next.run(req).await;
    }
    let message = format!(
        "missing or wrong bearer token; send `Authorization: Bearer <token>` with the token in {}",
        state.token_path.display()
    );
    let mut response = HttpError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

fn app(state: AppState) -> Router {
    let (routes, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::router())
        .split_for_parts();
    let doc = Arc::new(doc);
    routes
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(doc.as_ref().clone()) }),
        )
        .fallback(|| async {
            HttpError::new(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            HttpError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint; see /openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Starts the API.
///
/// # Errors
/// [`ApiError`]: a non-loopback address without TLS, the token file, TLS files, binding.
pub async fn start(config: ApiConfig) -> Result<RunningApi, ApiError> {
    if !config.listen.ip().is_loopback() && config.tls.is_none() {
        return Err(ApiError::NonLoopback(config.listen));
    }
    let loaded = token::load_or_create(&config.paths.config_dir)?;
    let hub = EventHub::default();
    let state = AppState {
        paths: config.paths.clone(),
        backend: Arc::clone(&config.backend),
        hub: hub.clone(),
        changes: Arc::default(),
        audit: config.audit.clone(),
        token: loaded.token,
        token_path: loaded.path.clone(),
    };
    let service = app(state).into_make_service();
    let handle = Handle::new();
    let server = match &config.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(ApiError::Tls)?;
            let server = axum_server::bind_rustls(config.listen, tls).handle(handle.clone());
            tokio::spawn(server.serve(service))
        }
        None => {
            let server = axum_server::bind(config.listen).handle(handle.clone());
            tokio::spawn(server.serve(service))
        }
    };
    let Some(addr) = handle.listening().await else {
        let err = match server.await {
            Ok(Err(err)) => err,
            _ => std::io::Error::other("the server stopped before listening"),
        };
        return Err(ApiError::Listen(config.listen, err));
    };
    let sources = crate::sources::spawn(&hub, &config.paths, &config.backend);
    tracing::info!(%addr, tls = config.tls.is_some(), "USB API listening");
    Ok(RunningApi {
        addr,
        new_token: loaded.created,
        token_path: loaded.path,
        hub,
        tls: config.tls.is_some(),
        handle,
        server,
        sources,
    })
}
