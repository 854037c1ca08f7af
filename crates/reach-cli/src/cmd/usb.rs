//! `reach usb …`.

use clap::Args;

/// Arguments of `reach usb`.
#[derive(Debug, Args)]
pub(crate) struct UsbArgs {}

pub(crate) fn run(_args: UsbArgs) -> anyhow::Result<()> {
    anyhow::bail!("reach usb is being built (issue 4)")
}
