//! The async driver: runs a [`Translator`] between vhci's socket and a Reach [`UsbHandle`].
//!
//! Submissions reach the claim in the order the kernel sent them (one submitter task), so
//! bulk data on an endpoint is never reordered; each transfer then waits in its own task, so
//! any number are in flight. Completions come back to the loop, which writes the replies.

use std::collections::HashMap;
use std::sync::Arc;

use reach_usb::UsbError;
use reach_usb::client::{PendingTransfer, UsbHandle};
use reach_usb::proto::{ConfigOp, TransferStatus};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::counters::Counters;
use crate::request::{EndpointTable, Submit};
use crate::translator::{Completion, Event, Translator};
use crate::wire::WireError;

/// Read size from the vhci socket.
const READ_CHUNK: usize = 64 * 1024;

/// Why the pump stopped.
#[derive(Debug, Error)]
pub enum PumpEnd {
    /// vhci closed the socket (the port was detached).
    #[error("vhci closed the connection (port detached)")]
    Detached,
    /// vhci sent something that is not USB/IP.
    #[error("vhci sent invalid USB/IP: {0}")]
    Protocol(#[from] WireError),
    /// The socket failed.
    #[error("vhci socket: {0}")]
    Io(#[from] std::io::Error),
    /// The Reach claim ended (unplugged on the host, or the connection to the host was lost).
    #[error("the Reach claim ended: {0}")]
    ClaimLost(UsbError),
    /// The connection carrying the claim is gone for good (the session ended, its viewer
    /// socket closed, the host's agent went offline); set by `attach`, which watches it.
    #[error("the connection to the host ended: {0}")]
    ConnectionLost(String),
}

enum Job {
    Transfer(Submit, oneshot::Receiver<()>),
    Configure(u32, ConfigOp),
}

enum Done {
    Completed(u32, Completion),
    Lost(UsbError),
}

/// The Reach status for a client-side error.
fn status_of_error(e: &UsbError) -> TransferStatus {
    match e {
        UsbError::Stall => TransferStatus::Stall,
        UsbError::Timeout => TransferStatus::Timeout,
        UsbError::Cancelled => TransferStatus::Cancelled,
        UsbError::NoDevice(_) | UsbError::Closed(_) => TransferStatus::NoDevice,
        UsbError::Transfer(status) => *status,
        _ => TransferStatus::IoError,
    }
}

fn completion_of(result: Result<reach_usb::proto::TransferReply, UsbError>) -> Completion {
    match result {
        Ok(r) => Completion {
            status: r.status,
            actual_length: r.actual_length,
            data: r.data,
        },
        Err(e) => Completion::status(status_of_error(&e)),
    }
}

/// Runs until vhci closes the socket, the stream breaks, or the claim ends. Pending transfers
/// are cancelled on the way out.
pub async fn pump<S>(handle: UsbHandle, socket: S, endpoints: EndpointTable) -> PumpEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pump_counted(handle, socket, endpoints, Arc::default()).await
}

/// [`pump`], counting every completed transfer in `counters`.
pub async fn pump_counted<S>(
    handle: UsbHandle,
    socket: S,
    endpoints: EndpointTable,
    counters: Arc<Counters>,
) -> PumpEnd
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(socket);
    let mut translator = Translator::new(endpoints);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (job_tx, job_rx) = mpsc::unbounded_channel();
    tokio::spawn(submitter(handle, job_rx, done_tx));
    let mut cancels: HashMap<u32, oneshot::Sender<()>> = HashMap::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        tokio::select! {
            n = rd.read(&mut buf) => match n {
                Ok(0) => return PumpEnd::Detached,
                Ok(n) => {
                    if let Err(e) = translator.handle_input(&buf[..n]) {
                        return PumpEnd::Protocol(e);
                    }
                }
                Err(e) => return PumpEnd::Io(e),
            },
            Some(done) = done_rx.recv() => match done {
                Done::Completed(seqnum, c) => {
                    cancels.remove(&seqnum);
                    counters.record(&c);
                    translator.handle_completion(seqnum, c);
                }
                Done::Lost(e) => {
                    // Answer what is answered before stopping; the port is detached next.
                    while let Some(bytes) = translator.poll_transmit() {
                        let _ = wr.write_all(&bytes).await;
                    }
                    return PumpEnd::ClaimLost(e);
                }
            },
        }
        while let Some(event) = translator.poll_event() {
            match event {
                Event::Submit(s) => {
                    let (tx, rx) = oneshot::channel();
                    cancels.insert(s.seqnum, tx);
                    let _ = job_tx.send(Job::Transfer(s, rx));
                }
                Event::Configure { seqnum, op } => {
                    let _ = job_tx.send(Job::Configure(seqnum, op));
                }
                Event::Cancel { seqnum } => {
                    if let Some(tx) = cancels.remove(&seqnum) {
                        let _ = tx.send(());
                    }
                }
            }
        }
        while let Some(bytes) = translator.poll_transmit() {
            if let Err(e) = wr.write_all(&bytes).await {
                return PumpEnd::Io(e);
            }
        }
    }
}

async fn submitter(
    handle: UsbHandle,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    done: mpsc::UnboundedSender<Done>,
) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Transfer(s, cancel) => match handle.submit(s.to_request()).await {
                Ok(pending) => {
                    tokio::spawn(wait_one(
                        handle.clone(),
                        s.seqnum,
                        pending,
                        cancel,
                        done.clone(),
                    ));
                }
                Err(e) => finish(&done, s.seqnum, completion_of(Err(e))),
            },
            Job::Configure(seqnum, op) => {
                let result = match op {
                    ConfigOp::SetConfiguration(c) => handle.set_configuration(c).await,
                    ConfigOp::SetInterface(i, alt) => handle.set_interface(i, alt).await,
                    ConfigOp::ClearHalt(ep) => handle.clear_halt(ep).await,
                    ConfigOp::Reset => handle.reset().await,
                };
                let status = result.map_or_else(|e| status_of_error(&e), |()| TransferStatus::Ok);
                finish(&done, seqnum, Completion::status(status));
            }
        }
    }
}

async fn wait_one(
    handle: UsbHandle,
    seqnum: u32,
    pending: PendingTransfer,
    mut cancel: oneshot::Receiver<()>,
    done: mpsc::UnboundedSender<Done>,
) {
    let request_id = pending.request_id;
    let wait = pending.wait();
    tokio::pin!(wait);
    let result = tokio::select! {
        r = &mut wait => r,
        // An unlink, or the pump ending (sender dropped): cancel on the host, take its reply.
        _ = &mut cancel => {
            handle.cancel(request_id);
            wait.await
        }
    };
    let completion = completion_of(result);
    finish(&done, seqnum, completion);
}

/// Sends a completion; `no_device` means the claim is over (the host closes a claim whose device
/// reports it), so the pump is told to stop.
fn finish(done: &mpsc::UnboundedSender<Done>, seqnum: u32, completion: Completion) {
    let gone = completion.status == TransferStatus::NoDevice;
    let _ = done.send(Done::Completed(seqnum, completion));
    if gone {
        let _ = done.send(Done::Lost(UsbError::NoDevice(
            "the device is gone on the host (unplugged, or the claim was closed)".into(),
        )));
    }
}

#[cfg(test)]
#[path = "pump_tests.rs"]
mod tests;
