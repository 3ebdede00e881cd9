//! Layered configuration: defaults → TOML file → `KEYWARD_<SECTION>__<KEY>` environment
//! variables → command-line flags (applied by the binary). Unknown keys are refused at every
//! layer, with the key named. Environment variables without `__` (`KEYWARD_URL`,
//! `KEYWARD_TOKEN`, …) belong to the CLI and are not configuration.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// keyward's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listener.
    pub server: ServerConfig,
    /// Storage.
    pub database: DatabaseConfig,
    /// Token hashing.
    pub tokens: TokensConfig,
    /// The verification cache.
    pub cache: keyward_gate::cache::CacheConfig,
    /// Network policy: trusted proxies, internal networks, the brute-force guard.
    pub policy: PolicyConfig,
    /// Where rate-limit state lives: this node's memory, or Redis shared by every node.
    pub ratelimit: keyward_gate::limiter::RateLimitConfig,
    /// Logging.
    pub log: LogConfig,
    /// Usage records: batching, back-pressure, retention.
    pub usage: crate::usage::UsageConfig,
    /// Webhook deliveries: polling, timeout, retries.
    pub webhooks: crate::events::WebhooksConfig,
    /// The expiry scheduler.
    pub expiry: crate::events::expiry::ExpiryConfig,
    /// Leak response: the keys of GitHub's secret-scanning alerts.
    pub leaks: crate::leaks::LeaksConfig,
    /// The audit trail: how security denials are aggregated.
    pub audit: crate::denials::AuditConfig,
    /// The web dashboard: sessions, invitations, the sign-in guard.
    pub dashboard: crate::people::DashboardConfig,
    /// The edge surfaces (forward-auth, gateway): the route table and the credential.
    pub edge: keyward_gate::edge::EdgeConfig,
    /// Gateway mode: the upstream keyward proxies admitted requests to, and its listener.
    pub gateway: crate::gateway::GatewayConfig,
}

/// Network policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Proxies whose `X-Forwarded-For` / `X-Real-IP` are believed (addresses or CIDRs).
    pub trusted_proxies: Vec<String>,
    /// Internal networks of the whole server, added to every workspace's own.
    pub internal_networks: Vec<String>,
    /// Failed verifications (malformed or unknown tokens) one source address may cause per
    /// minute before all its verifications are refused as `RATE_LIMITED`; 0 turns it off.
    pub failed_verifications_per_minute: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            internal_networks: Vec::new(),
            failed_verifications_per_minute: 60,
        }
    }
}

/// HTTP listener settings, with the connection limits of [`crate::listener`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (`ip:port` or `host:port`); port 0 picks a free port.
    pub listen: String,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds a client has to send a request's head (also the longest a kept-alive
    /// connection waits for its next request).
    pub header_read_timeout_secs: u64,
    /// Seconds a request has to be answered (its body read included); then 503.
    pub request_timeout_secs: u64,
    /// Seconds a connection may carry no traffic before it is closed.
    pub idle_timeout_secs: u64,
    /// Connections open at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            shutdown_grace_secs: 10,
            header_read_timeout_secs: 10,
            request_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 10_000,
        }
    }
}

/// Longest timeout that can be configured, in seconds (a day).
const MAX_TIMEOUT_SECS: u64 = 86_400;

impl ServerConfig {
    /// Refuses an address that cannot be listened on and limits the loop cannot run with.
    pub fn validate(&self) -> Result<(), String> {
        check_listen(&self.listen)?;
        for (key, secs) in [
            (
                "server.header_read_timeout_secs",
                self.header_read_timeout_secs,
            ),
            ("server.request_timeout_secs", self.request_timeout_secs),
            ("server.idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if secs == 0 || secs > MAX_TIMEOUT_SECS {
                return Err(format!("{key} must be between 1 and {MAX_TIMEOUT_SECS}"));
            }
        }
        if self.shutdown_grace_secs > MAX_TIMEOUT_SECS {
            return Err(format!(
                "server.shutdown_grace_secs must be at most {MAX_TIMEOUT_SECS}"
            ));
        }
        if self.max_connections == 0 || self.max_connections > 1_000_000 {
            return Err("server.max_connections must be between 1 and 1000000".into());
        }
        Ok(())
    }

    /// The connection loop's limits.
    pub fn limits(&self) -> crate::listener::Limits {
        crate::listener::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            request_timeout: Some(std::time::Duration::from_secs(self.request_timeout_secs)),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
        }
    }
}

