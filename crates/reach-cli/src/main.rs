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
    /// Sign in as a technician and store the login token (for the commands below and `reach usb remote`).
    Login(cmd::login::LoginArgs),
    /// Machines of your tenant: list, show, create, update, delete.
    Machines(cmd::ops::OpsArgs<cmd::ops::Machines>),
    /// Agent keys of a machine: issue, list, revoke.
    Keys(cmd::ops::OpsArgs<cmd::ops::Keys>),
    /// One-time support codes: create, list, revoke.
    Codes(cmd::ops::OpsArgs<cmd::ops::Codes>),
    /// Sessions: list, open, end.
    Sessions(cmd::ops::OpsArgs<cmd::ops::Sessions>),
    /// Users of your tenant: list, create, update, delete.
    Users(cmd::ops::OpsArgs<cmd::ops::Users>),
    /// The tenant's audit chain: verify, list.
    Audit(cmd::ops::OpsArgs<cmd::ops::Audit>),
    /// Run a JSON action file: server, host USB and remote USB steps in order (automation).
    Run(cmd::run::RunArgs),
    /// Serve the Model Context Protocol on stdio: Reach's operations as tools for AI agents.
    Mcp(cmd::mcp::McpArgs),
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
        Command::Machines(a) => cmd::ops::run(cmd::ops::Verb::Machines(a.verb), &a.common),
        Command::Keys(a) => cmd::ops::run(cmd::ops::Verb::Keys(a.verb), &a.common),
        Command::Codes(a) => cmd::ops::run(cmd::ops::Verb::Codes(a.verb), &a.common),
        Command::Sessions(a) => cmd::ops::run(cmd::ops::Verb::Sessions(a.verb), &a.common),
        Command::Users(a) => cmd::ops::run(cmd::ops::Verb::Users(a.verb), &a.common),
        Command::Audit(a) => cmd::ops::run(cmd::ops::Verb::Audit(a.verb), &a.common),
        Command::Run(args) => cmd::run::run(args),
        Command::Mcp(args) => cmd::mcp::run(args),
    }
}
