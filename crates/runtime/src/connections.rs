//! The server's own accept loop, fed to tonic as its incoming connections.
//!
//! tonic's `TcpIncoming` retries a failed `accept` at once: out of file
//! descriptors (EMFILE) the listening socket stays readable and the loop
//! spins a core. Here accept errors back off (5 ms doubling to 1 s) and are
//! logged at most once a second. Connections over the cap are closed as soon
//! as they are accepted, and a connection that has not sent the HTTP/2
//! preface and its first frame within the handshake timeout is closed, so
//! silent sockets cannot pile up.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How the accept loop treats connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// Time a new connection gets to send the HTTP/2 preface and first frame.
    pub handshake_timeout: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const LAST_BACKOFF: Duration = Duration::from_secs(1);
/// The client preface: 24 bytes of magic, then a SETTINGS frame.
const PREFACE: usize = 24;
const FRAME_HEADER: usize = 9;

/// The connections accepted on `listener`, within `limits`.
pub fn incoming(listener: TcpListener, limits: Limits) -> impl Stream<Item = io::Result<Connection>> + Send {
    let state = Accept {
        listener,
        permits: Arc::new(Semaphore::new(limits.max_connections)),
        limits,
        backoff: FIRST_BACKOFF,
        failures: 0,
        last_log: None,
        refused: 0,
    };
    futures::stream::unfold(state, |mut state| async move {
        let connection = state.next().await;
        Some((Ok(connection), state))
    })
}

struct Accept {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    limits: Limits,
    backoff: Duration,
    /// Accept errors since the last log line.
    failures: u64,
    last_log: Option<Instant>,
    /// Connections closed over the cap since the last log line.
    refused: u64,
}

impl Accept {
    async fn next(&mut self) -> Connection {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    self.failed(&err);
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(LAST_BACKOFF);
                    continue;
                }
            };
            self.backoff = FIRST_BACKOFF;
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                // Dropping the socket closes it: the client retries elsewhere.
                self.refused += 1;
                if self.may_log() {
                    tracing::warn!(
                        refused = self.refused,
                        limit = self.limits.max_connections,
                        "connection limit reached, closing new connections"
                    );
                    self.refused = 0;
                }
                continue;
            };
            // Small gRPC frames must not wait for delayed ACKs (Nagle): ~40 ms stalls.
            let _ = stream.set_nodelay(true);
            return Connection::new(stream, permit, self.limits.handshake_timeout);
        }
    }

    fn failed(&mut self, err: &io::Error) {
        self.failures += 1;
        if self.may_log() {
            tracing::error!(error = %err, failures = self.failures, retry_in_ms = self.backoff.as_millis() as u64, "cannot accept connections");
            self.failures = 0;
        }
    }

    /// At most one line a second, so a failing accept cannot flood the logs.
    fn may_log(&mut self) -> bool {
        let now = Instant::now();
        if self.last_log.is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
            return false;
        }
        self.last_log = Some(now);
        true
    }
}

/// An accepted connection: holds its place under the cap until dropped, and
/// fails reads once its handshake is overdue.
pub struct Connection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Until the handshake is complete: its deadline and the bytes seen.
    handshake: Option<Handshake>,
}

struct Handshake {
    deadline: Pin<Box<Sleep>>,
    seen: usize,
    /// Preface and first frame header, to learn the frame's length.
    head: [u8; PREFACE + FRAME_HEADER],
}

impl Connection {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, timeout: Duration) -> Self {
        let handshake =
            Handshake { deadline: Box::pin(tokio::time::sleep(timeout)), seen: 0, head: [0; PREFACE + FRAME_HEADER] };
        Self { stream, _permit: permit, handshake: Some(handshake) }
    }
}

impl Handshake {
    /// Records `bytes` read; true once the preface and first frame are in.
    fn read(&mut self, bytes: &[u8]) -> bool {
        let head = self.head.len();
        if self.seen < head {
            let n = bytes.len().min(head - self.seen);
            self.head[self.seen..self.seen + n].copy_from_slice(&bytes[..n]);
        }
        self.seen += bytes.len();
        if self.seen < head {
            return false;
        }
        let length = u32::from_be_bytes([0, self.head[PREFACE], self.head[PREFACE + 1], self.head[PREFACE + 2]]);
        self.seen >= head + length as usize
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(handshake) = this.handshake.as_mut() else { return read };
        match read {
            Poll::Ready(Ok(())) => {
                if handshake.read(&buf.filled()[before..]) {
                    this.handshake = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                ready!(handshake.deadline.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no HTTP/2 handshake within the timeout")))
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> Handshake {
        Handshake { deadline: Box::pin(tokio::time::sleep(Duration::from_secs(1))), seen: 0, head: [0; 33] }
    }

    #[tokio::test]
    async fn handshake_completes_after_the_preface_and_first_frame() {
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        // SETTINGS frame with a 6-byte payload: 9 + 6 bytes after the magic.
        preface.extend([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        let mut whole = handshake();
        assert!(whole.read(&preface));
        let mut split = handshake();
        assert!(!split.read(&preface[..10]));
        assert!(!split.read(&preface[10..30]));
        assert!(!split.read(&preface[30..38]));
        assert!(split.read(&preface[38..]));
    }
}
