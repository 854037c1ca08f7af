//! Every bound on wire input, in one place.

use std::time::Duration;

/// Largest message an agent may send (video frames): 4 MiB.
pub const AGENT_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Largest message either socket accepts before it authenticated (`agent_auth`,
/// `agent_hello`, `viewer_auth`): 8 KiB.
pub const AUTH_MAX_MESSAGE: usize = 8 * 1024;

/// Largest message a viewer may send (input, clipboard, USB requests): 64 KiB.
pub const VIEWER_MAX_MESSAGE: usize = 64 * 1024;

/// Viewer -> agent input events per second (token bucket refill rate).
pub const VIEWER_INPUT_PER_SEC: u32 = 200;

/// Viewer input burst (token bucket capacity).
pub const VIEWER_INPUT_BURST: u32 = 200;

/// How long the person at the machine has to answer a consent prompt.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a fresh socket has to send its credential.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest clipboard text accepted (characters are bytes here: UTF-8 length).
pub const CLIPBOARD_MAX_BYTES: usize = 32 * 1024;