/// `ip:port`, `[ipv6]:port` or `host:port` with a port of 0 to 65535; the address is not
/// shown back in the refusal beyond the key's name.
fn check_listen(listen: &str) -> Result<(), String> {
    check_address("server.listen", listen)
}

/// Like `server.listen`'s check, for the address under `key`.
pub(crate) fn check_address(key: &str, listen: &str) -> Result<(), String> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let refuse = |why: &str| Err(format!("{key} {why}"));
    let Some((host, port)) = listen.rsplit_once(':') else {
        return refuse("must be an address with a port, such as 127.0.0.1:8080");
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err()
    {
        return refuse("has a port that is not a number from 0 to 65535");
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !name_ok {
        return refuse("must be an IP address or a host name, followed by :port");
    }
    Ok(())
}

/// Storage settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://keyward.db` (the default) or `postgres://…`.
    pub url: String,
    /// PostgreSQL schema (created if missing); empty for the server's default.
    pub schema: String,
    /// Pooled connections at most.
    pub max_connections: u32,
    /// SQLite: `full` (the default: a commit is on disk before it is acknowledged) or
    /// `normal` (faster; an OS crash can lose the last acknowledged commits).
    pub sqlite_synchronous: keyward_store::SqliteSync,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://keyward.db".into(),
            schema: String::new(),
            max_connections: 8,
            sqlite_synchronous: keyward_store::SqliteSync::Full,
        }
    }
}

/// Token settings: hashing, and the first admin of a new workspace.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// Server pepper: when set, secrets are stored as HMAC-SHA256 keyed with it. Changing it
    /// invalidates every existing token. Empty for plain SHA-256.
    pub pepper: String,
    /// The rate limit of a new workspace's "Workspace Admin" role (and so of its first token),
    /// set when the workspace is created. No token can hand out a higher limit than its own, so
    /// this is also the highest limit that workspace's admin can give.
    pub admin_rate_limit_per_minute: u32,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            pepper: String::new(),
            admin_rate_limit_per_minute: crate::bootstrap::ADMIN_RATE_LIMIT_PER_MINUTE,
        }
    }
}

