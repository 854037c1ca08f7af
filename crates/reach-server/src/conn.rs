//! Connection limits below HTTP: a per-IP cap on open connections, a per-IP cap on
//! WebSockets that have not authenticated yet, and a read budget for a connection while its
//! WebSocket is unauthenticated.
//!
//! [`CappedAcceptor`] wraps every accepted TCP stream in a [`Counted`] stream: it counts the
//! connection against its peer IP (refusing — closing at once — past the cap) and registers a
//! [`ConnShared`] under the peer address, so a WebSocket handler can find its own connection
//! ([`Connections::find`]) and limit how many bytes it may read before authentication
//! ([`ConnShared::limit_reads`]). A read past the budget fails, which closes the socket: an
//! unauthenticated client cannot make the server buffer a large message.
//!
//! A connection whose WebSocket authenticated leaves the per-IP connection count
//! ([`ConnShared::authenticated`]): many agents behind one NAT address are fine, each holds a
//! credential. Trusted proxies (`trusted_proxies`) are exempt from the per-IP connection cap:
//! every client behind them shares their address.

use std::collections::HashMap;
use std::future::Ready;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::ratelimit::client_key;
use crate::read_ahead::ReadAhead;

/// Most open connections per client IP (IPv6: per /64), not counting authenticated
/// WebSockets.
pub const MAX_CONNECTIONS_PER_IP: usize = 128;
/// Most WebSockets per client IP that have not authenticated yet.
pub const MAX_UNAUTHENTICATED_SOCKETS_PER_IP: usize = 16;

/// Per-connection state shared between the stream and the handlers.
#[derive(Debug)]
pub struct ConnShared {
    read_limit: AtomicU64,
    read_count: AtomicU64,
    slot: Mutex<Option<IpSlot>>,
}

impl ConnShared {
    fn new(slot: Option<IpSlot>) -> Self {
        Self {
            read_limit: AtomicU64::new(u64::MAX),
            read_count: AtomicU64::new(0),
            slot: Mutex::new(slot),
        }
    }

    /// The connection's WebSocket authenticated: it no longer counts against its IP's
    /// connection cap, and its read budget is lifted.
    pub fn authenticated(&self) {
        self.unlimit_reads();
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    /// From now on, reading more than `bytes` (in total) fails the connection.
    pub fn limit_reads(&self, bytes: u64) {
        self.read_count.store(0, Ordering::Relaxed);
        self.read_limit.store(bytes, Ordering::Relaxed);
    }

    /// Lifts the read budget (after authentication).
    pub fn unlimit_reads(&self) {
        self.read_limit.store(u64::MAX, Ordering::Relaxed);
    }

    fn over_budget(&self) -> bool {
        self.read_count.load(Ordering::Relaxed) > self.read_limit.load(Ordering::Relaxed)
    }
}

/// Per-IP counters of a kind of connection, bounded by a cap.
#[derive(Debug)]
pub struct IpCounts {
    cap: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl IpCounts {
    /// Counters allowing `cap` at once per IP.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one for `ip` until the returned guard drops, or `None` when `ip` is at the cap.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = client_key(ip);
        let mut counts = self.lock();
        let n = counts.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            counts: Arc::clone(self),
            key,
        })
    }

    /// How many `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.lock().get(&client_key(ip)).copied().unwrap_or(0)
    }
}

/// One counted connection or socket; releases its count when dropped.
#[derive(Debug)]
pub struct IpSlot {
    counts: Arc<IpCounts>,
    key: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock();
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Every open connection of the server, by peer address.
#[derive(Debug)]
pub struct Connections {
    by_peer: Mutex<HashMap<SocketAddr, Weak<ConnShared>>>,
    per_ip: Arc<IpCounts>,
    /// WebSockets not yet authenticated, per IP.
    pub unauthenticated: Arc<IpCounts>,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            by_peer: Mutex::new(HashMap::new()),
            per_ip: Arc::new(IpCounts::new(MAX_CONNECTIONS_PER_IP)),
            unauthenticated: Arc::new(IpCounts::new(MAX_UNAUTHENTICATED_SOCKETS_PER_IP)),
        }
    }
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Weak<ConnShared>>> {
        self.by_peer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection from `peer`, when it came through [`CappedAcceptor`].
    pub fn find(&self, peer: SocketAddr) -> Option<Arc<ConnShared>> {
        self.lock().get(&peer).and_then(Weak::upgrade)
    }
}

