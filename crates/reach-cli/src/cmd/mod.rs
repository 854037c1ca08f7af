//! One module per `reach` subcommand.

pub(crate) mod agent;
pub(crate) mod bench;
pub(crate) mod demo;
pub(crate) mod login;
pub(crate) mod mcp;
pub(crate) mod ops;
pub(crate) mod run;
pub(crate) mod server;
mod table;
pub(crate) mod usb;
pub(crate) mod usb_api;
pub(crate) mod usb_attach;
pub(crate) mod usb_echo;
pub(crate) mod usb_remote;
pub(crate) mod usb_session;
