//! A loopback TCP link with added delay, for benchmarks over a "far" network without root
//! (`tc netem` needs privileges this machine's tests do not have).
//!
//! [`DelayLink::start`] listens on a loopback port and forwards every connection to a target;
//! every byte leaves the other side `one_way` after it arrived, in order, in both directions.
//! Bandwidth is not limited; the kernel's TCP on each side still sees the real round trip of its
//! own leg only, so the added delay behaves like a long path between two TCP proxies.
//!
//! [`DelayLink::cut`] simulates an outage for tests: open connections are dropped and new ones
//! closed at once until [`DelayLink::restore`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// Bytes read at a time from either side.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight per direction (bounds memory: 1,024 × 64 KiB = 64 MiB).
const IN_FLIGHT: usize = 1024;

/// A running delay link; dropping it stops accepting (open connections end with their peers).
#[derive(Debug)]
pub struct DelayLink {
    addr: SocketAddr,
    task: JoinHandle<()>,
    outage: Arc<Outage>,
}

/// The cut switch and the connections it drops.
#[derive(Debug, Default)]
struct Outage {
    cut: AtomicBool,
    /// A silent outage: connections stay open but nothing crosses (bytes are read and dropped).
    stalled: Arc<AtomicBool>,
    open: Mutex<Vec<AbortHandle>>,
}

impl DelayLink {
    /// Listens on `127.0.0.1:0` and forwards to `target` with `one_way` added each way.
    ///
    /// # Errors
    /// The listener could not be bound.
    pub async fn start(target: SocketAddr, one_way: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let outage = Arc::new(Outage::default());
        let shared = Arc::clone(&outage);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let stalled = Arc::clone(&shared.stalled);
                let conn = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let (ir, iw) = inbound.into_split();
                        let (or, ow) = outbound.into_split();
                        let back = Arc::clone(&stalled);
                        tokio::join!(pipe(ir, ow, one_way, stalled), pipe(or, iw, one_way, back));
                    }
                });
                let mut open = shared.open.lock().unwrap_or_else(|e| e.into_inner());
                open.retain(|c| !c.is_finished());
                open.push(conn.abort_handle());
            }
        });
        Ok(Self { addr, task, outage })
    }

    /// Where to connect instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts an outage: drops every open connection (both sides see them close) and closes
    /// new ones as they arrive, until [`Self::restore`].
    pub fn cut(&self) {
        self.outage.cut.store(true, Ordering::SeqCst);
        let open = std::mem::take(&mut *self.outage.open.lock().unwrap_or_else(|e| e.into_inner()));
        for conn in open {
            conn.abort();
        }
    }

    /// Starts a silent outage (a path that swallows packets): open connections stay open, but
    /// nothing crosses in either direction until [`Self::restore`]; neither side is told.
    pub fn stall(&self) {
        self.outage.stalled.store(true, Ordering::SeqCst);
    }

    /// Ends the outage: new connections are forwarded again, and a stalled link carries bytes
    /// again (those sent during the stall are lost).
    pub fn restore(&self) {
        self.outage.cut.store(false, Ordering::SeqCst);
        self.outage.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for DelayLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read (dropped while
/// `stalled`).
async fn pipe<R, W>(mut from: R, mut to: W, delay: Duration, stalled: Arc<AtomicBool>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let _reader = AbortOnDrop(tokio::spawn(async move {
        loop {
            let mut buf = vec![0; CHUNK];
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send((Instant::now() + delay, buf)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }));
    while let Some((due, chunk)) = rx.recv().await {
        tokio::time::sleep_until(due).await;
        if stalled.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Ends the reading task with its copier (also when a cut aborts the copier), so the socket's
/// read half does not outlive the connection.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_cross_the_link_in_order_and_late_by_the_delay_each_way() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = vec![0; 1 << 16];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let link = DelayLink::start(target, Duration::from_millis(20))
            .await
            .unwrap();
        let mut client = TcpStream::connect(link.addr()).await.unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        let (mut r, mut w) = client.split();
        let send = async {
            w.write_all(&data).await.unwrap();
        };
        let mut back = vec![0; data.len()];
        let recv = async { r.read_exact(&mut back).await.unwrap() };
        tokio::join!(send, recv);
        assert_eq!(back, data, "in order, byte-exact");
        assert!(
            started.elapsed() >= Duration::from_millis(40),
            "a round trip takes at least twice the one-way delay: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_cut_drops_open_connections_and_closes_new_ones_until_restored() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0; 1024];
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        let _ = s.write_all(&buf[..n]).await;
                    }
                });
            }
        });
        let link = DelayLink::start(target, Duration::ZERO).await.unwrap();
        let wait = Duration::from_secs(10);
        let mut open = TcpStream::connect(link.addr()).await.unwrap();
        open.write_all(b"ping").await.unwrap();
        let mut back = [0; 4];
        open.read_exact(&mut back).await.unwrap();
        link.cut();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(wait, open.read_to_end(&mut rest)).await;
        assert!(read.expect("closed in time").is_err() || rest.is_empty());
        let mut refused = TcpStream::connect(link.addr()).await.unwrap();
        let n = tokio::time::timeout(wait, refused.read(&mut back)).await;
        assert!(matches!(n.expect("closed in time"), Ok(0) | Err(_)));
        link.restore();
        let mut again = TcpStream::connect(link.addr()).await.unwrap();
        again.write_all(b"pong").await.unwrap();
        tokio::time::timeout(wait, again.read_exact(&mut back))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(&back, b"pong");
    }
}
