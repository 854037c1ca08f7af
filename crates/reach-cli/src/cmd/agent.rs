//! `reach agent`: run the agent on this machine (managed with a key, attended with a code).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use reach_agent::consent::{ConsentPrompt, DenyAll, DesktopPrompt, FilePrompt, TerminalPrompt};
use reach_agent::desktop::DesktopOptions;
use reach_agent::usb::{ConsentOpenPrompt, UsbOptions};
use reach_agent::{AgentConfig, AgentEvent, Credential};
use reach_proto::agent_key::AgentKey;
use reach_proto::support_code::SupportCode;

/// Arguments of `reach agent`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    reach agent --server https://reach.example.com --key-file /etc/reach/agent.key\n  \
    REACH_AGENT_KEY=cak_… reach agent --server https://reach.example.com\n  \
    reach agent --server https://reach.example.com --code ABC-DEF-GHJ\n\n\
    Managed mode (a key) reconnects forever with backoff. Attended mode (a code) serves one\n\
    session and asks the person at this machine for consent first: in the terminal when\n\
    stdin is one, else in a desktop dialog (zenity) when available, else it denies.")]
pub(crate) struct AgentArgs {
    /// Server URL, e.g. https://reach.example.com (the agent connects to /ws/agent).
    #[arg(long, env = "REACH_SERVER")]
    server: String,
    /// Agent key (`cak_…`) issued for this machine. Prefer --key-file or REACH_AGENT_KEY:
    /// command-line arguments are visible to other local users.
    #[arg(long, env = "REACH_AGENT_KEY", hide_env_values = true, conflicts_with_all = ["key_file", "code"])]
    key: Option<String>,
    /// File holding the agent key (first line).
    #[arg(long, conflicts_with = "code")]
    key_file: Option<PathBuf>,
    /// Support code `XXX-XXX-XXX` given by the technician (attended support).
    #[arg(long)]
    code: Option<String>,
    /// Answer consent prompts from this file (`yes` grants, anything else denies); for
    /// scripts and tests. The file is removed after each answer.
    #[arg(long)]
    consent_file: Option<PathBuf>,
    /// X display to share [default: $DISPLAY]. Without a reachable display the agent still
    /// connects and answers consent, but streams no screen and injects no input.
    #[arg(long, env = "REACH_DISPLAY")]
    display: Option<String>,
    /// USB device backend: `system` (usbfs) or `fake` (a demo loopback device `0525:a4a0`, for
    /// tests and demos). Sharing also needs `reach usb enable` and an ACL that allows the device.
    #[arg(long, env = "REACH_USB_BACKEND", default_value = "system")]
    usb_backend: String,
    #[command(flatten)]
    usb_api: super::usb_api::AgentApiArgs,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

pub(crate) fn run(args: AgentArgs) -> anyhow::Result<()> {
    let attended = args.code.is_some();
    init_logging(args.log_json, attended);
    let credential = credential(&args)?;
    let prompt = pick_prompt(args.consent_file.clone());
    tracing::info!(server = %args.server, consent = prompt.name(), "starting the agent");
    let backend = reach_usb::tools::backend_named(&args.usb_backend).map_err(anyhow::Error::msg)?;
    let mut config = AgentConfig::new(args.server, credential, prompt);
    let display = args.display.or_else(|| std::env::var("DISPLAY").ok());
    let desktop = display.and_then(|display| {
        match reach_agent::desktop::capabilities(Some(&display), false) {
            Ok(capabilities) => {
                config.hello.capabilities = Some(capabilities);
                Some(display)
            }
            Err(error) => {
                tracing::warn!(%error, "no screen to share; the agent streams nothing");
                None
            }
        }
    });
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (usb, _api) = runtime.block_on(async {
        let usb_prompt = Arc::new(ConsentOpenPrompt::new(Arc::clone(&config.prompt)));
        let usb = usb_options(backend, usb_prompt);
        let audit = usb.audit.clone();
        let api = super::usb_api::for_agent(&args.usb_api, Arc::clone(&usb.backend), audit).await?;
        anyhow::Ok((usb, api))
    })?;
    config.usb = Some(usb);
    let result = runtime.block_on(async move {
        if let Some(name) = desktop {
            tracing::info!(display = %name, "sharing this display");
            let options = DesktopOptions {
                display: Some(name),
                ..DesktopOptions::default()
            };
            return reach_agent::desktop::serve_desktop(reach_agent::spawn(config), options).await;
        }
        let mut agent = reach_agent::spawn(config);
        while let Some(event) = agent.events.recv().await {
            log_event(&event);
        }
        agent.join().await
    });
    // A prompt may still be waiting for a line on stdin (the person never answered): do not
    // wait for it.
    runtime.shutdown_background();
    match result {
        // An attended session that ends (declined, timed out, or over) is not an error for the
        // person at this machine.
        Err(reach_agent::ClientError::Closed { .. }) if attended => {
            eprintln!("Reach: the support session is over; nothing is shared any more.");
            Ok(())
        }
        other => other.map_err(anyhow::Error::from),
    }
}

/// USB sharing from the host's config directory (ACL, switch, local audit); the switch follows
/// `reach usb enable|disable` while the agent runs; `prompt_on_open` rules are asked through
/// `prompt`. Needs a runtime.
pub(crate) fn usb_options(
    backend: Arc<dyn reach_usb::backend::UsbBackend>,
    prompt: Arc<dyn reach_usb::acl::policy::OpenPrompt>,
) -> UsbOptions {
    let paths = reach_usb::tools::UsbPaths::from_env();
    let options = UsbOptions::from_paths(&paths, backend, prompt);
    options.switch.follow_config(paths);
    options
}

fn credential(args: &AgentArgs) -> anyhow::Result<Credential> {
    if let Some(code) = &args.code {
        return Ok(Credential::Code(SupportCode::parse(code)?));
    }
    let key = match (&args.key, &args.key_file) {
        (Some(key), _) => key.trim().to_owned(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the agent key from {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned(),
        (None, None) => anyhow::bail!(
            "give --key-file, --key (or REACH_AGENT_KEY) for a managed machine, or --code for attended support"
        ),
    };
    Ok(Credential::Key(AgentKey::parse(&key)?))
}

fn pick_prompt(consent_file: Option<PathBuf>) -> Arc<dyn ConsentPrompt> {
    if let Some(path) = consent_file {
        return Arc::new(FilePrompt::new(path));
    }
    if TerminalPrompt::available() {
        return Arc::new(TerminalPrompt);
    }
    if DesktopPrompt::available() {
        return Arc::new(DesktopPrompt);
    }
    tracing::warn!("no way to ask for consent here: every consent request will be denied");
    Arc::new(DenyAll)
}

fn log_event(event: &AgentEvent) {
    match event {
        AgentEvent::Connected {
            machine_id,
            session_id,
        } => {
            tracing::info!(%machine_id, %session_id, "connected");
        }
        AgentEvent::ConsentAnswered {
            session_id,
            granted,
        } => {
            tracing::info!(%session_id, granted, "consent answered");
        }
        AgentEvent::Message(env) => {
            let kind = env
                .body
                .as_ref()
                .map_or("none", reach_proto::codec::body_name);
            tracing::debug!(session = %env.session_id, kind, "message");
        }
        AgentEvent::Disconnected { reason } => tracing::info!(%reason, "disconnected"),
    }
}

/// Logs to stderr; quiet (warnings only) in attended mode, where the person at the machine
/// reads the terminal, unless `RUST_LOG` says otherwise.
fn init_logging(json: bool, attended: bool) {
    let default = if attended { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
