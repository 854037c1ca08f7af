//! Server configuration: defaults, then a TOML file, then overrides from flags and
//! environment (the CLI maps both onto [`ConfigOverrides`]). This is the one loader.
//!
//! # Format
//! ```toml
//! listen = "0.0.0.0:8443"
//! data_dir = "/var/lib/reach"
//! database_url = "postgres://reach@db/reach"   # default: SQLite file in data_dir
//! tls_cert = "/etc/reach/cert.pem"
//! tls_key = "/etc/reach/key.pem"
//! trusted_proxies = ["10.0.0.0/8", "127.0.0.1/32"]
//! login_token_ttl_secs = 43200
//! viewer_token_ttl_secs = 300
//! audit_head_interval_secs = 60
//! session_idle_secs = 900
//! max_body_bytes = 65536
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use ipnet::IpNet;

use crate::auth::password::HashCost;
use crate::secrets::SecretString;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Complete server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the SQLite file and the generated secret.
    pub data_dir: PathBuf,
    /// Database URL; default `sqlite://<data_dir>/reach.db`.
    pub database_url: Option<String>,
    /// PEM certificate chain for built-in TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for built-in TLS.
    pub tls_key: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Lifetime of login tokens.
    pub login_token_ttl_secs: u64,
    /// Lifetime of viewer tokens.
    pub viewer_token_ttl_secs: u64,
    /// How often the audit chain head is recorded.
    pub audit_head_interval_secs: u64,
    /// Live sessions nobody watched for this long are ended (`idle`); 0 = never.
    pub session_idle_secs: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Argon2id cost.
    pub password_hash_cost: HashCost,
    /// Token-signing secret (from `REACH_TOKEN_SECRET`); never read from the file.
    #[serde(skip)]
    pub token_secret: Option<SecretString>,
    /// First admin's password (from `REACH_ADMIN_PASSWORD`); never read from the file.
    #[serde(skip)]
    pub admin_password: Option<SecretString>,
    /// Optional bearer token for `/metrics` scrapers (from `REACH_METRICS_TOKEN`).
    #[serde(skip)]
    pub metrics_token: Option<SecretString>,
    /// Public URL of the server (`https://reach.example.com`); browser WebSockets must come
    /// from this origin. Unset: the origin must match the request's `Host`.
    pub public_url: Option<String>,
    /// NATS server (`nats://127.0.0.1:4222`) that several instances on one PostgreSQL database
    /// share as their message bus. Unset: this instance works alone.
    pub nats_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("reach-data"),
            database_url: None,
            tls_cert: None,
            tls_key: None,
            trusted_proxies: Vec::new(),
            login_token_ttl_secs: 12 * 3600,
            viewer_token_ttl_secs: 300,
            audit_head_interval_secs: 60,
            session_idle_secs: 900,
            max_body_bytes: 64 * 1024,
            password_hash_cost: HashCost::default(),
            token_secret: None,
            admin_password: None,
            metrics_token: None,
            public_url: None,
            nats_url: None,
        }
    }
}

/// Values from flags or environment; each `Some` replaces the file's value.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ConfigOverrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub trusted_proxies: Option<Vec<IpNet>>,
    pub login_token_ttl_secs: Option<u64>,
    pub viewer_token_ttl_secs: Option<u64>,
    pub session_idle_secs: Option<u64>,
    pub token_secret: Option<SecretString>,
    pub admin_password: Option<SecretString>,
    pub metrics_token: Option<SecretString>,
    pub public_url: Option<String>,
    pub nats_url: Option<String>,
}

impl Config {
    /// Defaults, then `file` (if any), then `overrides`; validated.
    ///
    /// # Errors
    /// See [`ConfigError`].
    pub fn load(file: Option<&Path>, overrides: ConfigOverrides) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown,
            message: e.message().to_owned(),
        })
    }

    fn apply(&mut self, o: ConfigOverrides) {
        macro_rules! take {
            ($($field:ident),*) => { $( if let Some(v) = o.$field { self.$field = v; } )* };
        }
        take!(
            listen,
            data_dir,
            trusted_proxies,
            login_token_ttl_secs,
            viewer_token_ttl_secs,
            session_idle_secs
        );
        macro_rules! take_opt {
            ($($field:ident),*) => { $( if o.$field.is_some() { self.$field = o.$field; } )* };
        }
        take_opt!(
            database_url,
            tls_cert,
            tls_key,
            token_secret,
            admin_password,
            metrics_token,
            public_url,
            nats_url
        );
    }

    /// Checks ranges and combinations.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the bad value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert and tls_key must be given together");
        }
        if !(60..=30 * 86_400).contains(&self.login_token_ttl_secs) {
            return bad("login_token_ttl_secs must be between 60 and 2592000");
        }
        if !(10..=3600).contains(&self.viewer_token_ttl_secs) {
            return bad("viewer_token_ttl_secs must be between 10 and 3600");
        }
        if self.audit_head_interval_secs == 0 {
            return bad("audit_head_interval_secs must be at least 1");
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return bad("max_body_bytes must be between 1024 and 16777216");
        }
        if let Some(url) = &self.nats_url
            && !["nats://", "tls://"].iter().any(|s| url.starts_with(s))
        {
            return bad("nats_url must start with nats:// or tls://");
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.sqlite_path().display()))
    }

    /// The default SQLite file, `<data_dir>/reach.db`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("reach.db")
    }

    /// A configuration for tests: given data dir, ephemeral loopback port, cheap hashing.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_owned(),
            password_hash_cost: HashCost::insecure_for_tests(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reach.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nviewer_token_ttl_secs = 120\n",
        )
        .unwrap();
        let overrides = ConfigOverrides {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..ConfigOverrides::default()
        };
        let config = Config::load(Some(&path), overrides).unwrap();
        assert_eq!(config.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(config.viewer_token_ttl_secs, 120);
        assert_eq!(config.login_token_ttl_secs, 12 * 3600);
    }

    #[test]
    fn unknown_keys_and_half_tls_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reach.toml");
        std::fs::write(&path, "lissen = \"0.0.0.0:9000\"\n").unwrap();
        assert!(matches!(
            Config::load(Some(&path), ConfigOverrides::default()),
            Err(ConfigError::Parse { .. })
        ));
        let overrides = ConfigOverrides {
            tls_cert: Some("cert.pem".into()),
            ..ConfigOverrides::default()
        };
        assert!(matches!(
            Config::load(None, overrides),
            Err(ConfigError::Invalid(_))
        ));
    }
}
