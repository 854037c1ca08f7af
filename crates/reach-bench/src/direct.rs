//! The direct-TCP baseline of `reach bench relay`: the same messages (sizes, count, rate) sent
//! over one plain loopback TCP connection (`TCP_NODELAY`, a 4-byte length before each message)
//! between two tasks of the bench, so the relay's figures can be read as "added over TCP".
//!
//! The same messages also go through a plain TCP forwarder ([`Path::Forwarded`]): a thread of
//! its own with its own runtime that reads up to 64 KiB and writes it on, nothing else. It is
//! the least any relay adds on this machine (one more loopback hop and one more wake-up), the
//! floor under the relay's "added" figures.

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How the messages travel from the sending end to the receiving end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// One loopback TCP connection.
    Direct,
    /// Two loopback TCP connections joined by a plain forwarder on its own thread.
    Forwarded,
}

/// One connected pair: the sending end and the receiving end.
async fn pair(path: Path) -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = match path {
        Path::Direct => listener.local_addr()?,
        Path::Forwarded => forwarder(listener.local_addr()?)?,
    };
    let (sender, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (sender, (receiver, _)) = (sender?, accepted?);
    sender.set_nodelay(true)?;
    receiver.set_nodelay(true)?;
    Ok((sender, receiver))
}

/// Starts a forwarder thread for one connection: it accepts on a new loopback port (returned),
/// connects to `to` and copies everything it reads there, until either side closes.
fn forwarder(to: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("bench-forwarder".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                let (mut from, _) = listener.accept().await?;
                let mut onward = TcpStream::connect(to).await?;
                from.set_nodelay(true)?;
                onward.set_nodelay(true)?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = from.read(&mut buf).await?;
                    if n == 0 {
                        return anyhow::Ok(());
                    }
                    onward.write_all(buf.get(..n).unwrap_or_default()).await?;
                }
            })
        })?;
    Ok(addr)
}

/// Reads one length-prefixed message into `buf`; returns its first 8 bytes as a number.
async fn read_message(reader: &mut BufReader<TcpStream>, buf: &mut Vec<u8>) -> anyhow::Result<u64> {
    let len = reader.read_u32().await? as usize;
    buf.resize(len, 0);
    reader.read_exact(buf).await?;
    let head: [u8; 8] = buf
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .unwrap_or([0; 8]);
    Ok(u64::from_be_bytes(head))
}

fn message(len: usize, stamp: u64) -> Vec<u8> {
    let len = len.max(8);
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&stamp.to_be_bytes());
    out.resize(4 + len, 0x5a);
    out
}

/// Seconds to move `messages` messages of `len` bytes from one end to the other.
///
/// # Errors
/// A socket error.
pub async fn throughput(path: Path, messages: usize, len: usize) -> anyhow::Result<Duration> {
    let (mut sender, receiver) = pair(path).await?;
    let bytes = message(len, 0);
    let started = Instant::now();
    let writing = tokio::spawn(async move {
        for _ in 0..messages {
            sender.write_all(&bytes).await?;
        }
        anyhow::Ok(sender)
    });
    let mut reader = BufReader::with_capacity(64 * 1024, receiver);
    let mut buf = Vec::new();
    for _ in 0..messages {
        read_message(&mut reader, &mut buf).await?;
    }
    let elapsed = started.elapsed();
    writing.await.context("sender task")??;
    Ok(elapsed)
}

/// One-way latency samples (µs) of `total` messages of `len` bytes sent at `rate` per second.
///
/// # Errors
/// A socket error.
pub async fn latency(path: Path, total: usize, rate: u32, len: usize) -> anyhow::Result<Vec<u64>> {
    let (mut sender, receiver) = pair(path).await?;
    let origin = Instant::now();
    let micros = move || u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
    let writing = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        for _ in 0..total {
            tick.tick().await;
            sender.write_all(&message(len, micros())).await?;
        }
        anyhow::Ok(sender)
    });
    let mut reader = BufReader::new(receiver);
    let mut buf = Vec::new();
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total {
        let sent = read_message(&mut reader, &mut buf).await?;
        samples.push(micros().saturating_sub(sent));
    }
    writing.await.context("sender task")??;
    Ok(samples)
}
