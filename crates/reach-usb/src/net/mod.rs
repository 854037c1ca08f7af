//! Transports and the host's async driver.
//!
//! The protocol needs an ordered, reliable transport of byte messages (one frame per message).
//! Every transport is presented to the drivers as a [`MessageChannel`] (a pair of bounded tokio
//! channels); adapters bridge sockets or add delay with small tasks.
//!
//! - [`memory_pair`]: in-process, for tests and benchmarks.
//! - [`tcp_channel`]: a TCP stream with `len u32 | frame` records.
//! - [`delayed`]: adds a fixed one-way delay (a round-trip emulator for benchmarks).

mod host_driver;

pub(crate) use host_driver::{recv_opt, reserve_opt};

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub use host_driver::{AccessPolicy, AllowAll, HostRunner};

use crate::limits::MAX_FRAME_LEN;

/// Messages queued per direction before the sender waits.
pub const CHANNEL_CAPACITY: usize = 512;

/// One end of an ordered, reliable message transport.
#[derive(Debug)]
pub struct MessageChannel {
    /// Outgoing messages.
    pub tx: mpsc::Sender<Bytes>,
    /// Incoming messages; `None` when the peer is gone.
    pub rx: mpsc::Receiver<Bytes>,
}

/// Anything that can carry protocol messages.
pub trait MessageTransport {
    /// Converts into a channel pair (spawning bridge tasks if needed).
    fn into_channel(self) -> MessageChannel;
}

impl MessageTransport for MessageChannel {
    fn into_channel(self) -> MessageChannel {
        self
    }
}

impl MessageTransport for TcpStream {
    fn into_channel(self) -> MessageChannel {
        tcp_channel(self)
    }
}

/// Two connected in-memory ends.
pub fn memory_pair() -> (MessageChannel, MessageChannel) {
    let (a_tx, b_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (b_tx, a_rx) = mpsc::channel(CHANNEL_CAPACITY);
    (
        MessageChannel { tx: a_tx, rx: a_rx },
        MessageChannel { tx: b_tx, rx: b_rx },
    )
}

/// Bridges a TCP stream: each message is `len u32 (big-endian) | bytes`. A record longer than
/// a frame can be ([`MAX_FRAME_LEN`]) closes the connection before anything is allocated for it.
pub fn tcp_channel(stream: TcpStream) -> MessageChannel {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    tokio::spawn(read_records(read, in_tx));
    tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(256 * 1024, write);
        while let Some(msg) = out_rx.recv().await {
            let ok = w.write_u32(msg.len() as u32).await.is_ok() && w.write_all(&msg).await.is_ok();
            if !ok || (out_rx.is_empty() && w.flush().await.is_err()) {
                break;
            }
        }
        let _ = w.shutdown().await;
    });
    MessageChannel {
        tx: out_tx,
        rx: in_rx,
    }
}

/// Bytes the TCP reader asks the socket for at once when no longer record is pending.
const READ_CHUNK: usize = 64 * 1024;

