//! USB/IP messages as the kernel's vhci-hcd sends and expects them (no IO).
//!
//! Every message starts with a 48-byte header, all integers big-endian: a 20-byte basic header
//! (`command, seqnum, devid, direction, ep`) and 28 command-specific bytes. CMD_SUBMIT is followed
//! by the OUT data, RET_SUBMIT by the IN data. Isochronous transfers (ISO packet descriptors) are
//! refused. Lengths are checked against [`MAX_TRANSFER_LEN`] before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Header length of every USB/IP message.
pub const HEADER_LEN: usize = 48;
/// Largest transfer buffer accepted in CMD_SUBMIT (the Reach protocol's own transfer cap).
pub const MAX_TRANSFER_LEN: u32 = reach_usb::limits::MAX_TRANSFER;

/// `command` of CMD_SUBMIT.
pub const CMD_SUBMIT: u32 = 1;
/// `command` of CMD_UNLINK.
pub const CMD_UNLINK: u32 = 2;
/// `command` of RET_SUBMIT.
pub const RET_SUBMIT: u32 = 3;
/// `command` of RET_UNLINK.
pub const RET_UNLINK: u32 = 4;

/// URB transfer flag: a short IN transfer is an error.
pub const URB_SHORT_NOT_OK: u32 = 0x0001;
/// URB transfer flag: end an OUT that fills its last packet with a zero-length packet.
pub const URB_ZERO_PACKET: u32 = 0x0040;

/// Data direction of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host to device (0 on the wire).
    Out,
    /// Device to host (1 on the wire).
    In,
}

impl Direction {
    fn from_wire(v: u32) -> Result<Self, WireError> {
        match v {
            0 => Ok(Self::Out),
            1 => Ok(Self::In),
            other => Err(WireError::BadField("direction", other)),
        }
    }

    fn to_wire(self) -> u32 {
        match self {
            Self::Out => 0,
            Self::In => 1,
        }
    }
}

/// Input that is not a valid USB/IP message. Every variant ends the connection: after a bad
/// header the stream position is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// The `command` field is not a known command.
    #[error("unknown USB/IP command {0:#x}")]
    UnknownCommand(u32),
    /// A field holds a value the protocol does not allow.
    #[error("USB/IP field {0} has an invalid value {1:#x}")]
    BadField(&'static str, u32),
    /// A transfer buffer over [`MAX_TRANSFER_LEN`] (or negative).
    #[error("USB/IP transfer length {0} exceeds the {MAX_TRANSFER_LEN}-byte cap")]
    TooLong(u32),
    /// ISO packet descriptors: isochronous transfers are not supported.
    #[error("isochronous USB/IP transfers ({0} packets) are not supported")]
    Isochronous(i32),
}

/// CMD_SUBMIT: one URB from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdSubmit {
    /// Sequence number chosen by vhci; the reply carries it.
    pub seqnum: u32,
    /// Device id given at attach.
    pub devid: u32,
    /// Data direction.
    pub direction: Direction,
    /// Endpoint number (0–15, without the direction bit).
    pub ep: u8,
    /// URB transfer flags (`URB_*`).
    pub transfer_flags: u32,
    /// IN: bytes wanted. OUT: `data.len()`.
    pub buffer_length: u32,
    /// Interrupt interval (informational).
    pub interval: i32,
    /// Control setup packet, in USB (little-endian) byte order; zero for other endpoints.
    pub setup: [u8; 8],
    /// OUT data.
    pub data: Bytes,
}

/// CMD_UNLINK: cancel the URB `unlink_seqnum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdUnlink {
    /// This command's own sequence number (RET_UNLINK carries it).
    pub seqnum: u32,
    /// Device id.
    pub devid: u32,
    /// The CMD_SUBMIT to cancel.
    pub unlink_seqnum: u32,
}

/// A command from vhci.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CMD_SUBMIT.
    Submit(CmdSubmit),
    /// CMD_UNLINK.
    Unlink(CmdUnlink),
}

/// RET_SUBMIT: the result of one URB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetSubmit {
    /// The CMD_SUBMIT's sequence number.
    pub seqnum: u32,
    /// 0 or a negative errno.
    pub status: i32,
    /// IN: `data.len()`. OUT: bytes the device took.
    pub actual_length: u32,
    /// IN data (empty for OUT).
    pub data: Bytes,
}

/// RET_UNLINK: the result of one CMD_UNLINK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetUnlink {
    /// The CMD_UNLINK's sequence number.
    pub seqnum: u32,
    /// `-ECONNRESET` when the URB was cancelled, 0 when it had already completed.
    pub status: i32,
}

fn put_basic(out: &mut BytesMut, command: u32, seqnum: u32, devid: u32, dir: u32, ep: u32) {
    out.put_u32(command);
    out.put_u32(seqnum);
    out.put_u32(devid);
    out.put_u32(dir);
    out.put_u32(ep);
}

impl CmdSubmit {
    /// Encodes the message (header and OUT data).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + self.data.len());
        let (dir, ep) = (self.direction.to_wire(), u32::from(self.ep));
        put_basic(&mut out, CMD_SUBMIT, self.seqnum, self.devid, dir, ep);
        out.put_u32(self.transfer_flags);
        out.put_u32(self.buffer_length);
        out.put_i32(0); // start_frame
        out.put_i32(0); // number_of_packets
        out.put_i32(self.interval);
        out.put_slice(&self.setup);
        out.put_slice(&self.data);
        out.freeze()
    }
}

