//! The wire protocol (SPEC §9.3–9.6), without IO.
//!
//! # Layout
//! - [`frame`]: the 4-byte frame header, op numbers, fragmentation.
//! - [`reassembly`]: bounded reassembly per (claim, request id).
//! - [`data`]: binary data-plane bodies (transfers, replies, credit, streams).
//! - [`control`]: JSON control-plane bodies (HELLO, LIST, OPEN, OPENED, …).
//!
//! Byte layouts are documented in `docs/usb-protocol.md`.

pub mod control;
pub mod data;
pub mod flow;
pub mod frame;
pub mod reassembly;

pub use control::{
    ClosedReason, DeviceDescription, DeviceFilter, DeviceInfo, EndpointInfo, ErrorCode,
    InterfaceInfo,
};
pub use data::{
    ConfigOp, Setup, TransferFlags, TransferKind, TransferReply, TransferRequest, TransferStatus,
};
pub use frame::{Frame, FrameError, Message, Op};
pub use reassembly::{Reassembler, ReassemblyError};
