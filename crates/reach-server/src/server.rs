//! Serving: bind (plain or TLS), run background tasks, shut down gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::task::JoinHandle;

use crate::conn::CappedAcceptor;
use crate::state::{AppState, StartError};
use crate::{audit, auth, instances};

/// How long in-flight requests get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a stopping server waits for its agents and viewers to leave after telling them to.
pub const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Whether TLS is on.
    pub tls: bool,
    handle: Handle,
    serve: JoinHandle<std::io::Result<()>>,
    background: JoinHandle<()>,
    state: AppState,
}

impl Running {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Drains, stops accepting, lets requests finish (up to [`SHUTDOWN_GRACE`]), records the
    /// audit chain heads one last time.
    ///
    /// Draining: `/readyz` turns 503, every agent and viewer socket is closed with
    /// `GOING_AWAY` ("reconnect"), and the server waits up to [`DRAIN_WAIT`] for them to go.
    ///
    /// # Errors
    /// When the server task failed.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.state
            .draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let told = self
            .state
            .relay
            .drain("the server is restarting; reconnect");
        if let Some(bus) = &self.state.bus {
            bus.drain();
        }
        let edges = || self.state.bus.as_ref().is_some_and(|b| b.has_edges());
        let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        while (self.state.relay.has_sockets() || edges()) && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(
            sockets = told,
            "drained: agents and viewers told to reconnect"
        );
        self.handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        let served = self
            .serve
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.background.abort();
        if let Err(err) = instances::retire(&self.state.db, &self.state.instance_id).await {
            tracing::warn!(error = %err, "could not retire this instance");
        }
        if let Err(err) = checkpoint(&self.state).await {
            tracing::warn!(error = %format!("{err:#}"), "could not record audit heads at shutdown");
        }
        served
    }
}

/// Longest a client may take to send a request's headers (also the idle keep-alive limit).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `state.config.listen` (TLS when cert and key are configured) and serves the app.
///
/// Every connection is counted per client IP ([`crate::conn`]), must send its request
/// headers within [`HEADER_READ_TIMEOUT`], and gets `TCP_NODELAY` (relayed input and small
/// frames must not wait for Nagle).
///
/// # Errors
/// When TLS files cannot be loaded or the address cannot be bound.
pub async fn start(state: AppState) -> Result<Running, StartError> {
    let open_files = crate::conn::raise_open_files_limit();
    tracing::debug!(?open_files, "open files limit");
    let config = state.config.clone();
    let app = crate::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let handle = Handle::new();
    let tls = config.tls_cert.is_some();
    let capped = CappedAcceptor::new(state.connections.clone(), config.trusted_proxies.clone());
    let serve = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(StartError::Listen)?;
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls).acceptor(capped);
            let mut server = axum_server::bind(config.listen)
                .acceptor(acceptor)
                .handle(handle.clone());
            limit_headers(server.http_builder());
            tokio::spawn(server.serve(app))
        }
        _ => {
            let mut server = axum_server::bind(config.listen)
                .acceptor(capped)
                .handle(handle.clone());
            limit_headers(server.http_builder());
            tokio::spawn(server.serve(app))
        }
    };
    let Some(addr) = handle.listening().await else {
        let err = match serve.await {
            Ok(Err(err)) => err,
            _ => std::io::Error::other("server stopped before listening"),
        };
        return Err(StartError::Listen(err));
    };
    let (tasks, reaper, keeper) = (state.clone(), state.clone(), state.clone());
    let background = tokio::spawn(async move {
        tokio::join!(
            background_tasks(tasks),
            reap_idle_sessions(reaper),
            keep_instance(keeper)
        );
    });
    tracing::info!(%addr, tls, "listening");
    Ok(Running {
        addr,
        tls,
        handle,
        serve,
        background,
        state,
    })
}

fn limit_headers(builder: &mut hyper_util::server::conn::auto::Builder<TokioExecutor>) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
}

/// Records the audit chain heads in the database and the mirror file in the data directory.
async fn checkpoint(state: &AppState) -> anyhow::Result<()> {
    let mirror = state.config.data_dir.join(audit::HEAD_MIRROR_FILE);
    audit::checkpoint(&state.db, &state.audit_keys, &mirror).await
}

/// Ends sessions nobody watched for `session_idle_secs`, checking four times per period.
async fn reap_idle_sessions(state: AppState) {
    if state.config.session_idle_secs == 0 {
        return;
    }
    let idle = Duration::from_secs(state.config.session_idle_secs);
    let mut ticker = tokio::time::interval((idle / 4).max(Duration::from_millis(250)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        crate::relay::lifecycle::end_idle(&state, idle).await;
    }
}

/// Records every [`instances::HEARTBEAT`] that this instance is alive, and ends the sessions
/// of instances sharing the database that went silent.
async fn keep_instance(state: AppState) {
    let mut ticker = tokio::time::interval(instances::HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(err) = instances::beat(&state.db, &state.instance_id).await {
            tracing::warn!(error = %err, "could not record that this instance is alive");
            continue;
        }
        if let Some(bus) = &state.bus {
            match crate::cluster::live_instances(&state).await {
                Ok(live) => bus.set_live(live),
                Err(err) => tracing::warn!(error = %err, "could not read the live instances"),
            }
        }
        match instances::end_orphaned_sessions(&state.db, &state.instance_id, "server_lost").await {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "ended sessions of a server instance that is gone"),
            Err(err) => tracing::warn!(error = %err, "could not sweep gone instances"),
        }
    }
}

/// Periodic work: record audit chain heads, purge long-expired token rows.
async fn background_tasks(state: AppState) {
    let period = Duration::from_secs(state.config.audit_head_interval_secs);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(err) = checkpoint(&state).await {
            tracing::warn!(error = %format!("{err:#}"), "could not record audit heads");
        }
        if let Err(err) = auth::tokens::purge_expired(&state.db).await {
            tracing::warn!(error = %err, "could not purge expired tokens");
        }
    }
}
