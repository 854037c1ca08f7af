//! `reach`: one binary for the server, the agent, USB tools, automation and the demo.
//!
//! `main` only parses arguments and dispatches; each subcommand lives in its own module
//! under `cmd/`, so the binary stays a thin shell over the library crates.

mod cmd;

use clap::{Parser, Subcommand};

/// Reach: self-hosted remote support and remote access with USB passthrough.
#[derive(Debug, Parser)]
#[command(name = "reach", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Reach server (REST API, web console, relay, audit log).
    Server(cmd::server::ServerArgs),
    /// Host-side USB tools: devices, ACL, passthrough switch, loopback, audit.
    Usb(cmd::usb::UsbArgs),
    /// Try Reach on this computer: a server, a demo admin and an agent sharing this display.
    Demo(cmd::demo::DemoArgs),
    /// Run the agent on this machine: connect out to a server with a key or support code.
    Agent(cmd::agent::AgentArgs),
    /// Measure performance and print figures with units.
    Bench(cmd::bench::BenchArgs),
    /// Sign in as a technician and store the login token (for `reach usb remote`).
    Login(cmd::login::LoginArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => cmd::server::run(args),
        Command::Usb(args) => cmd::usb::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Login(args) => cmd::login::run(args),
    }
}
