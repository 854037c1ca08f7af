//! One task per opened bulk/interrupt endpoint: submits transfers in order, matches completions
//! (which usbfs returns in submission order), cancels, clears halts.
//!
//! usbfs can only cancel every pending transfer of an endpoint at once, so cancelling one
//! transfer also cancels the ones queued with it on the same endpoint (they complete `cancelled`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use nusb::descriptors::TransferType;
use nusb::transfer::{Buffer, Bulk, BulkOrInterrupt, EndpointDirection, In, Interrupt, Out};
use nusb::{Endpoint, Interface};
use tokio::sync::{mpsc, oneshot};

use super::{describe, map_transfer_error};
use crate::backend::HotplugEvent;
use crate::proto::{TransferReply, TransferRequest, TransferStatus};

enum Command {
    Submit {
        ticket: u64,
        request: TransferRequest,
        reply: oneshot::Sender<TransferReply>,
    },
    Cancel(u64),
    ClearHalt(oneshot::Sender<TransferStatus>),
}

/// A handle to an endpoint's task.
#[derive(Clone)]
pub(super) struct EndpointHandle {
    tx: mpsc::UnboundedSender<Command>,
    tickets: Arc<AtomicU64>,
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Sends CANCEL for its ticket when the transfer future is dropped before completing.
struct CancelOnDrop {
    tx: mpsc::UnboundedSender<Command>,
    ticket: u64,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.tx.send(Command::Cancel(self.ticket));
        }
    }
}

impl EndpointHandle {
    /// Opens `address` on `interface` if its current alt setting has it.
    pub(super) fn open(interface: &Interface, address: u8) -> Option<Self> {
        let desc = interface.descriptor()?;
        let kind = desc
            .endpoints()
            .find(|e| e.address() == address)?
            .transfer_type();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = match (kind, address & 0x80 != 0) {
            (TransferType::Bulk, true) => {
                tokio::spawn(run(interface.endpoint::<Bulk, In>(address).ok()?, rx, true))
            }
            (TransferType::Bulk, false) => tokio::spawn(run(
                interface.endpoint::<Bulk, Out>(address).ok()?,
                rx,
                false,
            )),
            (TransferType::Interrupt, true) => tokio::spawn(run(
                interface.endpoint::<Interrupt, In>(address).ok()?,
                rx,
                true,
            )),
            (TransferType::Interrupt, false) => tokio::spawn(run(
                interface.endpoint::<Interrupt, Out>(address).ok()?,
                rx,
                false,
            )),
            _ => return None,
        };
        Some(Self {
            tx,
            tickets: Arc::new(AtomicU64::new(1)),
            task: Arc::new(std::sync::Mutex::new(Some(task))),
        })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Queues one transfer on the endpoint **now** (so transfers reach the device in the order
    /// they were submitted, which keeps bulk data in order) and returns a future for its reply.
    /// Dropping the future cancels it; `timeout_ms` is enforced here.
    pub(super) fn submit(
        &self,
        request: TransferRequest,
    ) -> impl Future<Output = TransferReply> + Send + use<> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let timeout =
            (request.timeout_ms > 0).then(|| Duration::from_millis(u64::from(request.timeout_ms)));
        let (reply_tx, reply_rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Command::Submit {
                ticket,
                request,
                reply: reply_tx,
            })
            .is_ok();
        let guard = CancelOnDrop {
            tx: self.tx.clone(),
            ticket,
            armed: sent,
        };
        wait_reply(guard, reply_rx, timeout)
    }

    pub(super) async fn clear_halt(&self) -> TransferStatus {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::ClearHalt(tx)).is_err() {
            return TransferStatus::NoDevice;
        }
        rx.await.unwrap_or(TransferStatus::NoDevice)
    }

