//! What one URB asks for, in Reach terms, and the endpoint table the translator needs (USB/IP
//! headers name an endpoint number, not its transfer type).

use bytes::Bytes;
use reach_usb::proto::{DeviceInfo, Setup, TransferFlags, TransferKind, TransferRequest};

use crate::wire::{CmdSubmit, Direction, URB_ZERO_PACKET};

/// Transfer type of a non-control endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
    /// Isochronous (not supported: its URBs are refused).
    Isochronous,
}

/// Endpoint address → transfer type, for every alternate setting of the active configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointTable {
    kinds: Vec<(u8, EndpointKind)>,
    /// (interface number, endpoint address) for every alternate setting.
    interfaces: Vec<(u8, u8)>,
}

impl EndpointTable {
    /// The endpoints a Reach device description lists.
    pub fn from_device(device: &DeviceInfo) -> Self {
        let mut table = Self::default();
        for i in &device.interfaces {
            let pairs = i.endpoints.iter().map(|e| (i.number, e.address));
            table.interfaces.extend(pairs);
        }
        for e in device.interfaces.iter().flat_map(|i| i.endpoints.iter()) {
            let kind = match e.kind.as_str() {
                "bulk" => EndpointKind::Bulk,
                "interrupt" => EndpointKind::Interrupt,
                "isochronous" => EndpointKind::Isochronous,
                _ => continue,
            };
            table = table.with(e.address, kind);
        }
        table
    }

    /// Adds (or replaces) an endpoint.
    pub fn with(mut self, address: u8, kind: EndpointKind) -> Self {
        self.kinds.retain(|(a, _)| *a != address);
        self.kinds.push((address, kind));
        self
    }

    /// Records that `endpoint` belongs to `interface`.
    pub fn with_interface(mut self, interface: u8, endpoint: u8) -> Self {
        self.interfaces.push((interface, endpoint));
        self
    }

    /// The endpoints of an interface (in any of its alternate settings).
    pub fn interface_endpoints(&self, interface: u8) -> Vec<u8> {
        self.interfaces
            .iter()
            .filter(|(i, _)| *i == interface)
            .map(|(_, e)| *e)
            .collect()
    }

    /// The type of the endpoint at `address` (bit 7 = IN).
    pub fn kind(&self, address: u8) -> Option<EndpointKind> {
        self.kinds
            .iter()
            .find(|(a, _)| *a == address)
            .map(|(_, k)| *k)
    }
}

/// Transfer type of a submitted URB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitKind {
    /// Control on endpoint 0, with its setup packet.
    Control(Setup),
    /// Bulk.
    Bulk,
    /// Interrupt.
    Interrupt,
}

/// One URB to run on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// The URB's sequence number.
    pub seqnum: u32,
    /// Endpoint address (bit 7 = IN; 0 for control).
    pub endpoint: u8,
    /// Data direction.
    pub direction: Direction,
    /// Transfer type (and setup packet).
    pub kind: SubmitKind,
    /// OUT data.
    pub data: Bytes,
    /// IN: bytes wanted.
    pub in_length: u32,
    /// URB transfer flags as the kernel sent them (`URB_SHORT_NOT_OK`, `URB_ZERO_PACKET`, …).
    pub transfer_flags: u32,
}

impl Submit {
    pub(crate) fn control(s: &CmdSubmit, mut setup: Setup) -> Self {
        let in_length = match s.direction {
            // Never ask the device for more than the URB's buffer holds.
            Direction::In => {
                setup.length = setup
                    .length
                    .min(u16::try_from(s.buffer_length).unwrap_or(u16::MAX));
                u32::from(setup.length)
            }
            Direction::Out => 0,
        };
        Self {
            seqnum: s.seqnum,
            endpoint: 0,
            direction: s.direction,
            kind: SubmitKind::Control(setup),
            data: s.data.clone(),
            in_length,
            transfer_flags: s.transfer_flags,
        }
    }

    pub(crate) fn endpoint(s: &CmdSubmit, address: u8, kind: EndpointKind) -> Self {
        let kind = match kind {
            EndpointKind::Interrupt => SubmitKind::Interrupt,
            _ => SubmitKind::Bulk,
        };
        let in_length = match s.direction {
            Direction::In => s.buffer_length,
            Direction::Out => 0,
        };
        Self {
            seqnum: s.seqnum,
            endpoint: address,
            direction: s.direction,
            kind,
            data: s.data.clone(),
            in_length,
            transfer_flags: s.transfer_flags,
        }
    }

    /// The Reach transfer request. Short-not-ok is not forwarded: the translator applies it to
    /// the completion itself (so a short IN is told apart from an I/O error).
    pub fn to_request(&self) -> TransferRequest {
        let mut flags = TransferFlags::default();
        if self.transfer_flags & URB_ZERO_PACKET != 0 && self.direction == Direction::Out {
            flags.0 |= TransferFlags::ZERO_PACKET;
        }
        let kind = match self.kind {
            SubmitKind::Control(setup) => TransferKind::Control(setup),
            SubmitKind::Bulk => TransferKind::Bulk(self.endpoint),
            SubmitKind::Interrupt => TransferKind::Interrupt(self.endpoint),
        };
        let length = match self.direction {
            Direction::In => self.in_length,
            Direction::Out => self.data.len() as u32,
        };
        TransferRequest {
            kind,
            flags,
            timeout_ms: 0,
            length,
            data: self.data.clone(),
        }
    }
}
