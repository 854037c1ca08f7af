//! Reach transfer status ↔ Linux URB status (negative errno), in one table.

use reach_usb::proto::TransferStatus;

/// Linux errno values used in URB status (x86-64 / generic numbering).
#[allow(missing_docs)]
pub mod linux {
    pub const ENOENT: i32 = 2;
    pub const ENOMEM: i32 = 12;
    pub const ENODEV: i32 = 19;
    pub const EINVAL: i32 = 22;
    pub const EPIPE: i32 = 32;
    pub const EPROTO: i32 = 71;
    pub const EOVERFLOW: i32 = 75;
    pub const ECONNRESET: i32 = 104;
    pub const ETIMEDOUT: i32 = 110;
    pub const EREMOTEIO: i32 = 121;
}

/// Each Reach status and the URB status vhci gets for it. The first entry for an errno is the
/// one [`status_of_urb`] returns.
pub const STATUS_TABLE: [(TransferStatus, i32); 8] = [
    (TransferStatus::Ok, 0),
    (TransferStatus::Cancelled, -linux::ECONNRESET),
    (TransferStatus::Stall, -linux::EPIPE),
    (TransferStatus::Timeout, -linux::ETIMEDOUT),
    (TransferStatus::NoDevice, -linux::ENODEV),
    (TransferStatus::Overflow, -linux::EOVERFLOW),
    (TransferStatus::IoError, -linux::EPROTO),
    (TransferStatus::Invalid, -linux::EINVAL),
];

/// The URB status (0 or a negative errno) for a Reach status.
pub fn urb_status(status: TransferStatus) -> i32 {
    STATUS_TABLE
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(-linux::EPROTO, |(_, e)| *e)
}

/// The Reach status for a URB status; errnos outside the table are `io_error`.
pub fn status_of_urb(errno: i32) -> TransferStatus {
    STATUS_TABLE
        .iter()
        .find(|(_, e)| *e == errno)
        .map_or(TransferStatus::IoError, |(s, _)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reach_status_maps_to_its_errno_and_back() {
        let expected = [
            (TransferStatus::Ok, 0),
            (TransferStatus::Cancelled, -104),
            (TransferStatus::Stall, -32),
            (TransferStatus::Timeout, -110),
            (TransferStatus::NoDevice, -19),
            (TransferStatus::Overflow, -75),
            (TransferStatus::IoError, -71),
            (TransferStatus::Invalid, -22),
        ];
        for (status, errno) in expected {
            assert_eq!(urb_status(status), errno, "{status:?}");
            assert_eq!(status_of_urb(errno), status, "{errno}");
        }
    }

    #[test]
    fn an_errno_outside_the_table_is_an_io_error() {
        assert_eq!(status_of_urb(-linux::EREMOTEIO), TransferStatus::IoError);
        assert_eq!(status_of_urb(-9999), TransferStatus::IoError);
    }
}
