//! The Check listener's connections: a stream that tells HTTP/2 it has no
//! vectored writes, so that answers are batched into few `writev`s.
//!
//! Why: h2 copies a DATA frame into its 16 KiB write buffer only when the
//! frame is smaller than a threshold, 256 bytes on a stream that supports
//! vectored writes and 1,024 bytes on one that does not. A larger frame is
//! chained instead, and nothing else is buffered until it has been written:
//! one system call per answer. An allow with our identity headers is about
//! 500 bytes, so on a plain `TcpStream` every answer cost a `writev` of its
//! own (1.45 per check under h2load, against 0.41 for a do-nothing server
//! whose answer is under 256 bytes), and the system calls were a third of
//! the sidecar's CPU (BENCHMARKS.md). Copying 500 bytes is far cheaper than
//! a system call on loopback, which also delivers to the reader.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// A connection whose writes are never vectored (see the module docs).
pub struct Unvectored<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for Unvectored<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Unvectored<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<S: Connected> Connected for Unvectored<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_pass_through_and_writes_are_not_vectored() {
        let (a, b) = tokio::io::duplex(64);
        let (mut a, mut b) = (Unvectored(a), Unvectored(b));
        assert!(!a.is_write_vectored());
        a.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
    }
}
