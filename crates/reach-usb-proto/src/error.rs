//! The client-facing error type.

use thiserror::Error;

use crate::proto::{ClosedReason, ErrorCode, TransferStatus};

/// Why a USB operation through Reach failed. Each message says what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsbError {
    /// No answer within the timeout (default 10 s); the request was cancelled on the host.
    #[error("timed out waiting for the device; the request was cancelled")]
    Timeout,
    /// The host's ACL or operator refused.
    #[error("denied by the host's USB policy: {0}")]
    Denied(String),
    /// No such device, or it was unplugged.
    #[error("no device: {0}")]
    NoDevice(String),
    /// The claim or the connection is closed.
    #[error("claim closed ({0}); open the device again")]
    Closed(String),
    /// The endpoint stalled; clear the halt before retrying.
    #[error("endpoint stalled; call clear_halt before retrying")]
    Stall,
    /// The transfer was cancelled.
    #[error("transfer cancelled")]
    Cancelled,
    /// The transfer ended with another status.
    #[error("transfer failed with status {}", .0.as_str())]
    Transfer(TransferStatus),
    /// The peer sent more than its credit allowed.
    #[error("credit exhausted: the peer sent beyond its flow-control window")]
    CreditExhausted,
    /// The device is in use elsewhere.
    #[error("device busy: {0}")]
    Busy(String),
    /// The peer broke the protocol or reported a protocol error.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl UsbError {
    /// Maps a host ERROR to a typed error.
    pub fn from_code(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::Denied => Self::Denied(message),
            ErrorCode::NoDevice => Self::NoDevice(message),
            ErrorCode::CreditExhausted => Self::CreditExhausted,
            ErrorCode::Busy => Self::Busy(message),
            _ => Self::Protocol(format!("{code:?}: {message}")),
        }
    }

    /// Maps a non-ok transfer status.
    pub fn from_status(status: TransferStatus) -> Self {
        match status {
            TransferStatus::Stall => Self::Stall,
            TransferStatus::NoDevice => Self::NoDevice("device unplugged".into()),
            TransferStatus::Cancelled => Self::Cancelled,
            TransferStatus::Timeout => Self::Timeout,
            other => Self::Transfer(other),
        }
    }

    /// A claim closed for `reason`.
    pub fn closed(reason: ClosedReason) -> Self {
        Self::Closed(format!("{reason:?}").to_lowercase())
    }
}
