//! Reads rectangles of the root window into a [`Frame`]: through a MIT-SHM segment
//! (a file in `/dev/shm` the server writes into, read back with `pread`, so no `unsafe`
//! mapping is needed) or, when shared memory is unavailable, with plain `GetImage`.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

use super::x11;
use crate::{Frame, MediaError, Rect};

/// Reads pixels of one screen area.
pub(crate) struct Grabber {
    root: Window,
    /// Desktop position of the frame's top-left corner.
    origin: (i32, i32),
    shm: Option<ShmSegment>,
    scratch: Vec<u8>,
}

struct ShmSegment {
    id: shm::Seg,
    file: File,
}

impl Grabber {
    /// A grabber for frames of `width × height` at `origin` on `root`.
    pub(crate) fn new(
        conn: &RustConnection,
        root: Window,
        origin: (i32, i32),
        (width, height): (u32, u32),
        use_shm: bool,
    ) -> Result<Self, MediaError> {
        let shm = if use_shm {
            match attach_segment(conn, width as usize * height as usize * 4) {
                Ok(seg) => Some(seg),
                Err(err) => {
                    tracing::info!(error = %err, "MIT-SHM unavailable, capturing with GetImage");
                    None
                }
            }
        } else {
            None
        };
        Ok(Self {
            root,
            origin,
            shm,
            scratch: Vec::new(),
        })
    }

    /// Whether pixels travel through shared memory.
    pub(crate) fn uses_shm(&self) -> bool {
        self.shm.is_some()
    }

    /// Copies `rect` (frame coordinates) of the screen into `frame`.
    pub(crate) fn grab(
        &mut self,
        conn: &RustConnection,
        frame: &mut Frame,
        rect: Rect,
    ) -> Result<(), MediaError> {
        let Some(rect) = rect.intersect(&frame.bounds()) else {
            return Ok(());
        };
        let x = (self.origin.0 + rect.x as i32) as i16;
        let y = (self.origin.1 + rect.y as i32) as i16;
        let (w, h) = (rect.width as u16, rect.height as u16);
        let len = rect.width as usize * rect.height as usize * 4;
        let full_rows = rect.x == 0 && rect.width == frame.width();
        match &self.shm {
            Some(seg) => {
                let reply = conn
                    .shm_get_image(
                        self.root,
                        x,
                        y,
                        w,
                        h,
                        !0,
                        ImageFormat::Z_PIXMAP.into(),
                        seg.id,
                        0,
                    )
                    .map_err(x11)?
                    .reply()
                    .map_err(x11)?;
                if reply.size as usize != len {
                    return Err(MediaError::PixelFormat(format!(
                        "{} bytes for {len}",
                        reply.size
                    )));
                }
                if full_rows {
                    let start = rect.y as usize * frame.stride();
                    seg.file
                        .read_exact_at(&mut frame.data_mut()[start..start + len], 0)?;
                    return Ok(());
                }
                self.scratch.resize(len, 0);
                seg.file.read_exact_at(&mut self.scratch, 0)?;
            }
            None => {
                let reply = conn
                    .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
                    .map_err(x11)?
                    .reply()
                    .map_err(x11)?;
                if reply.data.len() != len {
                    return Err(MediaError::PixelFormat(format!(
                        "{} bytes for {len}",
                        reply.data.len()
                    )));
                }
                self.scratch = reply.data;
            }
        }
        let row_len = rect.width as usize * 4;
        for (row, src) in self.scratch.chunks_exact(row_len).enumerate() {
            frame
                .row_span_mut(rect.x, rect.y + row as u32, rect.width)
                .copy_from_slice(src);
        }
        Ok(())
    }
}

fn attach_segment(conn: &RustConnection, size: usize) -> Result<ShmSegment, MediaError> {
    if conn
        .extension_information(shm::X11_EXTENSION_NAME)
        .map_err(x11)?
        .is_none()
    {
        return Err(MediaError::MissingExtension("MIT-SHM"));
    }
    let version = conn
        .shm_query_version()
        .map_err(x11)?
        .reply()
        .map_err(x11)?;
    if (version.major_version, version.minor_version) < (1, 2) {
        return Err(MediaError::MissingExtension("MIT-SHM 1.2 (fd passing)"));
    }
    let file = tempfile::tempfile_in("/dev/shm").or_else(|_| tempfile::tempfile())?;
    file.set_len(size as u64)?;
    let id = conn.generate_id().map_err(x11)?;
    let fd = OwnedFd::from(file.try_clone()?);
    conn.shm_attach_fd(id, fd, false)
        .map_err(x11)?
        .check()
        .map_err(x11)?;
    Ok(ShmSegment { id, file })
}
