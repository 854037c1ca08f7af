//! `reach mcp`: serves the Model Context Protocol on stdin/stdout for AI agents (the work is
//! in the `reach-mcp` crate). Logs go to stderr; stdout carries only the protocol.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use reach_client::actions::Context;
use reach_client::login::Login;
use reach_usb::tools::UsbPaths;

/// Arguments of `reach mcp`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example client configuration:\n  {\"mcpServers\": {\"reach\": {\"command\": \"reach\", \
    \"args\": [\"mcp\"], \"env\": {\"REACH_SERVER\": \"https://reach.example.com\", \"REACH_TOKEN\": \"…\"}}}}\n\
    Or run `reach login` once and leave env out."
)]
pub(crate) struct McpArgs {
    /// Config directory (login, USB ACL and switch) [default: REACH_CONFIG_DIR, else
    /// $XDG_CONFIG_HOME/reach].
    #[arg(long, env = "REACH_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
}

pub(crate) fn run(args: McpArgs) -> anyhow::Result<()> {
    // Without a login the host tools still work; server tools answer "not logged in".
    let api = match Login::load(args.config_dir.as_deref()) {
        Ok(login) => Some(login.api()?),
        Err(e) => {
            eprintln!("reach mcp: {e}; only this host's USB tools will work");
            None
        }
    };
    let paths = args
        .config_dir
        .map_or_else(UsbPaths::from_env, |config_dir| UsbPaths { config_dir });
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime
        .block_on(reach_mcp::serve_stdio(Context { api, paths }))
        .map_err(anyhow::Error::msg)
}