impl CmdUnlink {
    /// Encodes the message.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN);
        put_basic(&mut out, CMD_UNLINK, self.seqnum, self.devid, 0, 0);
        out.put_u32(self.unlink_seqnum);
        out.put_bytes(0, 24);
        out.freeze()
    }
}

impl RetSubmit {
    /// Encodes the message (header and IN data); devid, direction and ep are 0 as in the
    /// kernel's stub.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + self.data.len());
        put_basic(&mut out, RET_SUBMIT, self.seqnum, 0, 0, 0);
        out.put_i32(self.status);
        out.put_u32(self.actual_length);
        out.put_i32(0); // start_frame
        out.put_i32(0); // number_of_packets
        out.put_i32(0); // error_count
        out.put_bytes(0, 8);
        out.put_slice(&self.data);
        out.freeze()
    }
}

impl RetUnlink {
    /// Encodes the message.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN);
        put_basic(&mut out, RET_UNLINK, self.seqnum, 0, 0, 0);
        out.put_i32(self.status);
        out.put_bytes(0, 24);
        out.freeze()
    }
}

fn checked_len(raw: u32) -> Result<u32, WireError> {
    if raw > MAX_TRANSFER_LEN {
        return Err(WireError::TooLong(raw));
    }
    Ok(raw)
}

fn check_not_iso(number_of_packets: i32) -> Result<(), WireError> {
    // vhci sends 0 for non-ISO URBs; the protocol document says 0xffffffff. Both mean "none".
    match number_of_packets {
        0 | -1 => Ok(()),
        n => Err(WireError::Isochronous(n)),
    }
}

/// Decodes one command from the front of `buf`: `Ok(None)` while incomplete, otherwise the
/// command and how many bytes it used. The length cap is checked on the header, before waiting
/// for (or copying) any data.
///
/// # Errors
/// [`WireError`] for an unknown command, a bad field, an oversize length or ISO packets.
pub fn decode_command(buf: &[u8]) -> Result<Option<(Command, usize)>, WireError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut h = &buf[..HEADER_LEN];
    let command = h.get_u32();
    let seqnum = h.get_u32();
    let devid = h.get_u32();
    let direction = h.get_u32();
    let ep = h.get_u32();
    match command {
        CMD_SUBMIT => decode_submit(buf, seqnum, devid, direction, ep, h),
        CMD_UNLINK => {
            let unlink_seqnum = h.get_u32();
            let cmd = CmdUnlink {
                seqnum,
                devid,
                unlink_seqnum,
            };
            Ok(Some((Command::Unlink(cmd), HEADER_LEN)))
        }
        other => Err(WireError::UnknownCommand(other)),
    }
}

fn decode_submit(
    buf: &[u8],
    seqnum: u32,
    devid: u32,
    direction: u32,
    ep: u32,
    mut h: &[u8],
) -> Result<Option<(Command, usize)>, WireError> {
    let direction = Direction::from_wire(direction)?;
    let ep = u8::try_from(ep)
        .ok()
        .filter(|e| *e < 16)
        .ok_or(WireError::BadField("ep", ep))?;
    let transfer_flags = h.get_u32();
    let buffer_length = checked_len(h.get_u32())?;
    let _start_frame = h.get_i32();
    check_not_iso(h.get_i32())?;
    let interval = h.get_i32();
    let mut setup = [0u8; 8];
    h.copy_to_slice(&mut setup);
    let data_len = match direction {
        Direction::Out => buffer_length as usize,
        Direction::In => 0,
    };
    let total = HEADER_LEN + data_len;
    if buf.len() < total {
        return Ok(None);
    }
    let cmd = CmdSubmit {
        seqnum,
        devid,
        direction,
        ep,
        transfer_flags,
        buffer_length,
        interval,
        setup,
        data: Bytes::copy_from_slice(&buf[HEADER_LEN..total]),
    };
    Ok(Some((Command::Submit(cmd), total)))
}

/// A reply from a USB/IP exporter (what vhci reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// RET_SUBMIT.
    Submit(RetSubmit),
    /// RET_UNLINK.
    Unlink(RetUnlink),
}

/// Decodes one reply from the front of `buf` (`Ok(None)` while incomplete). `is_in(seqnum)`
/// says whether that URB was an IN transfer, i.e. whether `actual_length` bytes of data follow.
///
/// # Errors
/// [`WireError`] for an unknown command, an oversize length or ISO packets.
pub fn decode_reply(
    buf: &[u8],
    is_in: impl Fn(u32) -> bool,
) -> Result<Option<(Reply, usize)>, WireError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut h = &buf[..HEADER_LEN];
    let command = h.get_u32();
    let seqnum = h.get_u32();
    h.advance(12); // devid, direction, ep
    let status = h.get_i32();
    match command {
        RET_SUBMIT => {
            let actual_length = checked_len(h.get_u32())?;
            let _start_frame = h.get_i32();
            check_not_iso(h.get_i32())?;
            let data_len = if is_in(seqnum) {
                actual_length as usize
            } else {
                0
            };
            let total = HEADER_LEN + data_len;
            if buf.len() < total {
                return Ok(None);
            }
            let ret = RetSubmit {
                seqnum,
                status,
                actual_length,
                data: Bytes::copy_from_slice(&buf[HEADER_LEN..total]),
            };
            Ok(Some((Reply::Submit(ret), total)))
        }
        RET_UNLINK => Ok(Some((
            Reply::Unlink(RetUnlink { seqnum, status }),
            HEADER_LEN,
        ))),
        other => Err(WireError::UnknownCommand(other)),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