    /// Stops the task after cancelling what is pending, and waits for it.
    pub(super) async fn shutdown(self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(self.tx);
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn wait_reply(
    mut guard: CancelOnDrop,
    mut reply_rx: oneshot::Receiver<TransferReply>,
    timeout: Option<Duration>,
) -> TransferReply {
    if !guard.armed {
        return TransferReply::status(TransferStatus::NoDevice);
    }
    let result = match timeout {
        Some(t) => match tokio::time::timeout(t, &mut reply_rx).await {
            Ok(r) => r.ok(),
            Err(_) => {
                let _ = guard.tx.send(Command::Cancel(guard.ticket));
                let _ = reply_rx.await;
                guard.armed = false;
                return TransferReply::status(TransferStatus::Timeout);
            }
        },
        None => (&mut reply_rx).await.ok(),
    };
    guard.armed = false;
    result.unwrap_or_else(|| TransferReply::status(TransferStatus::NoDevice))
}

struct Queued {
    ticket: u64,
    wanted: usize,
    /// `None` for the zero-length packet that follows an OUT with the ZLP flag.
    reply: Option<oneshot::Sender<TransferReply>>,
}

async fn run<T: BulkOrInterrupt, D: EndpointDirection>(
    mut ep: Endpoint<T, D>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    is_in: bool,
) {
    let mut queue: VecDeque<Queued> = VecDeque::new();
    let mut open = true;
    while open || !queue.is_empty() {
        tokio::select! {
            cmd = rx.recv(), if open => match cmd {
                None => {
                    open = false;
                    ep.cancel_all();
                }
                Some(Command::Submit { ticket, request, reply }) => {
                    let wanted = request.length as usize;
                    let mps = ep.max_packet_size().max(1);
                    let zlp = !is_in && request.flags.zero_packet() && !request.data.is_empty() && request.data.len() % mps == 0;
                    ep.submit(buffer_for(&ep, &request, is_in));
                    queue.push_back(Queued { ticket, wanted, reply: Some(reply) });
                    if zlp {
                        ep.submit(Buffer::from(Vec::<u8>::new()));
                        queue.push_back(Queued { ticket, wanted: 0, reply: None });
                    }
                }
                Some(Command::Cancel(ticket)) => {
                    if queue.iter().any(|q| q.ticket == ticket) {
                        ep.cancel_all();
                    }
                }
                Some(Command::ClearHalt(reply)) => {
                    let status = match ep.clear_halt().await {
                        Ok(()) => TransferStatus::Ok,
                        Err(_) => TransferStatus::IoError,
                    };
                    let _ = reply.send(status);
                }
            },
            completion = ep.next_complete(), if !queue.is_empty() => {
                let Some(q) = queue.pop_front() else { continue };
                let reply = match completion.status {
                    Err(e) => TransferReply::status(map_transfer_error(e)),
                    Ok(()) if is_in => in_reply(completion.buffer.into_vec(), completion.actual_len, q.wanted),
                    Ok(()) => TransferReply { status: TransferStatus::Ok, actual_length: completion.actual_len as u32, data: Bytes::new() },
                };
                if let Some(tx) = q.reply {
                    let _ = tx.send(reply);
                }
            }
        }
    }
}

fn buffer_for<T: BulkOrInterrupt, D: EndpointDirection>(
    ep: &Endpoint<T, D>,
    request: &TransferRequest,
    is_in: bool,
) -> Buffer {
    if is_in {
        // usbfs wants IN lengths in whole packets; a longer answer is reported as overflow.
        let mps = ep.max_packet_size().max(1);
        Buffer::new((request.length as usize).max(1).div_ceil(mps) * mps)
    } else {
        Buffer::from(request.data.to_vec())
    }
}

pub(super) fn in_reply(mut data: Vec<u8>, actual: usize, wanted: usize) -> TransferReply {
    data.truncate(actual);
    if data.len() > wanted {
        return TransferReply::status(TransferStatus::Overflow);
    }
    TransferReply {
        status: TransferStatus::Ok,
        actual_length: data.len() as u32,
        data: Bytes::from(data),
    }
}

/// Forwards nusb hotplug events, remembering descriptions so removals can name the device.
pub(super) async fn forward_hotplug(
    mut watch: nusb::hotplug::HotplugWatch,
    tx: mpsc::UnboundedSender<HotplugEvent>,
) {
    let mut known: Vec<(nusb::DeviceId, crate::proto::DeviceInfo)> = nusb::list_devices()
        .await
        .map(|it| it.map(|d| (d.id(), describe(&d))).collect())
        .unwrap_or_default();
    while let Some(event) = watch.next().await {
        let out = match event {
            nusb::hotplug::HotplugEvent::Connected(d) => {
                let info = describe(&d);
                known.push((d.id(), info.clone()));
                HotplugEvent::Added(info)
            }
            nusb::hotplug::HotplugEvent::Disconnected(id) => {
                match known.iter().position(|(k, _)| *k == id) {
                    Some(i) => HotplugEvent::Removed(known.swap_remove(i).1),
                    None => continue,
                }
            }
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}