/// Reads `len u32 | bytes` records into one growing buffer: one read call can bring many small
/// records, nothing is zero-filled, and each record is split off as its own `Bytes` without a copy.
async fn read_records(mut read: impl AsyncRead + Unpin, tx: mpsc::Sender<Bytes>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        loop {
            match next_record(&mut buf) {
                Ok(Some(record)) => {
                    if tx.send(record).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(len) => {
                    tracing::warn!(len, "USB transport record larger than a frame; closing");
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        if !matches!(read.read_buf(&mut buf).await, Ok(n) if n > 0) {
            return;
        }
    }
}

/// Splits the next whole record off `buf`; reserves room for the rest of a partial one.
///
/// # Errors
/// The declared length when it exceeds [`MAX_FRAME_LEN`].
fn next_record(buf: &mut BytesMut) -> Result<Option<Bytes>, usize> {
    let Some(header) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(len);
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Wraps a channel so each message, in both directions, arrives `one_way` later (order kept).
pub fn delayed(inner: MessageChannel, one_way: Duration) -> MessageChannel {
    let (outer_tx, inner_rx_for_fwd) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    let (fwd_tx, outer_rx) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    tokio::spawn(delay_pump(inner_rx_for_fwd, inner.tx, one_way));
    tokio::spawn(delay_pump(inner.rx, fwd_tx, one_way));
    MessageChannel {
        tx: outer_tx,
        rx: outer_rx,
    }
}

async fn delay_pump(mut rx: mpsc::Receiver<Bytes>, tx: mpsc::Sender<Bytes>, delay: Duration) {
    let mut queue: VecDeque<(tokio::time::Instant, Bytes)> = VecDeque::new();
    let mut open = true;
    loop {
        let due = queue.front().map(|(t, _)| *t);
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(m) => queue.push_back((tokio::time::Instant::now() + delay, m)),
                None => open = false,
            },
            () = sleep_until_opt(due) => {
                if let Some((_, m)) = queue.pop_front() && tx.send(m).await.is_err() {
                    return;
                }
            }
        }
        if !open && queue.is_empty() {
            return;
        }
    }
}

pub(crate) async fn sleep_until_opt(due: Option<tokio::time::Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Sends queued frames without ever waiting: frames a full channel cannot take stay in `held`.
/// Returns `false` when the peer is gone.
pub(crate) fn pump_out(
    tx: &mpsc::Sender<Bytes>,
    held: &mut Option<Bytes>,
    mut next: impl FnMut() -> Option<Bytes>,
) -> bool {
    loop {
        let Some(frame) = held.take().or_else(&mut next) else {
            return true;
        };
        match tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(frame)) => {
                *held = Some(frame);
                return true;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn tcp_pair() -> (MessageChannel, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (tcp_channel(accepted), raw)
    }

    #[tokio::test]
    async fn tcp_records_arrive_whole_and_in_order() {
        let (mut chan, mut raw) = tcp_pair().await;
        for msg in [&b"first"[..], b"", b"third"] {
            raw.write_u32(msg.len() as u32).await.unwrap();
            raw.write_all(msg).await.unwrap();
        }
        assert_eq!(&chan.rx.recv().await.unwrap()[..], b"first");
        assert_eq!(&chan.rx.recv().await.unwrap()[..], b"");
        assert_eq!(&chan.rx.recv().await.unwrap()[..], b"third");
    }

    #[tokio::test]
    async fn many_small_records_in_one_segment_and_a_record_split_across_writes_arrive_whole() {
        let (mut chan, mut raw) = tcp_pair().await;
        let mut burst = Vec::new();
        for i in 0..100u32 {
            burst.extend_from_slice(&4u32.to_be_bytes());
            burst.extend_from_slice(&i.to_be_bytes());
        }
        let big = vec![0xABu8; MAX_FRAME_LEN];
        burst.extend_from_slice(&(big.len() as u32).to_be_bytes());
        burst.extend_from_slice(&big[..1000]);
        raw.write_all(&burst).await.unwrap();
        for i in 0..100u32 {
            assert_eq!(&chan.rx.recv().await.unwrap()[..], &i.to_be_bytes());
        }
        raw.write_all(&big[1000..]).await.unwrap();
        assert_eq!(chan.rx.recv().await.unwrap(), big);
    }

    #[tokio::test]
    async fn a_record_one_byte_over_the_largest_frame_closes_the_connection() {
        let (mut chan, mut raw) = tcp_pair().await;
        raw.write_u32(MAX_FRAME_LEN as u32 + 1).await.unwrap();
        assert_eq!(chan.rx.recv().await, None);
    }

    #[tokio::test]
    async fn an_oversize_tcp_record_closes_the_connection_before_allocating() {
        let (mut chan, mut raw) = tcp_pair().await;
        raw.write_u32(u32::MAX).await.unwrap();
        assert_eq!(chan.rx.recv().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_delaying_transport_keeps_order_and_adds_its_delay() {
        let (a, mut b) = memory_pair();
        let a = delayed(a, Duration::from_millis(25));
        let start = tokio::time::Instant::now();
        for i in 0..3u8 {
            a.tx.send(Bytes::from(vec![i])).await.unwrap();
        }
        for i in 0..3u8 {
            assert_eq!(&b.rx.recv().await.unwrap()[..], &[i]);
        }
        assert!(start.elapsed() >= Duration::from_millis(25));
    }
}
