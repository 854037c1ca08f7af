//! The technician's stored login: which server and which login token.
//!
//! `reach login` keeps it in `login.json` in the config directory (the one `reach usb` uses),
//! mode 0600 from creation. `REACH_SERVER` and `REACH_TOKEN` override the stored values, so
//! scripts need no file.

use std::path::{Path, PathBuf};

use reach_usb::tools::UsbPaths;

use crate::ClientError;
use crate::viewer::ApiClient;

/// File name of the stored login in the config directory.
pub const LOGIN_FILE: &str = "login.json";

/// Why a stored login could not be used or kept.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Neither a stored login nor `REACH_SERVER` + `REACH_TOKEN`.
    #[error(
        "not logged in: run `reach login --server URL --user NAME` (or set REACH_SERVER and REACH_TOKEN)"
    )]
    NotLoggedIn,
    /// The login file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A stored or overridden login: where and with which token.
#[derive(Clone)]
pub struct Login {
    /// Server URL.
    pub server: String,
    /// Login token (a bearer token; never printed).
    pub token: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("server", &self.server)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Login {
    /// `REACH_SERVER`/`REACH_TOKEN` over the stored login in `config_dir` (or the default one).
    ///
    /// # Errors
    /// [`LoginError::NotLoggedIn`] when either is missing.
    pub fn load(config_dir: Option<&Path>) -> Result<Self, LoginError> {
        let stored: serde_json::Value = std::fs::read(login_path(config_dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let pick = |var: &str, field: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| stored[field].as_str().map(str::to_owned))
        };
        match (pick("REACH_SERVER", "server"), pick("REACH_TOKEN", "token")) {
            (Some(server), Some(token)) => Ok(Self { server, token }),
            _ => Err(LoginError::NotLoggedIn),
        }
    }

    /// Signs `user` in on `server` and stores the login token in `config_dir` (0600).
    /// Returns the login and the file it was written to.
    ///
    /// # Errors
    /// The server's refusal, or the file that could not be written.
    pub async fn sign_in(
        server: &str,
        user: &str,
        password: &str,
        config_dir: Option<&Path>,
    ) -> Result<(Self, PathBuf), LoginError> {
        let mut api = ApiClient::new(server)?;
        api.login(user, password).await?;
        let login = Self {
            server: server.to_owned(),
            token: api.token().unwrap_or_default().to_owned(),
        };
        let path = login_path(config_dir);
        let body = serde_json::json!({"server": server, "user": user, "token": login.token});
        let bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
        write_private(&path, &bytes).map_err(|source| LoginError::Write {
            path: path.clone(),
            source,
        })?;
        Ok((login, path))
    }

    /// An API client with this login.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] for a server URL that is not http(s) or ws(s).
    pub fn api(&self) -> Result<ApiClient, ClientError> {
        Ok(ApiClient::new(&self.server)?.with_token(self.token.clone()))
    }
}

/// Where the login is stored: `config_dir` or the default config directory.
pub fn login_path(config_dir: Option<&Path>) -> PathBuf {
    let dir = config_dir.map_or_else(|| UsbPaths::from_env().config_dir, Path::to_path_buf);
    dir.join(LOGIN_FILE)
}

/// Writes a file only its owner can read (mode 0600 from creation, then renamed into place).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_login_is_written_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = login_path(Some(dir.path()));
        write_private(&path, br#"{"server":"https://r.example","token":"t0k"}"#).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // Only when the environment does not override it.
        if std::env::var_os("REACH_TOKEN").is_none() && std::env::var_os("REACH_SERVER").is_none() {
            let login = Login::load(Some(dir.path())).unwrap();
            assert_eq!(login.server, "https://r.example");
            assert!(
                !format!("{login:?}").contains("t0k"),
                "the token is never printed"
            );
        }
    }

    #[test]
    fn no_stored_login_is_a_clear_error() {
        if std::env::var_os("REACH_TOKEN").is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let err = Login::load(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("reach login --server"), "{err}");
    }
}
