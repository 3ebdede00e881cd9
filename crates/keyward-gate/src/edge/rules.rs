//! The `[edge]` configuration section and its checked form.

use http::header::{self, HeaderName};
use serde::{Deserialize, Serialize};

use crate::routes::{Requirement, RouteConfig, RouteTable};

/// The `[edge]` section: the route table and how the credential is read. Its `Debug` does not
/// show the proxy secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// The header holding the token; empty for `Authorization: Bearer`.
    pub credential_header: String,
    /// What a request no route matches gets.
    pub unmatched: Unmatched,
    /// A secret a proxy may send as `X-Keyward-Proxy-Secret` to be trusted by `/auth` from an
    /// address not in `policy.trusted_proxies`; empty for none.
    pub proxy_secret: String,
    /// The routes.
    pub routes: Vec<RouteConfig>,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.proxy_secret.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("EdgeConfig")
            .field("credential_header", &self.credential_header)
            .field("unmatched", &self.unmatched)
            .field("proxy_secret", &secret)
            .field("routes", &self.routes)
            .finish()
    }
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            credential_header: String::new(),
            unmatched: Unmatched::Deny,
            proxy_secret: String::new(),
            routes: Vec::new(),
        }
    }
}

/// What a request no route matches gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// 403 `ROUTE_NOT_ALLOWED`, whatever the credential.
    Deny,
    /// Any valid token (no permission required).
    Authenticate,
}

/// How the credential is read.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Bearer,
    Header(HeaderName),
}

/// The parts of [`EdgeConfig`] that were checked.
#[derive(Debug, Clone)]
pub struct EdgeRules {
    pub(crate) table: RouteTable,
    pub(crate) credential: Credential,
}

impl EdgeRules {
    /// Checks the section: every route, and the credential header's name. Errors name the key.
    pub fn from_config(config: &EdgeConfig) -> Result<Self, String> {
        let unmatched = match config.unmatched {
            Unmatched::Deny => Requirement::Deny,
            Unmatched::Authenticate => Requirement::Token(Vec::new()),
        };
        let table = RouteTable::build(&config.routes, unmatched)?;
        let name = config.credential_header.trim();
        let credential = if name.is_empty() || name.eq_ignore_ascii_case("authorization") {
            Credential::Bearer
        } else {
            Credential::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                "edge.credential_header: not a valid header name (e.g. X-API-Key)".to_owned()
            })?)
        };
        Ok(Self { table, credential })
    }

    /// The route table.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The header the credential is read from (`authorization` for Bearer).
    pub fn credential_header(&self) -> HeaderName {
        match &self.credential {
            Credential::Bearer => header::AUTHORIZATION,
            Credential::Header(h) => h.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteConfig;

    #[test]
    fn the_proxy_secret_is_never_printed() {
        let c = EdgeConfig {
            proxy_secret: "hunter2-proxy".into(),
            ..EdgeConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn the_config_is_checked() {
        let bad = EdgeConfig {
            credential_header: "X API Key".into(),
            ..EdgeConfig::default()
        };
        assert!(EdgeRules::from_config(&bad)
            .unwrap_err()
            .contains("credential_header"));
        let key = EdgeConfig {
            credential_header: "X-API-Key".into(),
            ..EdgeConfig::default()
        };
        let rules = EdgeRules::from_config(&key).unwrap();
        assert_eq!(rules.credential_header(), "x-api-key");
        let routes = EdgeConfig {
            routes: vec![RouteConfig {
                route: "GET /x/**/y".into(),
                permissions: vec![],
                anonymous: false,
            }],
            ..EdgeConfig::default()
        };
        assert!(EdgeRules::from_config(&routes)
            .unwrap_err()
            .contains("edge.routes[0]"));
    }
}
