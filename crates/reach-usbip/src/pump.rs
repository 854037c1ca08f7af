//! The async driver: runs a [`Translator`] between vhci's socket and a Reach [`UsbHandle`].
//!
//! Submissions reach the claim in the order the kernel sent them (one submitter task), so
//! bulk data on an endpoint is never reordered; each transfer then waits in its own task, so
//! any number are in flight. Completions come back to the loop, which writes the replies.
//! Interrupt IN URBs are served from receive streams ([`crate::interrupt`]), so HID reports do
//! not pay a round trip each.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use reach_usb::UsbError;
use reach_usb::client::{PendingTransfer, StreamReceiver, UsbHandle};
use reach_usb::proto::{ConfigOp, TransferStatus};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::counters::Counters;
use crate::interrupt::{Action, InterruptStreams, STREAM_DEPTH};
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
    StreamStart(StreamId, u32),
    StreamStop(u8),
}

/// An interrupt IN endpoint and the generation of its stream.
#[derive(Clone, Copy)]
struct StreamId {
    endpoint: u8,
    generation: u64,
}

enum Done {
    Completed(u32, Completion),
    Lost(UsbError),
    StreamStarted(StreamId, bool),
    Report(StreamId, TransferStatus, Bytes),
    StreamEnded(StreamId),
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
    let mut translator = Translator::new(endpoints.clone());
    let mut streams = InterruptStreams::default();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (job_tx, job_rx) = mpsc::unbounded_channel();
    tokio::spawn(submitter(handle, job_rx, done_tx));
    let mut jobs = Jobs {
        tx: job_tx,
        cancels: HashMap::new(),
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let mut lost = None;
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
                    jobs.cancels.remove(&seqnum);
                    counters.record(&c);
                    translator.handle_completion(seqnum, c);
                }
                // Answer what is answered before stopping; the port is detached next.
                Done::Lost(e) => lost = Some(e),
                Done::StreamStarted(id, ok) => streams.started(id.endpoint, id.generation, ok),
                Done::Report(id, status, data) => {
                    streams.report(id.endpoint, id.generation, status, data);
                }
                Done::StreamEnded(id) => streams.ended(id.endpoint, id.generation),
            },
        }
        while let Some(event) = translator.poll_event() {
            match event {
                Event::Submit(s) => {
                    if let Some(s) = streams.submit(s) {
                        jobs.transfer(s);
                    }
                }
                Event::Configure { seqnum, op } => {
                    streams.configured(op, &endpoints);
                    let _ = jobs.tx.send(Job::Configure(seqnum, op));
                }
                Event::Cancel { seqnum } => {
                    if !streams.cancel(seqnum) {
                        jobs.cancel(seqnum);
                    }
                }
            }
        }
        while let Some(action) = streams.poll_action() {
            if let Some(e) = jobs.stream_action(action, &mut translator, &counters) {
                lost = Some(e);
            }
        }
        while let Some(bytes) = translator.poll_transmit() {
            if let Err(e) = wr.write_all(&bytes).await {
                return PumpEnd::Io(e);
            }
        }
        if let Some(e) = lost {
            return PumpEnd::ClaimLost(e);
        }
    }
}

/// The submitter's queue and the cancel switch of every transfer in flight.
struct Jobs {
    tx: mpsc::UnboundedSender<Job>,
    cancels: HashMap<u32, oneshot::Sender<()>>,
}

impl Jobs {
    fn transfer(&mut self, s: Submit) {
        let (tx, rx) = oneshot::channel();
        self.cancels.insert(s.seqnum, tx);
        let _ = self.tx.send(Job::Transfer(s, rx));
    }

    fn cancel(&mut self, seqnum: u32) {
        if let Some(tx) = self.cancels.remove(&seqnum) {
            let _ = tx.send(());
        }
    }

    /// Performs what the interrupt streams ask; a URB answered "device gone" ends the claim.
    fn stream_action(
        &mut self,
        action: Action,
        translator: &mut Translator,
        counters: &Counters,
    ) -> Option<UsbError> {
        match action {
            Action::Start {
                endpoint,
                transfer_size,
                generation,
            } => {
                let id = StreamId {
                    endpoint,
                    generation,
                };
                let _ = self.tx.send(Job::StreamStart(id, transfer_size));
            }
            Action::Stop { endpoint } => drop(self.tx.send(Job::StreamStop(endpoint))),
            Action::Submit(s) => self.transfer(s),
            Action::Complete(seqnum, c) => {
                let gone = c.status == TransferStatus::NoDevice;
                counters.record(&c);
                translator.handle_completion(seqnum, c);
                if gone {
                    return Some(UsbError::NoDevice(
                        "the device is gone on the host (unplugged, or the claim was closed)"
                            .into(),
                    ));
                }
            }
        }
        None
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
            Job::StreamStart(id, size) => {
                match handle.stream(id.endpoint, STREAM_DEPTH, size).await {
                    Ok(reports) => {
                        let _ = done.send(Done::StreamStarted(id, true));
                        tokio::spawn(forward_reports(id, reports, done.clone()));
                    }
                    Err(_) => drop(done.send(Done::StreamStarted(id, false))),
                }
            }
            // The host may have ended the stream already (a stall); "no such stream" is fine.
            Job::StreamStop(endpoint) => drop(handle.stop_stream(endpoint).await),
        }
    }
}

/// Hands a stream's reports to the loop until the stream ends.
async fn forward_reports(
    id: StreamId,
    mut reports: StreamReceiver,
    done: mpsc::UnboundedSender<Done>,
) {
    while let Some(r) = reports.recv().await {
        if done.send(Done::Report(id, r.status, r.data)).is_err() {
            return;
        }
    }
    let _ = done.send(Done::StreamEnded(id));
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
