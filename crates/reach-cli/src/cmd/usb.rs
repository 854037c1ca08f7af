//! `reach usb …`: host-side USB tools (devices, ACL, passthrough switch, loopback, audit);
//! `attach`/`detach`/`attached`/`serve` are in `usb_attach`.
//!
//! Thin: parsing and printing only; the work is in `reach_usb::tools`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use reach_usb::acl::{AclRule, Verdict};
use reach_usb::ops::HostOp;
use reach_usb::proto::DeviceFilter;
use reach_usb::proto::control::hex16;
use reach_usb::tools::{self, UsbPaths};
use serde_json::json;

/// Arguments of `reach usb`.
#[derive(Debug, Args)]
pub(crate) struct UsbArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Config directory (ACL, switch, audit log).
    #[arg(long, global = true, env = "REACH_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Device backend: `system` (usbfs) or `fake` (a demo loopback device, for trying things out).
    #[arg(
        long,
        global = true,
        env = "REACH_USB_BACKEND",
        default_value = "system",
        hide = true
    )]
    backend: String,
    #[command(subcommand)]
    what: UsbCommand,
}

#[derive(Debug, Subcommand)]
enum UsbCommand {
    /// Turn USB passthrough on (persisted in the config directory).
    Enable,
    /// Turn USB passthrough off.
    Disable,
    /// Show whether passthrough is on and why, and the ACL's integrity.
    Status,
    /// List local USB devices with the ACL's verdict.
    List,
    /// Show or edit the ACL.
    Acl {
        #[command(subcommand)]
        what: AclCommand,
    },
    /// Run the full protocol stack in-process against local devices.
    Loopback {
        #[command(subcommand)]
        what: LoopbackCommand,
    },
    /// Use a device of a remote machine through a live session (after `reach login`).
    Remote {
        #[command(subcommand)]
        what: super::usb_remote::RemoteCommand,
    },
    /// Use a remote machine's device in this machine's kernel through a live session (or a
    /// `reach usb serve` host), via vhci-hcd; needs root.
    Attach(super::usb_attach::AttachArgs),
    /// Detach a device attached with `reach usb attach`.
    Detach(super::usb_attach::DetachArgs),
    /// List devices attached through vhci-hcd, with throughput (bytes each way, transfers).
    Attached(super::usb_attach::AttachedArgs),
    /// Serve this machine's devices over TCP on a loopback address (for `attach --via tcp://`),
    /// and the host USB REST API (default 127.0.0.1:9939; token in `usb-api-token`).
    Serve(super::usb_attach::ServeArgs),
    /// The local tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    /// Show the rules and integrity state.
    List,
    /// Add a rule (first match wins; new rules go last unless --first).
    Add(RuleArgs),
    /// Remove the rule at an index (as shown by `acl list`).
    Remove {
        /// 0-based index.
        index: usize,
    },
    /// Set the verdict when no rule matches.
    Default {
        /// allow or deny.
        verdict: VerdictArg,
    },
    /// Write the ACL JSON to a file (or `-` for stdout).
    Export {
        /// Destination.
        file: PathBuf,
    },
    /// Replace the ACL with a JSON file (validated, then signed).
    Import {
        /// Source.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerdictArg {
    Allow,
    Deny,
}

#[derive(Debug, Args)]
struct RuleArgs {
    /// idVendor, hex (e.g. 1050).
    #[arg(long, value_parser = parse_hex16)]
    vendor_id: Option<u16>,
    /// idProduct, hex.
    #[arg(long, value_parser = parse_hex16)]
    product_id: Option<u16>,
    /// Serial number (omit to match any).
    #[arg(long)]
    serial: Option<String>,
    /// Interface class (decimal).
    #[arg(long)]
    interface_class: Option<u8>,
    /// Port path, e.g. 1-2.3.
    #[arg(long)]
    port_path: Option<String>,
    /// Label.
    #[arg(long)]
    label: Option<String>,
    /// Make it a deny rule.
    #[arg(long)]
    deny: bool,
    /// Ask the host operator on every open.
    #[arg(long)]
    prompt: bool,
    /// Insert before existing rules.
    #[arg(long)]
    first: bool,
}

#[derive(Debug, Subcommand)]
enum LoopbackCommand {
    /// List devices as a remote viewer would see them (ACL-filtered).
    List,
    /// Claim a device through the protocol and read its device descriptor.
    Open {
        /// idVendor, hex.
        #[arg(long, value_parser = parse_hex16)]
        vendor_id: Option<u16>,
        /// idProduct, hex.
        #[arg(long, value_parser = parse_hex16)]
        product_id: Option<u16>,
        /// Serial.
        #[arg(long)]
        serial: Option<String>,
        /// Answer "allow" to prompt_on_open rules.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the hash chain; prints ok or broken_at_id.
    Verify {
        /// Log file (default: usb-audit.jsonl in the config directory).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

fn parse_hex16(text: &str) -> Result<u16, String> {
    hex16::parse(text).ok_or_else(|| format!("{text:?} is not 1-4 hex digits"))
}

struct Out {
    json: bool,
}

impl Out {
    fn print(&self, value: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

pub(crate) fn run(args: UsbArgs) -> anyhow::Result<()> {
    let paths = args
        .config_dir
        .clone()
        .map_or_else(UsbPaths::from_env, |config_dir| UsbPaths { config_dir });
    let out = Out { json: args.json };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.what {
        UsbCommand::Enable | UsbCommand::Disable | UsbCommand::Status => {
            let op = match args.what {
                UsbCommand::Enable => HostOp::UsbPassthroughEnable,
                UsbCommand::Disable => HostOp::UsbPassthroughDisable,
                _ => HostOp::UsbPassthroughStatus,
            };
            rt.block_on(op.run(&paths)).map_err(anyhow::Error::msg)?;
            status(&paths, &out);
            Ok(())
        }
        UsbCommand::List => rt.block_on(list(&paths, &args.backend, &out)),
        UsbCommand::Acl { what } => rt.block_on(acl(&paths, what, &out)),
        UsbCommand::Loopback { what } => rt.block_on(loopback(&paths, &args.backend, what, &out)),
        UsbCommand::Remote { what } => {
            rt.block_on(super::usb_remote::run(args.config_dir, what, args.json))
        }
        UsbCommand::Audit {
            what: AuditCommand::Verify { file },
        } => audit_verify(&paths, file, &out),
        UsbCommand::Attach(a) => rt.block_on(super::usb_attach::attach(
            a,
            args.config_dir.as_deref(),
            args.json,
        )),
        UsbCommand::Detach(a) => super::usb_attach::detach(a, args.json),
        UsbCommand::Attached(a) => {
            super::usb_attach::attached(a.vhci_dir, args.config_dir.as_deref(), args.json)
        }
        UsbCommand::Serve(a) => rt.block_on(super::usb_attach::serve(a, &paths, &args.backend)),
    }
}

fn status(paths: &UsbPaths, out: &Out) {
    let e = paths.passthrough();
    let acl = tools::acl_report(paths);
    out.print(json!({"enabled": e.enabled, "source": e.source, "acl_integrity_ok": acl.integrity_ok, "acl_problem": acl.problem}), || {
        let state = if e.enabled { "on" } else { "off" };
        let integrity = if acl.integrity_ok { "ok".to_owned() } else { format!("FAILED ({})", acl.problem.clone().unwrap_or_default()) };
        format!("USB passthrough: {state} (from {:?})\nACL integrity: {integrity}", e.source)
    });
}

async fn list(paths: &UsbPaths, backend: &str, out: &Out) -> anyhow::Result<()> {
    let backend = tools::backend_named(backend).map_err(anyhow::Error::msg)?;
    let report = tools::list_local(paths, &*backend).await?;
    out.print(serde_json::to_value(&report)?, || {
        let mut text = String::new();
        if !report.usb_bus {
            text.push_str("No USB bus on this machine (no /sys/bus/usb): no devices to share.\n");
        } else if report.devices.is_empty() {
            text.push_str("No USB devices connected.\n");
        }
        for d in &report.devices {
            let name = d.device.product.as_deref().unwrap_or("-");
            let serial = d.device.serial.as_deref().unwrap_or("-");
            text.push_str(&format!(
                "{:<10} {:04x}:{:04x}  {:<6}  serial {serial}  {name}\n",
                d.device.bus_id, d.device.vendor_id, d.device.product_id, d.verdict
            ));
        }
        if !report.acl_integrity_ok {
            text.push_str(&format!(
                "ACL integrity FAILED: everything is denied ({})\n",
                report.acl_problem.clone().unwrap_or_default()
            ));
        }
        text.trim_end().to_owned()
    });
    Ok(())
}

async fn acl(paths: &UsbPaths, what: AclCommand, out: &Out) -> anyhow::Result<()> {
    let op = match what {
        AclCommand::List => None,
        AclCommand::Add(r) => Some(HostOp::UsbAclAdd {
            rule: AclRule {
                vendor_id: r.vendor_id,
                product_id: r.product_id,
                serial: r.serial,
                interface_class: r.interface_class,
                port_path: r.port_path,
                label: r.label,
                allow: !r.deny,
                prompt_on_open: r.prompt,
                ..AclRule::default()
            },
            first: r.first,
        }),
        AclCommand::Remove { index } => Some(HostOp::UsbAclRemove { index }),
        AclCommand::Default { verdict } => Some(HostOp::UsbAclSetDefault {
            verdict: match verdict {
                VerdictArg::Allow => Verdict::Allow,
                VerdictArg::Deny => Verdict::Deny,
            },
        }),
        AclCommand::Export { file } => return acl_export(paths, &file).await,
        AclCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let acl =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("not a valid ACL: {e}"))?;
            Some(HostOp::UsbAclImport { acl })
        }
    };
    if let Some(op) = op {
        op.run(paths).await.map_err(anyhow::Error::msg)?;
    }
    let report = tools::acl_report(paths);
    out.print(serde_json::to_value(&report)?, || {
        let mut text = format!(
            "ACL {}: integrity {}{}, default {:?}\n",
            report.path.display(),
            if report.integrity_ok { "ok" } else { "FAILED" },
            if report.signed {
                ", signed"
            } else {
                ", unsigned"
            },
            report.file.default
        );
        if let Some(p) = &report.problem {
            text.push_str(&format!("problem: {p}\n"));
        }
        for (i, r) in report.file.rules.iter().enumerate() {
            text.push_str(&format!(
                "{i}: {}\n",
                serde_json::to_string(r).unwrap_or_default()
            ));
        }
        text.trim_end().to_owned()
    });
    Ok(())
}

async fn acl_export(paths: &UsbPaths, file: &std::path::Path) -> anyhow::Result<()> {
    let acl = HostOp::UsbAclExport
        .run(paths)
        .await
        .map_err(anyhow::Error::msg)?;
    let text = serde_json::to_string_pretty(&acl)?;
    if file.as_os_str() == "-" {
        println!("{text}");
    } else {
        std::fs::write(file, text + "\n")
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

async fn loopback(
    paths: &UsbPaths,
    backend: &str,
    what: LoopbackCommand,
    out: &Out,
) -> anyhow::Result<()> {
    let backend = tools::backend_named(backend).map_err(anyhow::Error::msg)?;
    match what {
        LoopbackCommand::List => {
            let devices = tools::loopback_list(paths, backend).await?;
            out.print(json!({"devices": devices}), || {
                if devices.is_empty() {
                    return "No shareable devices (none connected, or all denied by the ACL)."
                        .into();
                }
                devices
                    .iter()
                    .map(|d| {
                        format!(
                            "{:<10} {:04x}:{:04x}  {}",
                            d.bus_id,
                            d.vendor_id,
                            d.product_id,
                            d.product.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        LoopbackCommand::Open {
            vendor_id,
            product_id,
            serial,
            yes,
        } => {
            let filter = DeviceFilter {
                vendor_id,
                product_id,
                serial,
                bus_id: None,
            };
            let report = tools::loopback_open(paths, backend, filter, yes).await?;
            out.print(serde_json::to_value(&report)?, || {
                format!(
                    "claim {} opened {} ({}), USB {}\ndevice descriptor: {}",
                    report.claim_id,
                    report.descriptor_ids,
                    report.device.product.as_deref().unwrap_or("-"),
                    report.usb_version,
                    report.device_descriptor
                )
            });
        }
    }
    Ok(())
}

fn audit_verify(paths: &UsbPaths, file: Option<PathBuf>, out: &Out) -> anyhow::Result<()> {
    let path = file.unwrap_or_else(|| paths.audit());
    let report = tools::audit_verify(&path)?;
    out.print(serde_json::to_value(&report)?, || {
        match report.broken_at_id {
            None => format!("ok ({} records)", report.records),
            Some(id) => format!("BROKEN at record {id} ({} records read)", report.records),
        }
    });
    if !report.ok {
        std::process::exit(1);
    }
    Ok(())
}
