//! The direct-TCP baseline of `reach bench relay`: the same messages (sizes, count, rate) sent
//! over one plain loopback TCP connection (`TCP_NODELAY`, a 4-byte length before each message)
//! between two tasks of the bench, so the relay's figures can be read as "added over TCP".

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One connected pair: the sending end and the receiving end.
async fn pair() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (sender, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (sender, (receiver, _)) = (sender?, accepted?);
    sender.set_nodelay(true)?;
    receiver.set_nodelay(true)?;
    Ok((sender, receiver))
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
pub async fn throughput(messages: usize, len: usize) -> anyhow::Result<Duration> {
    let (mut sender, receiver) = pair().await?;
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
pub async fn latency(total: usize, rate: u32, len: usize) -> anyhow::Result<Vec<u64>> {
    let (mut sender, receiver) = pair().await?;
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
