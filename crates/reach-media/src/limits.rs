//! Every bound this crate applies, in one place. Anything that arrives from a peer
//! (encoded frames, clipboard text, key codes) is checked against these before memory
//! is reserved for it.

/// Largest frame side in pixels accepted by capturers, encoders and decoders.
pub const MAX_FRAME_SIDE: u32 = 8192;

/// Side of a raw-encoder tile in pixels.
pub const TILE_SIZE: u32 = 64;

/// Largest number of operations (tiles and copies) in one raw frame.
pub const MAX_RAW_OPS: usize = 65_536;

/// Largest raw tile a decoder accepts, in pixels (the web viewer's limit too).
pub const MAX_RAW_TILE_PIXELS: u32 = 512 * 512;

/// Widest raw tile the encoder produces by merging neighbouring dirty tiles.
pub const MAX_RAW_TILE_WIDTH: u32 = 512;

/// Largest clipboard text, in bytes, copied to or from the remote machine.
pub const MAX_CLIPBOARD_BYTES: usize = 1024 * 1024;

/// Largest cursor image side in pixels; bigger cursors are not sent.
pub const MAX_CURSOR_SIDE: u32 = 256;

/// zstd level used by the raw encoder: fast enough for 60 fps on one core.
pub const RAW_ZSTD_LEVEL: i32 = 1;

/// Default H.264 target bitrate in bits per second.
pub const DEFAULT_BITRATE_BPS: u32 = 4_000_000;

/// Most wheel notches injected for one viewer event; a peer cannot make the agent loop.
pub const MAX_WHEEL_NOTCHES: i32 = 50;

/// How long another program may take to hand over the clipboard text, in milliseconds.
pub const CLIPBOARD_READ_TIMEOUT_MS: u64 = 2000;
