//! `reach login`: signs a technician in and stores the login token for later commands.
//!
//! The token is kept in `login.json` in the config directory (the one `reach usb` uses), mode
//! 0600. `REACH_TOKEN` (and `REACH_SERVER`) override the stored values, so scripts need no file.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use reach_agent::viewer::ApiClient;
use reach_usb::tools::UsbPaths;
use serde_json::json;

/// File name of the stored login in the config directory.
const LOGIN_FILE: &str = "login.json";

/// Arguments of `reach login`.
#[derive(Debug, Args)]
#[command(
    after_help = "The password is read from REACH_PASSWORD, else from the first line of stdin.\n\
    Example: REACH_PASSWORD=… reach login --server https://reach.example.com --user alice"
)]
pub(crate) struct LoginArgs {
    /// Server URL, e.g. https://reach.example.com.
    #[arg(long, env = "REACH_SERVER")]
    server: String,
    /// User name.
    #[arg(long)]
    user: String,
    /// Config directory [default: REACH_CONFIG_DIR, else $XDG_CONFIG_HOME/reach].
    #[arg(long, env = "REACH_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
}

/// A stored or overridden login: where and with which token.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub(crate) server: String,
    pub(crate) token: String,
}

impl Login {
    /// `REACH_SERVER`/`REACH_TOKEN` over the stored login in `config_dir` (or the default one).
    pub(crate) fn load(config_dir: Option<&Path>) -> anyhow::Result<Self> {
        let path = login_path(config_dir);
        let stored: serde_json::Value = std::fs::read(&path)
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
            _ => bail!(
                "not logged in: run `reach login --server URL --user NAME` (or set REACH_SERVER and REACH_TOKEN)"
            ),
        }
    }

    /// An API client with this login.
    pub(crate) fn api(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient::new(&self.server)?.with_token(self.token.clone()))
    }
}

fn login_path(config_dir: Option<&Path>) -> PathBuf {
    let dir = config_dir.map_or_else(|| UsbPaths::from_env().config_dir, Path::to_path_buf);
    dir.join(LOGIN_FILE)
}

pub(crate) fn run(args: LoginArgs) -> anyhow::Result<()> {
    let password = match std::env::var("REACH_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprint!("Password for {}: ", args.user);
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let token = runtime.block_on(async {
        let mut api = ApiClient::new(&args.server)?;
        api.login(&args.user, &password).await?;
        anyhow::Ok(api.token().unwrap_or_default().to_owned())
    })?;
    let path = login_path(args.config_dir.as_deref());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let body = json!({"server": args.server, "user": args.user, "token": token});
    write_private(&path, &serde_json::to_vec_pretty(&body)?)?;
    println!(
        "Logged in to {} as {}; token stored in {}",
        args.server,
        args.user,
        path.display()
    );
    Ok(())
}

/// Writes a file only its owner can read (mode 0600 from creation, then renamed into place).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