/// A stream counted against its peer IP, with a read budget.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    shared: Arc<ConnShared>,
    peer: SocketAddr,
    connections: Arc<Connections>,
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.peer);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.shared.over_budget() {
            return Poll::Ready(Err(io::Error::other(
                "more read before authentication than allowed",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        this.shared
            .read_count
            .fetch_add(u64::try_from(read).unwrap_or(u64::MAX), Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Sets `TCP_NODELAY`, caps connections per IP and wraps each stream in [`Counted`] over a
/// [`ReadAhead`] (small WebSocket reads served from one socket read, no idle read buffer).
#[derive(Debug, Clone)]
pub struct CappedAcceptor {
    connections: Arc<Connections>,
    exempt: Arc<Vec<IpNet>>,
}

impl CappedAcceptor {
    /// An acceptor counting into `connections`; peers in `exempt` (trusted proxies) are
    /// not capped.
    pub fn new(connections: Arc<Connections>, exempt: Vec<IpNet>) -> Self {
        Self {
            connections,
            exempt: Arc::new(exempt),
        }
    }

    fn wrap(&self, stream: TcpStream) -> io::Result<Counted<ReadAhead<TcpStream>>> {
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        let slot = if self.exempt.iter().any(|net| net.contains(&peer.ip())) {
            None
        } else {
            let slot = self.connections.per_ip.acquire(peer.ip());
            Some(slot.ok_or_else(|| io::Error::other("too many connections from this IP"))?)
        };
        let shared = Arc::new(ConnShared::new(slot));
        self.connections
            .lock()
            .insert(peer, Arc::downgrade(&shared));
        Ok(Counted {
            inner: ReadAhead::new(stream),
            shared,
            peer,
            connections: Arc::clone(&self.connections),
        })
    }
}

impl<S> Accept<TcpStream, S> for CappedAcceptor {
    type Stream = Counted<ReadAhead<TcpStream>>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(self.wrap(stream).map(|s| (s, service)))
    }
}

/// Raises the soft limit on open files to the hard limit (the kernel's default soft limit,
/// often 1024, is far below what a relay with many sockets needs). Returns the new limit.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum;
    if limit.current != hard {
        limit.current = hard;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %err, "could not raise the open files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn slots_past_the_cap_are_refused_until_one_is_released() {
        let counts = Arc::new(IpCounts::new(2));
        let first = counts.acquire(A).unwrap();
        let _second = counts.acquire(A).unwrap();
        assert!(counts.acquire(A).is_none());
        assert!(counts.acquire(B).is_some(), "other IPs have their own cap");
        drop(first);
        assert_eq!(counts.held(A), 1);
        assert!(counts.acquire(A).is_some());
    }

    #[test]
    fn a_read_budget_trips_once_exceeded_and_lifts() {
        let shared = ConnShared::new(None);
        shared.limit_reads(10);
        shared.read_count.fetch_add(10, Ordering::Relaxed);
        assert!(!shared.over_budget());
        shared.read_count.fetch_add(1, Ordering::Relaxed);
        assert!(shared.over_budget());
        shared.unlimit_reads();
        assert!(!shared.over_budget());
    }

    #[test]
    fn an_authenticated_connection_leaves_its_ips_count() {
        let counts = Arc::new(IpCounts::new(1));
        let shared = ConnShared::new(counts.acquire(A));
        assert!(counts.acquire(A).is_none());
        shared.limit_reads(1);
        shared.authenticated();
        assert_eq!(counts.held(A), 0);
        assert!(counts.acquire(A).is_some());
        assert!(!shared.over_budget());
    }

    #[tokio::test]
    async fn a_read_budget_holds_through_the_read_ahead() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let acceptor = CappedAcceptor::new(Arc::default(), Vec::new());
        let mut stream = acceptor.wrap(accepted).unwrap();
        stream.shared.limit_reads(8 * 1024);
        let writing = tokio::spawn(async move {
            let _ = client.write_all(&[7u8; 100 * 1024]).await;
            client
        });
        let mut chunk = [0u8; 1024];
        let mut read = 0;
        let refused = loop {
            match stream.read(&mut chunk).await {
                Ok(0) => break false,
                Ok(n) => read += n,
                Err(_) => break true,
            }
        };
        assert!(refused, "reading past the budget fails");
        assert!(read <= 9 * 1024, "read {read} bytes, budget 8 KiB");
        drop(stream);
        let _ = writing.await;
    }
}
