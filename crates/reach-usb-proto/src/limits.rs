//! Every bound on what crosses the network, in one place (STYLE rule 7).
//!
//! Each limit is checked before memory is reserved for the thing it bounds.

use std::time::Duration;

/// Largest frame payload every peer accepts (SPEC §9.3): 16 KiB.
pub const MAX_FRAME_PAYLOAD: usize = 16 * 1024;
/// Largest frame payload this implementation accepts, announced in HELLO with the `large_frames`
/// capability: 256 KiB + 64, so a transfer of up to 256 KiB and its reply header travel in one
/// frame. It is also the most this implementation sends to a peer that announces more.
pub const LARGE_FRAME_PAYLOAD: usize = 256 * 1024 + 64;
/// Longest transport message (frame) this implementation accepts: header + largest payload.
/// Transports carrying frames between two current peers must carry messages this long.
pub const MAX_FRAME_LEN: usize = FRAME_HEADER_LEN + LARGE_FRAME_PAYLOAD;
/// Frame header: `op u8 | flags u8 | claim_id u16`.
pub const FRAME_HEADER_LEN: usize = 4;
/// Every payload starts with a `request_id u32`.
pub const REQUEST_ID_LEN: usize = 4;
/// Largest message body carried by one frame (payload minus the request id).
pub const MAX_CHUNK: usize = MAX_FRAME_PAYLOAD - REQUEST_ID_LEN;
/// Largest reassembled message (one transfer request or reply, header included): 16 MiB + 64 bytes.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024 + 64;
/// Largest single transfer length (IN wanted or OUT data): 16 MiB.
pub const MAX_TRANSFER: u32 = 16 * 1024 * 1024;
/// Most messages being reassembled at once in one session.
pub const MAX_PARTIALS: usize = 256;
/// Most bytes held in partial reassemblies at once in one session.
pub const MAX_REASSEMBLY_TOTAL: usize = 64 * 1024 * 1024;
/// Largest JSON control message body.
pub const MAX_CONTROL_JSON: usize = 256 * 1024;
/// Smallest receive window a peer may announce (SPEC §9.5: ≥ 1 MiB).
pub const MIN_WINDOW: u32 = 1024 * 1024;
/// Receive window this implementation announces: 32 MiB, so a 50 ms round trip is not capped
/// below ~600 MB/s by credits.
pub const DEFAULT_WINDOW: u32 = 32 * 1024 * 1024;
/// Most transfers in flight per claim.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Most claims one session may hold.
pub const MAX_CLAIMS: usize = 32;
/// Most receive streams per claim.
pub const MAX_STREAMS: usize = 8;
/// Most transfers a stream keeps queued on its endpoint.
pub const MAX_STREAM_DEPTH: u8 = 16;
/// Stream completions waiting for credit before new ones are dropped (and counted).
pub const MAX_STREAM_BACKLOG: usize = 64;
/// Completions retained per claim for replay after a resume (count).
pub const MAX_RETAINED: usize = 2048;
/// Completions retained per claim for replay after a resume (bytes).
pub const MAX_RETAINED_BYTES: usize = 64 * 1024 * 1024;
/// How long a host keeps a claim after the transport drops (SPEC §9.6).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30);
/// Default transfer timeout on the client (SPEC §9.9).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Resume token length in bytes.
pub const RESUME_TOKEN_LEN: usize = 32;
/// Protocol version spoken by this implementation.
pub const PROTOCOL_VERSION: u32 = 2;
