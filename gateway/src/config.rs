//! The gateway's configuration: one typed TOML file, parsed and checked completely (files
//! readable, certificates parsable, addresses valid) before any port is bound, so a mistake stops
//! the gateway with the field named instead of surfacing on the first request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use tracenet_ids::NodeId;

use crate::i18n::Lang;

/// Why a configuration cannot be used. None of these is fixed by retrying.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML does not match the expected shape (the message names the field).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address the web console and JSON API listen on, e.g. `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Folder for the gateway's own store (users, sessions, tokens, access log).
    pub data_dir: PathBuf,
    /// The node this gateway fronts.
    pub node: NodeLink,
    /// Serve HTTPS with this certificate; without it the gateway serves plain HTTP, which it
    /// allows on a loopback address only (behind a TLS-terminating proxy).
    #[serde(default)]
    pub tls: Option<HttpsFiles>,
    /// Session lifetimes.
    #[serde(default)]
    pub session: SessionConfig,
    /// Login throttling.
    #[serde(default)]
    pub login: LoginConfig,
    /// Language used before a user picks one: `en` or `fr`.
    #[serde(default)]
    pub default_language: Lang,
    /// The kind of agency this gateway's officers belong to, as stated in federated requests:
    /// `police`, `customs`, `border_guard`, `military` or `other`.
    #[serde(default = "default_agency")]
    pub agency_kind: String,
    /// Milliseconds a federated lookup or query waits for peers.
    #[serde(default = "default_deadline_ms")]
    pub federated_deadline_ms: u32,
    /// The Prometheus scrape endpoint (`/metrics`, `/healthz`, `/readyz`, plain HTTP) on a
    /// listener of its own. Without this section none is opened.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// The `[metrics]` section: where the scrape endpoint listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the scrape listener (default `127.0.0.1:9465`: loopback, since it is served
    /// without TLS).
    #[serde(default = "default_metrics_listen")]
    pub listen: SocketAddr,
}

fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9465))
}

fn default_agency() -> String {
    "police".into()
}

fn default_deadline_ms() -> u32 {
    3000
}

/// How the gateway reaches its node's local API (mutual TLS with the gateway's certificate).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLink {
    /// The node's id, e.g. `FRA-POL`: the server name its certificate must carry.
    pub node_id: NodeId,
    /// The node's local API address, e.g. `127.0.0.1:7401`.
    pub address: String,
    /// The federation CA certificate (PEM).
    pub ca: PathBuf,
    /// The gateway's own certificate (PEM), issued for `spiffe://tracenet/gateway/<NODE_ID>`.
    pub cert: PathBuf,
    /// The gateway's private key (PEM).
    pub key: PathBuf,
}

/// Certificate and key the gateway serves HTTPS with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Session lifetimes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Minutes without a request after which a session ends.
    pub idle_minutes: u32,
    /// Hours after login after which a session ends whatever the activity.
    pub absolute_hours: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_minutes: 30,
            absolute_hours: 12,
        }
    }
}

/// Login throttling: after `max_failures` failed logins for one user name within
/// `window_secs`, further attempts for that name are refused for `lockout_secs`; after
/// `address_max_failures` failed logins from one client address (any names) within the window,
/// attempts from that address are refused for `lockout_secs` too (see `auth::throttle`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed attempts allowed per user name within the window.
    pub max_failures: u32,
    /// The window, in seconds.
    pub window_secs: u64,
    /// How long further attempts are refused, in seconds.
    pub lockout_secs: u64,
    /// Failed attempts allowed per client address within the window.
    pub address_max_failures: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_failures: 5,
            window_secs: 300,
            lockout_secs: 300,
            address_max_failures: 20,
        }
    }
}

impl GatewayConfig {
    /// Reads and checks a configuration file. Relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg: GatewayConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if let Some(base) = path.parent() {
            cfg.resolve_paths(base);
        }
        cfg.check()?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.node.ca);
        fix(&mut self.node.cert);
        fix(&mut self.node.key);
        if let Some(t) = &mut self.tls {
            fix(&mut t.cert);
            fix(&mut t.key);
        }
    }

    /// Checks values that the types alone do not.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return bad(
                "listen: plain HTTP is allowed on a loopback address only; add a [tls] section",
            );
        }
        if self.session.idle_minutes == 0 || self.session.absolute_hours == 0 {
            return bad("session: lifetimes must be at least 1");
        }
        if self.login.max_failures == 0 || self.login.address_max_failures == 0 {
            return bad("login.max_failures and login.address_max_failures must be at least 1");
        }
        if self.federated_deadline_ms == 0 || self.federated_deadline_ms > 60_000 {
            return bad("federated_deadline_ms must be between 1 and 60000");
        }
        if self.agency().is_none() {
            return bad("agency_kind must be police, customs, border_guard, military or other");
        }
        Ok(())
    }

    /// The agency kind as the protocol names it.
    pub fn agency(&self) -> Option<tracenet_proto::v1::AgencyKind> {
        tracenet_proto::v1::AgencyKind::from_str_name(&format!(
            "AGENCY_KIND_{}",
            self.agency_kind.to_ascii_uppercase()
        ))
        .filter(|a| *a != tracenet_proto::v1::AgencyKind::Unspecified)
    }

    /// The DNS name the node's certificate carries (what the gateway checks when dialling).
    pub fn node_dns_name(&self) -> String {
        self.node.node_id.dns_name()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
listen = "127.0.0.1:8080"
data_dir = "data"
[node]
node_id = "FRA-POL"
address = "127.0.0.1:7401"
ca = "certs/ca.pem"
cert = "certs/FRA-POL/gateway.pem"
key = "certs/FRA-POL/gateway.key"
"#;

    #[test]
    fn minimal_config_gets_defaults_and_resolved_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gw.toml");
        std::fs::write(&p, MINIMAL).unwrap();
        let cfg = GatewayConfig::load(&p).unwrap();
        assert_eq!(cfg.session.idle_minutes, 30);
        assert_eq!(cfg.default_language, Lang::En);
        assert_eq!(cfg.data_dir, dir.path().join("data"));
        assert_eq!(cfg.node_dns_name(), "fra-pol.node.tracenet.test");
    }

    #[test]
    fn the_documented_example_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/examples/gateway.toml");
        let cfg = GatewayConfig::load(&path).unwrap();
        assert_eq!(cfg.node.node_id.as_str(), "FRA-POL");
        assert_eq!(cfg.login.max_failures, 5);
        assert_eq!(cfg.metrics.unwrap().listen.to_string(), "127.0.0.1:9465");
    }

    #[test]
    fn plain_http_off_loopback_is_refused() {
        let text = MINIMAL.replace("127.0.0.1:8080", "0.0.0.0:8080");
        let cfg: GatewayConfig = toml::from_str(&text).unwrap();
        let err = cfg.check().unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let text = format!("{MINIMAL}\nsurprise = 1\n");
        let err = toml::from_str::<GatewayConfig>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("surprise"), "{err}");
    }
}
