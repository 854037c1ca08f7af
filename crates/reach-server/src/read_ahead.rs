//! A read-ahead buffer that exists only while bytes flow.
//!
//! An idle relay session holds two WebSockets, and a WebSocket codec that reads in large
//! chunks keeps a large, zero-filled read buffer for as long as the socket lives (it was 16 KiB
//! per socket, most of an idle session's memory). With [`ReadAhead`] below it, the codec is
//! given a small read buffer ([`crate::ws::READ_BUFFER`]) and each of its small reads is
//! served from one large read of the socket ([`READ_AHEAD`] bytes). A socket that has held
//! nothing is read through a stack buffer first, so polling an idle socket allocates nothing;
//! once bytes arrive they move to a heap buffer that is reused while the burst lasts and freed
//! the first time the socket has nothing more to read. Reads of at least [`DIRECT_READ`]
//! bytes (HTTP parsing) go straight to the socket. So a burst costs one system call per
//! [`READ_AHEAD`] bytes, and a socket waiting for its next message holds no read buffer.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at once for small reads.
pub const READ_AHEAD: usize = 64 * 1024;

/// Reads asking for at least this many bytes bypass the buffer.
pub const DIRECT_READ: usize = 8 * 1024;

/// A stream whose small reads are served from a transient read-ahead buffer.
#[derive(Debug)]
pub struct ReadAhead<S> {
    inner: S,
    /// Bytes read from `inner` and not yet handed out; its capacity is kept while a burst
    /// lasts and freed when the socket has nothing to read.
    ahead: BytesMut,
    /// `ahead` has its allocation from this burst (a drained `BytesMut` may report no
    /// capacity yet get it back without allocating).
    bursting: bool,
}

impl<S> ReadAhead<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            ahead: BytesMut::new(),
            bursting: false,
        }
    }

    /// The wrapped stream.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Bytes of read-ahead memory held now (0 once the socket had nothing to read).
    pub fn held(&self) -> usize {
        self.ahead.capacity()
    }

    /// Hands out buffered bytes (the buffer is kept for the rest of the burst).
    fn take_into(&mut self, buf: &mut ReadBuf<'_>) {
        let n = self.ahead.len().min(buf.remaining());
        buf.put_slice(self.ahead.get(..n).unwrap_or_default());
        self.ahead.advance(n);
    }
}

impl<S: AsyncRead + Unpin> ReadAhead<S> {
    /// One read of the socket of up to [`READ_AHEAD`] bytes: into the buffer kept from this
    /// burst (freed when the socket turns out to be empty), or, when none is kept, into the
    /// stack and then into a fresh buffer only if bytes came.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.bursting {
            let mut probe = [MaybeUninit::<u8>::uninit(); READ_AHEAD];
            let mut target = ReadBuf::uninit(&mut probe);
            let polled = Pin::new(&mut self.inner).poll_read(cx, &mut target);
            if !target.filled().is_empty() {
                self.ahead.reserve(READ_AHEAD);
                self.ahead.extend_from_slice(target.filled());
                self.bursting = true;
            }
            return polled;
        }
        self.ahead.reserve(READ_AHEAD);
        let polled = tokio_util::io::poll_read_buf(Pin::new(&mut self.inner), cx, &mut self.ahead);
        if self.ahead.is_empty() && !matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.ahead = BytesMut::new();
            self.bursting = false;
        }
        polled.map_ok(drop)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ahead.is_empty() {
            if buf.remaining() >= DIRECT_READ {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            match this.fill(cx) {
                Poll::Ready(Ok(())) if this.ahead.is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        this.take_into(buf);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket with `data` to give, recording the size of each read asked of it.
    struct Socket {
        data: Vec<u8>,
        asked: Vec<usize>,
    }

    impl AsyncRead for Socket {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.asked.push(buf.remaining());
            if this.data.is_empty() {
                return Poll::Pending;
            }
            let n = this.data.len().min(buf.remaining());
            buf.put_slice(&this.data[..n]);
            this.data.drain(..n);
            Poll::Ready(Ok(()))
        }
    }

    fn socket(len: usize) -> ReadAhead<Socket> {
        let data = (0..len).map(|i| (i % 251) as u8).collect();
        ReadAhead::new(Socket {
            data,
            asked: Vec::new(),
        })
    }

    fn read(stream: &mut ReadAhead<Socket>, len: usize) -> Poll<Vec<u8>> {
        let mut out = vec![0; len];
        let mut buf = ReadBuf::new(&mut out);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(stream).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                out.truncate(n);
                Poll::Ready(out)
            }
            Poll::Ready(Err(e)) => panic!("{e}"),
            Poll::Pending => Poll::Pending,
        }
    }

    #[test]
    fn small_reads_are_served_from_one_large_socket_read_in_order() {
        let mut stream = socket(10_000);
        let mut got = Vec::new();
        while got.len() < 10_000 {
            let Poll::Ready(chunk) = read(&mut stream, 1024) else {
                panic!("bytes are buffered");
            };
            got.extend(chunk);
        }
        let want: Vec<u8> = (0..10_000).map(|i| (i % 251) as u8).collect();
        assert_eq!(got, want);
        assert_eq!(stream.get_ref().asked, vec![READ_AHEAD]);
    }

    #[test]
    fn a_stream_frees_its_buffer_once_the_socket_has_nothing_to_read() {
        let mut stream = socket(100);
        assert_eq!(read(&mut stream, 60), Poll::Ready((0..60).collect()));
        assert!(stream.held() > 0, "40 bytes still buffered");
        assert_eq!(read(&mut stream, 60), Poll::Ready((60..100).collect()));
        assert_eq!(read(&mut stream, 60), Poll::Pending);
        assert_eq!(stream.held(), 0, "nothing kept while waiting");
    }

    #[test]
    fn polling_an_idle_socket_allocates_nothing() {
        let mut stream = socket(0);
        assert_eq!(read(&mut stream, 60), Poll::Pending);
        assert_eq!(read(&mut stream, 60), Poll::Pending);
        assert_eq!(stream.held(), 0);
        assert_eq!(stream.get_ref().asked, vec![READ_AHEAD, READ_AHEAD]);
    }

    #[test]
    fn a_burst_reuses_its_buffer_until_the_socket_is_drained() {
        let mut stream = socket(3 * READ_AHEAD);
        let mut got = 0;
        while got < 3 * READ_AHEAD {
            let Poll::Ready(chunk) = read(&mut stream, 2048) else {
                panic!("bytes are there");
            };
            got += chunk.len();
            assert!(stream.held() <= 2 * READ_AHEAD, "one buffer, reused");
        }
        assert_eq!(stream.get_ref().asked.len(), 3);
        assert_eq!(read(&mut stream, 2048), Poll::Pending);
        assert_eq!(stream.held(), 0);
    }

    #[test]
    fn large_reads_go_straight_to_the_socket() {
        let mut stream = socket(20_000);
        let Poll::Ready(chunk) = read(&mut stream, DIRECT_READ) else {
            panic!("bytes are there");
        };
        assert_eq!(chunk.len(), DIRECT_READ);
        assert_eq!(stream.get_ref().asked, vec![DIRECT_READ]);
        assert_eq!(stream.held(), 0);
    }
}
