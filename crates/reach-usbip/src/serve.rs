//! `reach usb serve`: this machine's devices over TCP to `reach usb attach --via tcp://…`, with
//! the same passthrough switch, ACL and local audit log as every other way in.
//!
//! The TCP transport has no authentication of its own, so only loopback addresses are accepted
//! (tests, and tunnels the operator sets up).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use reach_usb::acl::policy::{AclPolicy, FixedAnswer, PromptAnswer};
use reach_usb::audit::LocalAudit;
use reach_usb::backend::UsbBackend;
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::HostRunner;
use reach_usb::tools::UsbPaths;
use thiserror::Error;
use tokio::net::TcpListener;

/// Why serving could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    /// Not a loopback address.
    #[error(
        "{0} is not a loopback address: `reach usb serve` has no authentication of its own, so it only listens on 127.0.0.1 / ::1"
    )]
    NotLoopback(SocketAddr),
    /// Bind failed.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Binds the listener (checked to be loopback).
///
/// # Errors
/// [`ServeError`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    if !addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind(addr, e))
}

fn runner(paths: &UsbPaths, backend: Arc<dyn UsbBackend>, peer: SocketAddr) -> HostRunner {
    // Nobody sits at a prompt here: prompt_on_open rules answer "deny".
    let policy = AclPolicy::load(
        paths.acl(),
        paths.acl_options(),
        Arc::new(FixedAnswer(PromptAnswer::Deny)),
    );
    let config = HostConfig {
        passthrough: paths.passthrough().enabled,
        ..HostConfig::default()
    };
    let viewer = format!("tcp:{peer}");
    let mut runner = HostRunner::new(
        HostSession::new(config, Instant::now()),
        backend,
        Arc::new(policy),
        &viewer,
    );
    if std::fs::create_dir_all(&paths.config_dir).is_ok()
        && let Ok(audit) = LocalAudit::open(&paths.audit(), "local")
    {
        runner = runner.with_audit(Arc::new(audit));
    }
    runner
}

/// Serves every connection with its own host session until the listener fails.
pub async fn serve(listener: TcpListener, paths: UsbPaths, backend: Arc<dyn UsbBackend>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tracing::info!(%peer, "USB client connected");
                let runner = runner(&paths, backend.clone(), peer);
                tokio::spawn(runner.serve(reach_usb::net::tcp_channel(stream)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_loopback_addresses_are_served() {
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert!(matches!(bind(addr).await, Err(ServeError::NotLoopback(_))));
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
    }
}
