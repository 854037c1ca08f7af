//! `reach login`: signs a technician in and stores the login token for later commands.
//!
//! The token is kept in `login.json` in the config directory (the one `reach usb` uses), mode
//! 0600. `REACH_TOKEN` (and `REACH_SERVER`) override the stored values, so scripts need no file.

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
pub(crate) use reach_client::login::Login;

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
    let (_, path) = runtime.block_on(Login::sign_in(
        &args.server,
        &args.user,
        &password,
        args.config_dir.as_deref(),
    ))?;
    println!(
        "Logged in to {} as {}; token stored in {}",
        args.server,
        args.user,
        path.display()
    );
    Ok(())
}
