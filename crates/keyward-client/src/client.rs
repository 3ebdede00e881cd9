//! [`Client`]: construction, URL building, sending and decoding, and the non-admin calls
//! (`verify`, `health`, `ready`). The admin resources add their methods in sibling modules.

use std::fmt;
use std::time::Duration;

use keyward_core::api::{VerifyRequest, VerifyResponse};
use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;

use crate::ClientError;

/// How long to wait for a connection to keyward.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole call may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to one keyward server, optionally authenticated with a bearer token.
///
/// Cheap to clone: the underlying connection pool is shared.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the keyward at `base_url` (`http://host:port`, optionally with a path
    /// prefix), sending `Authorization: Bearer <token>` when `token` is set and not empty.
    pub fn new(base_url: &str, token: Option<String>) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("keyward-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Self::with_http(http, base_url, token)
    }

    /// Like [`Client::new`], with a caller-configured `reqwest` client (timeouts, proxies…).
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        token: Option<String>,
    ) -> Result<Client, ClientError> {
        let base =
            Url::parse(base_url.trim()).map_err(|e| ClientError::InvalidUrl(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::InvalidUrl(format!(
                "scheme '{}' is not http or https",
                base.scheme()
            )));
        }
        if base.cannot_be_a_base() {
            return Err(ClientError::InvalidUrl("not a base URL".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ClientError::InvalidUrl(
                "the base URL may not have a query or fragment".into(),
            ));
        }
        // An empty `KEYWARD_TOKEN=` means "no token", not `Authorization: Bearer `.
        let token = token.filter(|t| !t.trim().is_empty());
        Ok(Client { http, base, token })
    }

    /// The base URL, with any password in it replaced, for messages.
    pub fn base_url(&self) -> String {
        let mut shown = self.base.clone();
        if shown.password().is_some() {
            // Only fails for URLs that cannot have credentials, which `with_http` refused.
            let _ = shown.set_password(Some("redacted"));
        }
        shown.to_string()
    }

    /// Whether calls carry a bearer token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `POST /v1/verify`: is this token allowed to do this?
    pub async fn verify(&self, req: &VerifyRequest<'_>) -> Result<VerifyResponse, ClientError> {
        self.call(self.request(Method::POST, &["v1", "verify"])?.json(req))
            .await
    }

    /// `GET /healthz`: the process is up.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::GET, &["healthz"])?)
            .await
    }

    /// `GET /readyz`: the process can serve (its store answers).
    pub async fn ready(&self) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::GET, &["readyz"])?)
            .await
    }

    /// The URL of `segments` under the base URL, each segment percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl("not a base URL".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// A request to `segments`, authenticated when there is a token.
    pub(crate) fn request(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<RequestBuilder, ClientError> {
        let rb = self.http.request(method, self.url(segments)?);
        // `bearer_auth` marks the header sensitive, so it stays out of reqwest's own Debug.
        Ok(match &self.token {
            Some(token) => rb.bearer_auth(token),
            None => rb,
        })
    }

    /// Sends `rb` and decodes a 2xx JSON answer as `T`.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = Self::checked(rb).await?;
        Ok(resp.json().await?)
    }

    /// Sends a PATCH that the two-person rule may hold: 200 decodes as `T`, 202 (the change
    /// was kept as a change request, not applied) is [`ClientError::PendingApproval`].
    pub(crate) async fn call_change<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = Self::checked(rb).await?;
        if resp.status() == reqwest::StatusCode::ACCEPTED {
            return Err(ClientError::PendingApproval(Box::new(resp.json().await?)));
        }
        Ok(resp.json().await?)
    }

    /// Sends `rb` and expects a 2xx answer whose body does not matter (204, health checks).
    pub(crate) async fn call_empty(&self, rb: RequestBuilder) -> Result<(), ClientError> {
        Self::checked(rb).await.map(drop)
    }

    async fn checked(rb: RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = rb.send().await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.bytes().await?;
        Err(ClientError::from_answer(status.as_u16(), &body))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let c = Client::new(
            "http://user:pw@127.0.0.1:8080",
            Some("kw_supersecret".into()),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("kw_supersecret"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(c.has_token());
    }

    #[test]
    fn urls_keep_the_base_path_and_encode_segments() {
        let c = Client::new("http://127.0.0.1:8080", None).unwrap();
        assert_eq!(
            c.url(&["v1", "verify"]).unwrap().as_str(),
            "http://127.0.0.1:8080/v1/verify"
        );

        let c = Client::new("https://example.com/keyward/", None).unwrap();
        assert_eq!(
            c.url(&["healthz"]).unwrap().as_str(),
            "https://example.com/keyward/healthz"
        );

        let url = c.url(&["v1", "permissions", "a/b c?#%"]).unwrap();
        assert_eq!(url.path(), "/keyward/v1/permissions/a%2Fb%20c%3F%23%25");
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for bad in ["not a url", "ftp://x", "mailto:a@b", "http://x/?q=1"] {
            assert!(
                matches!(Client::new(bad, None), Err(ClientError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
