//! The HTTP/1.1 connection loop, with the limits of `[server]` (axum's own `serve` has none):
//!
//! - **Connection cap** (`max_connections`): a connection is accepted only while fewer are
//!   open. Beyond the cap, new connections *wait* in the kernel's listen backlog (they are not
//!   refused): their TCP handshake completes, but nothing reads their request until a slot
//!   frees. A client that gives up meanwhile costs nothing. (When the backlog is full too, the
//!   kernel drops further handshakes and clients retry.)
//! - **Header-read timeout** (`header_read_timeout_secs`): hyper closes a connection whose
//!   request head has not fully arrived this long after it began waiting for one (a slow-loris
//!   client). hyper starts this clock whenever a connection waits for its next request, so it
//!   also bounds how long a kept-alive connection may sit idle between requests: the
//!   keep-alive timeout is in effect the smaller of this and the idle timeout.
//! - **Request timeout** (`request_timeout_secs`): a request whose answer (reading its body
//!   included) is not ready in time is answered 503 `REQUEST_TIMEOUT`, problem+json. The
//!   gateway's listener has none ([`Limits::request_timeout`] is `None`): a long streamed body
//!   or an upgraded connection must not be cut off; the gateway bounds the wait for the
//!   upstream's answer itself.
//! - **Idle timeout** (`idle_timeout_secs`): a connection on which nothing was read or written
//!   for this long is shut down gracefully (a request in progress still gets its answer); if it
//!   is still open one more idle period later (a client that does not read its answer), it is
//!   dropped.
//!
//! Graceful shutdown: when the shutdown future resolves, the listener stops accepting and
//! every connection is told to finish its request in progress and close; the loop returns
//! once all are closed (the caller bounds that wait by the shutdown grace period).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::ApiError;

/// The limits the loop enforces; from `[server]` ([`crate::config::ServerConfig::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request head.
    pub header_read_timeout: Duration,
    /// Time a request has to be answered; `None` for no limit (the gateway).
    pub request_timeout: Option<Duration>,
    /// Time a connection may see no traffic.
    pub idle_timeout: Duration,
    /// Connections open at once, at most.
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves and the open connections are
/// closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (close_tx, close_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    loop {
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = Connection {
            router: router.clone(),
            builder: builder.clone(),
            limits,
            close: close_rx.clone(),
        };
        let slot = ConnectionSlot(Arc::new(slot));
        connections.spawn(async move {
            conn.run(stream, peer, slot).await;
        });
    }
    drop(listener);
    tracing::debug!(open = connections.len(), "closing connections");
    let _ = close_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A connection's place under `max_connections`, in every request's extensions: whatever
/// outlives the connection's loop with its bytes (the gateway's upgraded connections) keeps a
/// clone, so the connection still counts until it is really closed.
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

/// What one connection's task needs.
struct Connection {
    router: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    limits: Limits,
    close: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr, slot: ConnectionSlot) {
        let started = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(Tracked {
            inner: stream,
            started,
            last: activity.clone(),
        });
        let router = self.router;
        let request_timeout = self.limits.request_timeout;
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(slot.clone());
            let mut router = router.clone();
            async move {
                let answer = tower_service::Service::call(&mut router, req);
                let Some(request_timeout) = request_timeout else {
                    return answer.await;
                };
                match tokio::time::timeout(request_timeout, answer).await {
                    Ok(Ok(response)) => Ok::<_, std::convert::Infallible>(response),
                    Ok(Err(never)) => match never {},
                    Err(_) => {
                        tracing::warn!("request timed out");
                        Ok(ApiError::Timeout.into_response())
                    }
                }
            }
        });
        // With upgrades (HTTP/1.1 `Upgrade`, for the gateway's WebSocket pass-through): once a
        // connection is handed over, this loop is done with it.
        let mut conn = pin!(self.builder.serve_connection(io, service).with_upgrades());
        let idle = self.limits.idle_timeout;
        let mut check_at = started + idle;
        let mut closing = false;
        let mut idle_closed = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.close.wait_for(|c| *c), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = tokio::time::sleep_until(check_at) => {
                    let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
                    if last + idle > Instant::now() {
                        check_at = last + idle;
                    } else if idle_closed {
                        tracing::debug!("idle connection dropped");
                        return;
                    } else {
                        tracing::debug!("idle connection closed");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        idle_closed = true;
                        check_at = Instant::now() + idle;
                    }
                }
            }
        }
    }
}

/// A stream that notes when it last moved bytes, in milliseconds since `started`.
struct Tracked {
    inner: TcpStream,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Like axum's: a failed handshake is the client's business; anything else (out of file
/// descriptors, say) is logged and the loop pauses before accepting again.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
