//! `reach run FILE.json|-`: runs an action file (see `reach_client::actions`). Parsing,
//! printing and exit codes only.
//!
//! Exit codes: 0 every step succeeded (or `--dry-run` found the file valid); 1 a step failed
//! (the steps before it ran, none after); 2 the file is invalid or a login is missing (nothing
//! ran).

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use reach_client::actions::{self, ActionError, Context, Plan, StepReport};
use reach_client::login::Login;
use reach_usb::tools::UsbPaths;

/// Arguments of `reach run`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 done, 1 a step failed (later steps not run), 2 invalid file \
    or not logged in (nothing ran).\nExample step: {\"step\": \"code\", \"op\": \"support_code_create\", \
    \"access\": \"view_only\"}; a later step can use \"$steps.code.code\"."
)]
pub(crate) struct RunArgs {
    /// The action file, or `-` for standard input.
    #[arg(required_unless_present = "schema")]
    file: Option<PathBuf>,
    /// Check the file and print the steps; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// One JSON line per step instead of text.
    #[arg(long)]
    json: bool,
    /// Print the JSON Schema of action files and exit.
    #[arg(long, conflicts_with_all = ["file", "dry_run"])]
    schema: bool,
    /// Config directory (login, USB ACL and switch) [default: REACH_CONFIG_DIR, else
    /// $XDG_CONFIG_HOME/reach].
    #[arg(long, env = "REACH_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
}

/// Exit code for a file that was refused before anything ran.
const INVALID: i32 = 2;

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    if args.schema {
        println!("{}", serde_json::to_string_pretty(&actions::schema())?);
        return Ok(());
    }
    let text = read(args.file.as_deref().unwrap_or(std::path::Path::new("-")))?;
    let plan = match Plan::parse(&text) {
        Ok(plan) => plan,
        Err(e) => invalid(&e.to_string()),
    };
    let login = Login::load(args.config_dir.as_deref());
    if plan.needs_login()
        && let Err(e) = &login
    {
        invalid(&e.to_string());
    }
    if args.dry_run {
        for step in &plan.steps {
            let line = serde_json::json!({"step": step.number, "id": step.id, "op": step.op, "args": step.raw});
            if args.json {
                println!("{line}");
            } else {
                println!("{:>3}. {} ({}) {}", step.number, step.op, step.id, step.raw);
            }
        }
        if !args.json {
            println!(
                "{} steps checked; nothing was run (--dry-run).",
                plan.steps.len()
            );
        }
        return Ok(());
    }
    let api = match login {
        Ok(login) => Some(login.api()?),
        Err(_) => None,
    };
    let paths = args
        .config_dir
        .clone()
        .map_or_else(UsbPaths::from_env, |config_dir| UsbPaths { config_dir });
    let cx = Context { api, paths };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let json = args.json;
    match runtime.block_on(actions::run(&plan, &cx, |r| print_step(r, json))) {
        Ok(()) => Ok(()),
        Err(ActionError::Invalid(m)) => invalid(&m),
        Err(e @ ActionError::Step { .. }) => Err(anyhow::anyhow!(e)),
    }
}

fn print_step(r: &StepReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
    } else if r.ok {
        println!("ok   {:>3}. {} ({}) {}", r.step, r.op, r.id, r.result);
    } else {
        println!("FAIL {:>3}. {} ({})", r.step, r.op, r.id);
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the action file from stdin")?;
    } else {
        text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    Ok(text)
}

fn invalid(message: &str) -> ! {
    eprintln!("Error: {message}");
    std::process::exit(INVALID)
}
