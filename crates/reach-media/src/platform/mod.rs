//! Picks the OS backend. Every backend exports the same four functions; `cfg` appears
//! only here.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{
    list_screens, open_capturer, open_clipboard, open_injector, run_media_bench,
};

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub(crate) use unsupported::{
    list_screens, open_capturer, open_clipboard, open_injector, run_media_bench,
};