impl fmt::Debug for TokensConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokensConfig")
            .field(
                "pepper",
                &if self.pepper.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field(
                "admin_rate_limit_per_minute",
                &self.admin_rate_limit_per_minute,
            )
            .finish()
    }
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info` or `keyward_server=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A layer has a key keyward does not know, or a value of the wrong type.
    #[error("{source_name}: {message}")]
    Invalid {
        /// Which layer: the file's path, or the variable's name.
        source_name: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Defaults, then the TOML file (if any), then `KEYWARD_*__*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        match file {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: shown.clone(),
                    message: e.to_string(),
                })?;
                Self::from_layers(Some((&shown, &text)), env)
            }
            None => Self::from_layers(None, env),
        }
    }

    /// Like [`Config::load`], with the file's text given: `(name shown in errors, text)`.
    pub fn from_layers(
        file: Option<(&str, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut tree =
            serde_json::to_value(Config::default()).map_err(|e| invalid("defaults", e))?;
        if let Some((shown, text)) = file {
            let table: toml::Table = toml::from_str(text).map_err(|e| invalid(shown, e))?;
            let layer = serde_json::to_value(table).map_err(|e| invalid(shown, e))?;
            merge(&mut tree, layer);
            // Deserialise now so an unknown key is blamed on the file, not on the result.
            serde_json::from_value::<Config>(tree.clone()).map_err(|e| invalid(shown, e))?;
        }
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("KEYWARD_") && k.contains("__"))
            .collect();
        vars.sort();
        for (name, raw) in vars {
            set_from_env(&mut tree, &name, &raw)?;
        }
        serde_json::from_value(tree).map_err(|e| invalid("configuration", e))
    }
}

fn invalid(source_name: &str, e: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        source_name: source_name.to_owned(),
        message: e.to_string(),
    }
}

fn merge(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Object(b), Value::Object(l)) => {
            for (k, v) in l {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Sets `KEYWARD_SECTION__KEY=raw`, reading `raw` as the type the key already has.
fn set_from_env(tree: &mut Value, name: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = name["KEYWARD_".len()..]
        .split("__")
        .map(str::to_lowercase)
        .collect();
    let unknown = || invalid(name, "no such configuration key");
    let mut slot = &mut *tree;
    for key in &path {
        slot = slot.get_mut(key.as_str()).ok_or_else(unknown)?;
    }
    let value = match slot {
        Value::Object(_) => return Err(invalid(name, "names a section, not a key")),
        Value::Bool(_) => Value::Bool(match raw.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => return Err(invalid(name, "expected true or false")),
        }),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Value::Number(_) => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| invalid(name, "expected a whole number"))?,
        _ => Value::String(raw.to_owned()),
    };
    *slot = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's configuration block, as written, is the defaults: every key it shows
    /// exists, and every value it shows is the one keyward uses without it.
    #[test]
    fn the_readme_block_is_the_defaults() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split_once("\n## Configuration\n")
            .map_or("", |(_, rest)| rest);
        let block = section
            .split_once("```toml\n")
            .and_then(|(_, rest)| rest.split_once("```"))
            .map_or("", |(block, _)| block);
        assert!(
            block.contains("[server]") && block.contains("[leaks]"),
            "{block}"
        );
        let loaded = Config::from_layers(Some(("README.md", block)), Vec::new()).unwrap();
        assert_eq!(loaded, Config::default());
    }

    /// The README's forward-auth example is a configuration keyward starts with.
    #[test]
    fn the_readme_route_table_is_valid() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split_once("\n## Put keyward in front of your API")
            .and_then(|(_, rest)| rest.split_once("```toml\n"))
            .and_then(|(_, rest)| rest.split_once("```"))
            .map_or("", |(block, _)| block);
        let loaded = Config::from_layers(Some(("README.md", block)), Vec::new()).unwrap();
        let rules = keyward_gate::edge::EdgeRules::from_config(&loaded.edge).unwrap();
        assert_eq!(rules.table().len(), 3);
        assert_eq!(loaded.policy.trusted_proxies, ["127.0.0.1"]);
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = std::env::temp_dir().join(format!("kwcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keyward.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"0.0.0.0:9000\"\n[cache]\nttl_secs = 5\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("KEYWARD_CACHE__TTL_SECS", "7"),
                ("KEYWARD_TOKEN", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.cache.ttl_secs, 7);
        assert_eq!(c.database, DatabaseConfig::default());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let dir = std::env::temp_dir().join(format!("kwcfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keyward.toml");
        std::fs::write(&file, "[server]\nlisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), env(&[])).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        let err = Config::load(None, env(&[("KEYWARD_SERVER__LISEN", "x")])).unwrap_err();
        assert!(err.to_string().contains("KEYWARD_SERVER__LISEN"), "{err}");
        let err = Config::load(None, env(&[("KEYWARD_CACHE__TTL_SECS", "soon")])).unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
    }

    #[test]
    fn pepper_is_never_printed() {
        let mut c = Config::default();
        c.tokens.pepper = "super-secret-pepper".into();
        assert!(!format!("{c:?}").contains("super-secret-pepper"));
    }

    #[test]
    fn server_settings_are_checked() {
        for ok in [
            "127.0.0.1:8080",
            "[::]:0",
            "0.0.0.0:65535",
            "localhost:8080",
            "kw.internal:1",
        ] {
            assert!(check_listen(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:99999",
            "127.0.0.1",
            ":8080",
            "127.0.0.1:",
            "a b:80",
            "h:+80",
        ] {
            let e = check_listen(bad).unwrap_err();
            assert!(e.starts_with("server.listen"), "{bad}: {e}");
        }
        assert!(ServerConfig::default().validate().is_ok());
        let zero = ServerConfig {
            header_read_timeout_secs: 0,
            ..ServerConfig::default()
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .contains("header_read_timeout_secs"));
        let none = ServerConfig {
            max_connections: 0,
            ..ServerConfig::default()
        };
        assert!(none.validate().unwrap_err().contains("max_connections"));
        let c = Config::load(
            None,
            env(&[("KEYWARD_DATABASE__SQLITE_SYNCHRONOUS", "normal")]),
        );
        assert_eq!(
            c.unwrap().database.sqlite_synchronous,
            keyward_store::SqliteSync::Normal
        );
        let bad = Config::load(
            None,
            env(&[("KEYWARD_DATABASE__SQLITE_SYNCHRONOUS", "off")]),
        );
        assert!(bad.is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const SECTIONS: [&str; 13] = [
            "server", "database", "tokens", "cache", "policy", "log", "usage", "webhooks",
            "expiry", "leaks", "audit", "edge", "gateway",
        ];

        fn known_keys(section: &str) -> Vec<String> {
            let tree = serde_json::to_value(Config::default()).unwrap();
            tree[section]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn no_text_panics(text in "\\PC{0,200}") {
                let _ = Config::from_layers(Some(("f.toml", &text)), Vec::new());
            }

            #[test]
            fn no_toml_ish_text_panics(
                lines in proptest::collection::vec(
                    ("(\\[[a-z_.]{0,12}\\])?", "[a-z_]{1,24}", prop_oneof![
                        Just("1".to_owned()), Just("-1".to_owned()), Just("true".to_owned()),
                        Just("\"x\"".to_owned()), Just("[]".to_owned()), Just("[\"a\"]".to_owned()),
                        Just("99999999999999999999".to_owned()), Just("{}".to_owned()),
                        "[0-9a-z\"\\[\\]{},.=]{0,12}",
                    ]),
                    0..8,
                ),
            ) {
                let text: String = lines
                    .iter()
                    .map(|(table, key, value)| format!("{table}\n{key} = {value}\n"))
                    .collect();
                let _ = Config::from_layers(Some(("f.toml", &text)), Vec::new());
            }

            #[test]
            fn no_environment_panics(key in "[A-Z_]{0,30}", value in "\\PC{0,30}") {
                let _ = Config::from_layers(None, vec![(format!("KEYWARD_{key}"), value)]);
            }

            #[test]
            fn unknown_keys_are_refused_with_their_name(
                section in proptest::sample::select(SECTIONS.to_vec()),
                key in "[a-z][a-z_]{2,20}",
            ) {
                prop_assume!(!known_keys(section).contains(&key));
                let text = format!("[{section}]\n{key} = 1\n");
                let err = Config::from_layers(Some(("f.toml", &text)), Vec::new()).unwrap_err();
                prop_assert!(err.to_string().contains(&key), "{}", err);
                let var = format!("KEYWARD_{}__{}", section.to_uppercase(), key.to_uppercase());
                let err = Config::from_layers(None, vec![(var.clone(), "1".into())]).unwrap_err();
                prop_assert!(err.to_string().contains(&var), "{}", err);
            }

            #[test]
            fn unknown_sections_are_refused(section in "[a-z][a-z_]{2,20}") {
                prop_assume!(!SECTIONS.contains(&section.as_str()));
                let text = format!("[{section}]\nx = 1\n");
                prop_assert!(Config::from_layers(Some(("f.toml", &text)), Vec::new()).is_err());
            }
        }
    }

    #[test]
    fn config_comes_from_the_usage_section_and_its_variables() {
        let env = [
            ("KEYWARD_USAGE__WHEN_FULL", "wait"),
            ("KEYWARD_USAGE__BATCH_SIZE", "10"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.usage.when_full, keyward_gate::usage::WhenFull::Wait);
        assert_eq!(c.usage.batch_size, 10);
        assert_eq!(c.usage.raw_retention_days, 30);
        let bad = [("KEYWARD_USAGE__WHEN_FULL".to_owned(), "block".to_owned())];
        assert!(Config::load(None, bad).is_err());
    }

    #[test]
    fn config_comes_from_the_audit_section_and_is_checked() {
        let env =
            [("KEYWARD_AUDIT__DENIAL_MAX_KEYS", "3")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.audit.denial_max_keys, 3);
        assert_eq!(c.audit.denial_flush_secs, 60);
        assert!(c.audit.validate().is_ok());
        let zero = keyward_gate::denials::AuditConfig {
            denial_flush_secs: 0,
            ..keyward_gate::denials::AuditConfig::default()
        };
        assert!(zero.validate().unwrap_err().contains("denial_flush_secs"));
        let bad = [("KEYWARD_AUDIT__DENIAL_FLUSH".to_owned(), "1".to_owned())];
        assert!(Config::load(None, bad).is_err());
        let per_ws = [("KEYWARD_AUDIT__DENIAL_MAX_KEYS_PER_WORKSPACE", "0")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = Config::load(None, per_ws).unwrap();
        assert!(c
            .audit
            .validate()
            .unwrap_err()
            .contains("denial_max_keys_per_workspace"));
    }

    #[test]
    fn the_chain_key_is_never_printed() {
        let key = "cd".repeat(32);
        let env = [("KEYWARD_AUDIT__CHAIN_KEY".to_owned(), key.clone())];
        let c = Config::load(None, env).unwrap();
        assert_eq!(c.audit.chain_key, key);
        assert!(!format!("{c:?}").contains(&key));
    }
}
