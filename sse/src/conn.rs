//! Connections the service can cut.
//!
//! A client that reads nothing fills its socket buffers; hyper then stops polling the response
//! body, so nothing inside the body can end the connection. Every accepted connection is
//! therefore wrapped in a [`KillableIo`] whose reads and writes fail once its [`Conn::kill`]
//! token is cancelled: hyper's connection task wakes up, errors out and drops the socket. Each
//! token is a child of one root token, which ends every connection at once when a graceful
//! shutdown runs out of time.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Makes each accepted stream one that can be cut, alone or with all the others (`root`): the
/// `wrap` of [`zoomstream_runtime::listener::serve`].
pub fn killable(root: CancellationToken) -> impl Fn(TcpStream, SocketAddr) -> (KillableIo, Conn) {
    move |stream, remote| {
        // Events are small and latency matters more than packet count.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let kill = root.child_token();
        let io = KillableIo {
            inner: stream,
            killed: Box::pin(kill.clone().cancelled_owned()),
        };
        (io, Conn { remote, kill })
    }
}

/// A TCP stream whose reads and writes fail once its token is cancelled.
pub struct KillableIo {
    inner: TcpStream,
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl KillableIo {
    /// Ready (with an error) once the connection was cut; otherwise registers the task's waker
    /// with the token, so a cut wakes a connection blocked on a full socket.
    fn poll_killed(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.killed.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut by the server",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for KillableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Poll::Ready(err) = self.poll_killed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(err) = self.poll_killed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Poll::Ready(err) = self.poll_killed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Poll::Ready(err) = self.poll_killed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Poll::Ready(err) = self.poll_killed(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a request handler knows about its connection: who is on the other end, and how to cut
/// it.
#[derive(Clone, Debug)]
pub struct Conn {
    pub remote: SocketAddr,
    pub kill: CancellationToken,
}
