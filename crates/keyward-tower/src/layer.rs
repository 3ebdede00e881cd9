//! [`KeywardLayer`], a `tower_layer::Layer`, and [`Keyward`], the service it wraps around the
//! inner one: admit by the edge, then call the inner service with the principal, or answer the
//! refusal without calling it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use keyward_gate::client_ip::client_ip;
use keyward_gate::edge::{strip_principal_headers, Admission, Original, Refusal};
use keyward_gate::gate::{Gate, GateOpenError, GateOptions};

use crate::peer::peer_addr;

/// The layer: cheap to clone (one `Arc`), every clone and every service it makes sharing one
/// [`Gate`].
#[derive(Clone)]
pub struct KeywardLayer {
    gate: Arc<Gate>,
}

impl KeywardLayer {
    /// A layer over an open gate.
    pub fn new(gate: Arc<Gate>) -> Self {
        Self { gate }
    }

    /// Opens a gate from `options` ([`Gate::open`]: store, cache, background tasks) and
    /// returns a layer over it. Call `layer.gate().shutdown()` before the process exits.
    pub async fn connect(options: &GateOptions) -> Result<Self, GateOpenError> {
        Ok(Self::new(Arc::new(Gate::open(options).await?)))
    }

    /// The gate (to shut it down, or to reach its cache and counters).
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }
}

impl<S> tower_layer::Layer<S> for KeywardLayer {
    type Service = Keyward<S>;

    fn layer(&self, inner: S) -> Keyward<S> {
        Keyward {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service the layer makes: `inner`, reached only by admitted requests.
#[derive(Clone)]
pub struct Keyward<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> Keyward<S> {
    /// `inner` behind `gate`.
    pub fn new(inner: S, gate: Arc<Gate>) -> Self {
        Self { inner, gate }
    }
}

/// The future of [`Keyward`]'s answer.
pub type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, ResBody> tower_service::Service<Request<B>> for Keyward<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: From<Bytes> + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The clone is the one to poll next; this call takes the one that was made ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let admission = {
                let client = peer_addr(req.extensions())
                    .and_then(|peer| client_ip(peer, req.headers(), gate.trusted_proxies()));
                let original = Original {
                    method: req.method().as_str(),
                    target: req.uri().path_and_query().map_or("/", |pq| pq.as_str()),
                    headers: req.headers(),
                    client_ip: client,
                };
                gate.edge().admit(&original).await
            };
            match admission {
                Ok(Admission::Allowed(allowed)) => {
                    strip_principal_headers(req.headers_mut());
                    if let Some(principal) = allowed.principal() {
                        req.extensions_mut().insert(principal);
                    }
                    let mut res = inner.call(req).await?;
                    allowed.write_rate_headers(res.headers_mut());
                    Ok(res)
                }
                Ok(Admission::Refused(refusal)) => {
                    tracing::debug!(code = refusal.code, status = %refusal.status, "keyward refused a request");
                    Ok(refusal.into_response())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "keyward could not decide; answering 503");
                    Ok(Refusal::unavailable().into_response())
                }
            }
        })
    }
}
