//! One proxied request: admit, rewrite the head, stream the body to the upstream, wait (within
//! the response timeout) for its head, stream its body back; or, on a 101, join the client's
//! and the upstream's upgraded connections.

use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, Response, StatusCode, Version};
use axum::response::IntoResponse;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use keyward_gate::client_ip::{canonical, client_ip};
use keyward_gate::edge::{Admission, Original, Refusal};
use tokio::sync::oneshot;

use crate::listener::ConnectionSlot;

use super::headers::{remove_hop_by_hop, set_forwarded, upgrade_of};
use super::Gateway;

/// A problem+json answer of the gateway's own, with `X-Keyward-Code`, as the edge refuses.
fn problem(status: StatusCode, code: &'static str, detail: &str) -> Response<Body> {
    Refusal::new(status, code, detail).into_response()
}

fn unavailable() -> Response<Body> {
    problem(
        StatusCode::BAD_GATEWAY,
        "UPSTREAM_UNAVAILABLE",
        "the upstream could not be reached",
    )
}

/// Every request on the gateway's listener.
pub(super) async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response<Body> {
    if req.method() == Method::CONNECT {
        return problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "the gateway does not tunnel CONNECT",
        );
    }
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let original = Original {
        method: req.method().as_str(),
        target: &target,
        headers: req.headers(),
        client_ip: client_ip(peer, req.headers(), &gw.trusted_proxies),
    };
    let allowed = match gw.edge.admit(&original).await {
        Ok(Admission::Allowed(allowed)) => allowed,
        Ok(Admission::Refused(refusal)) => return refusal.into_response::<Body>(),
        Err(e) => {
            tracing::warn!(error = %e, "the gateway could not decide");
            return Refusal::unavailable().into_response::<Body>();
        }
    };
    let Some(uri) = gw.upstream.uri_for(&target) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            "the request path could not be passed on",
        );
    };
    let upgrade = upgrade_of(req.headers());
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    // An upgraded connection keeps its place under `server.max_connections`.
    let slot = req.extensions_mut().remove::<ConnectionSlot>();
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    remove_hop_by_hop(&mut headers, upgrade.as_ref());
    if gw.strip_credential {
        headers.remove(&gw.credential);
    }
    let peer_ip = canonical(peer.ip());
    set_forwarded(&mut headers, peer_ip, gw.trusted_proxies.contains(peer_ip));
    if !gw.preserve_host || !headers.contains_key(header::HOST) {
        if let Ok(host) = HeaderValue::from_str(gw.upstream.authority().as_str()) {
            headers.insert(header::HOST, host);
        }
    }
    allowed.write_headers(&mut headers);

    // The response timeout runs from when the request's body has been sent (at once for an
    // empty one), so a long upload is not mistaken for a slow upstream.
    let (sent_tx, sent_rx) = oneshot::channel::<()>();
    let body = if body.is_end_stream() {
        drop(sent_tx);
        body
    } else {
        Body::new(Watched {
            inner: body,
            sent: Some(sent_tx),
        })
    };
    let mut upstream_req = axum::http::Request::new(body);
    *upstream_req.method_mut() = parts.method;
    *upstream_req.uri_mut() = uri;
    *upstream_req.version_mut() = Version::HTTP_11;
    *upstream_req.headers_mut() = headers;

    let mut pending = pin!(gw.client.request(upstream_req));
    let early = tokio::select! {
        answered = &mut pending => Some(answered),
        _ = sent_rx => None,
    };
    let answered = match early {
        Some(answered) => answered,
        None => match tokio::time::timeout(gw.response_timeout, pending).await {
            Ok(answered) => answered,
            Err(_) => {
                tracing::warn!(upstream = %gw.upstream.authority(), "the upstream did not answer in time");
                return problem(
                    StatusCode::GATEWAY_TIMEOUT,
                    "UPSTREAM_TIMEOUT",
                    "the upstream did not answer in time",
                );
            }
        },
    };
    let mut res = match answered {
        Ok(res) => res,
        Err(e) => {
            // The client's error names the kind of failure and its cause, never a header.
            tracing::warn!(upstream = %gw.upstream.authority(), error = ?e, "the upstream could not be reached");
            return unavailable();
        }
    };

    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let (Some(client_upgrade), Some(protocol)) = (client_upgrade, upgrade_of(res.headers()))
        else {
            tracing::warn!("the upstream switched protocols unasked");
            return unavailable();
        };
        let upstream_upgrade = hyper::upgrade::on(&mut res);
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::join!(client_upgrade, upstream_upgrade) {
                (Ok(client), Ok(upstream)) => {
                    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                    {
                        tracing::debug!(error = %e, "an upgraded connection ended");
                    }
                }
                (client, upstream) => {
                    tracing::debug!(
                        client = client.is_ok(),
                        upstream = upstream.is_ok(),
                        "an upgrade did not complete"
                    );
                }
            }
        });
        let (mut parts, _) = res.into_parts();
        remove_hop_by_hop(&mut parts.headers, Some(&protocol));
        let mut switched = Response::new(Body::empty());
        *switched.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *switched.headers_mut() = parts.headers;
        return switched;
    }

    let (mut parts, body) = res.into_parts();
    remove_hop_by_hop(&mut parts.headers, None);
    // The client learns its token's rate-limit state, unless the upstream reports its own.
    if !parts.headers.contains_key("ratelimit") {
        allowed.write_rate_headers(&mut parts.headers);
    }
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out.into_response()
}

/// A request body that says when it has been sent to the end (or failed, or was dropped).
struct Watched {
    inner: Body,
    sent: Option<oneshot::Sender<()>>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            if let Some(sent) = this.sent.take() {
                let _ = sent.send(());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
