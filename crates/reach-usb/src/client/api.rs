//! The async client API: [`UsbClient`] and [`UsbHandle`], a thin shell over [`ClientSession`].
//!
//! One driver task owns the session and the transport; API calls talk to it over a channel, so
//! any number of transfers can be in flight from any number of tasks.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::error::UsbError;
use crate::limits::DEFAULT_TIMEOUT;
use crate::net::{MessageChannel, MessageTransport};
use crate::proto::control::{DeviceEvent, Opened};
use crate::proto::data::{StreamData, StreamStart};
use crate::proto::{
    ConfigOp, DeviceFilter, DeviceInfo, Setup, TransferFlags, TransferKind, TransferReply,
    TransferRequest, TransferStatus,
};

pub(super) type Reply<T> = oneshot::Sender<Result<T, UsbError>>;

pub(super) enum Command {
    List(Reply<Vec<DeviceInfo>>),
    Open(DeviceFilter, Reply<Opened>),
    Submit {
        claim: u16,
        request: TransferRequest,
        timeout: Duration,
        /// Where to report the request id; `None` when the caller only waits for the reply.
        rid: Option<oneshot::Sender<Result<u32, UsbError>>>,
        done: Reply<TransferReply>,
    },
    Configure(u16, ConfigOp, Reply<TransferReply>),
    StreamStart(
        u16,
        StreamStart,
        mpsc::Sender<StreamData>,
        Reply<TransferReply>,
    ),
    StreamStop(u16, u8, Reply<TransferReply>),
    Cancel(u16, u32),
    Close(u16, oneshot::Sender<()>),
    Resume(MessageChannel, Reply<()>),
    Shutdown(Option<mpsc::Sender<Bytes>>, oneshot::Sender<()>),
}

/// A connection to a host's USB service.
#[derive(Clone)]
pub struct UsbClient {
    cmd: mpsc::UnboundedSender<Command>,
    timeout: Duration,
    device_events: tokio::sync::broadcast::Sender<DeviceEvent>,
}

fn gone() -> UsbError {
    UsbError::Closed("client driver stopped".into())
}

impl UsbClient {
    /// Starts a client over a transport (spawns the driver task; needs a tokio runtime).
    pub fn connect(transport: impl MessageTransport) -> Self {
        let (cmd, rx) = mpsc::unbounded_channel();
        let (device_events, _) = tokio::sync::broadcast::channel(64);
        let driver = super::driver::Driver::new(transport.into_channel(), device_events.clone());
        tokio::spawn(driver.run(rx));
        Self {
            cmd,
            device_events,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Subscribes to the host's device added/removed events (devices the ACL would not deny).
    pub fn device_events(&self) -> tokio::sync::broadcast::Receiver<DeviceEvent> {
        self.device_events.subscribe()
    }

    /// Changes the per-request timeout (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, UsbError> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(make(tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Lists the host's shareable devices.
    ///
    /// # Errors
    /// [`UsbError::Timeout`], [`UsbError::Closed`], [`UsbError::Protocol`].
    pub async fn list(&self) -> Result<Vec<DeviceInfo>, UsbError> {
        self.call(Command::List).await
    }

    /// Opens the first permitted device matching `filter`.
    ///
    /// # Errors
    /// [`UsbError::Denied`] (ACL), [`UsbError::NoDevice`], [`UsbError::Busy`], [`UsbError::Timeout`].
    pub async fn open(&self, filter: DeviceFilter) -> Result<UsbHandle, UsbError> {
        let opened = self.call(|tx| Command::Open(filter, tx)).await?;
        Ok(UsbHandle {
            claim: opened.claim_id,
            device: opened.device,
            client: self.clone(),
        })
    }

    /// The host is gone for good (the session ended, the viewer was revoked): drops the
    /// transport and closes every claim locally (`shutdown`), failing what is pending. Claims
    /// cannot be resumed afterwards.
    pub async fn shutdown(&self) {
        self.shutdown_on(None).await;
    }

    /// As [`UsbClient::shutdown`], only if this client's latest transport (current, or lost and
    /// not replaced) sends into `transport` — the host behind another transport that the client
    /// has since moved away from (RESUME) does not end its claims.
    pub async fn shutdown_transport(&self, transport: &mpsc::Sender<Bytes>) {
        self.shutdown_on(Some(transport.clone())).await;
    }

    async fn shutdown_on(&self, transport: Option<mpsc::Sender<Bytes>>) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Shutdown(transport, tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Moves every claim onto a new transport after a drop (RESUME with the stored tokens).
    ///
    /// # Errors
    /// The first claim that could not be resumed ([`UsbError::Protocol`] with `ResumeRejected`).
    pub async fn resume(&self, transport: impl MessageTransport) -> Result<(), UsbError> {
        let chan = transport.into_channel();
        self.call(|tx| Command::Resume(chan, tx)).await
    }
}

/// A claimed device.
#[derive(Clone)]
pub struct UsbHandle {
    claim: u16,
    device: DeviceInfo,
    client: UsbClient,
}

/// A transfer in flight: await it with [`PendingTransfer::wait`] or cancel it by id.
pub struct PendingTransfer {
    /// Request id (for [`UsbHandle::cancel`]).
    pub request_id: u32,
    done: oneshot::Receiver<Result<TransferReply, UsbError>>,
}

impl PendingTransfer {
    /// Waits for the reply (status not checked).
    ///
    /// # Errors
    /// [`UsbError::Timeout`], [`UsbError::Closed`], [`UsbError::Protocol`].
    pub async fn wait(self) -> Result<TransferReply, UsbError> {
        self.done.await.map_err(|_| gone())?
    }
}

/// Completions of a receive stream.
pub type StreamReceiver = mpsc::Receiver<StreamData>;

fn checked(reply: TransferReply) -> Result<TransferReply, UsbError> {
    if reply.status == TransferStatus::Ok {
        Ok(reply)
    } else {
        Err(UsbError::from_status(reply.status))
    }
}

impl UsbHandle {
    /// Claim id allocated by the host.
    pub fn claim_id(&self) -> u16 {
        self.claim
    }

    /// Device description from OPENED.
    pub fn device(&self) -> &DeviceInfo {
        &self.device
    }

    /// Sends a transfer without waiting; many may be in flight.
    ///
    /// # Errors
    /// [`UsbError::Closed`] when the claim is not open.
    pub async fn submit(&self, request: TransferRequest) -> Result<PendingTransfer, UsbError> {
        let (rid_tx, rid_rx) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let cmd = Command::Submit {
            claim: self.claim,
            request,
            timeout: self.client.timeout,
            rid: Some(rid_tx),
            done: done_tx,
        };
        self.client.cmd.send(cmd).map_err(|_| gone())?;
        let request_id = rid_rx.await.map_err(|_| gone())??;
        Ok(PendingTransfer { request_id, done })
    }

    /// Sends a transfer and waits for its reply, without the round trip to learn its request id.
    async fn run(&self, request: TransferRequest) -> Result<TransferReply, UsbError> {
        let (done_tx, done) = oneshot::channel();
        let cmd = Command::Submit {
            claim: self.claim,
            request,
            timeout: self.client.timeout,
            rid: None,
            done: done_tx,
        };
        self.client.cmd.send(cmd).map_err(|_| gone())?;
        checked(done.await.map_err(|_| gone())??)
    }

    /// Asks the host to cancel a transfer; its waiter gets `Cancelled` or the real result.
    pub fn cancel(&self, request_id: u32) {
        let _ = self
            .client
            .cmd
            .send(Command::Cancel(self.claim, request_id));
    }

    /// Control IN.
    ///
    /// # Errors
    /// [`UsbError::Stall`], [`UsbError::Timeout`], [`UsbError::NoDevice`], [`UsbError::Closed`]…
    pub async fn control_in(&self, setup: Setup) -> Result<Bytes, UsbError> {
        let req = TransferRequest {
            kind: TransferKind::Control(setup),
            flags: TransferFlags::default(),
            timeout_ms: 0,
            length: u32::from(setup.length),
            data: Bytes::new(),
        };
        Ok(self.run(req).await?.data)
    }

    /// Control OUT; `setup.length` is set from `data`.
    ///
    /// # Errors
    /// As [`Self::control_in`].
    pub async fn control_out(&self, mut setup: Setup, data: Bytes) -> Result<usize, UsbError> {
        setup.length = u16::try_from(data.len())
            .map_err(|_| UsbError::Protocol("control data over 65535 bytes".into()))?;
        let req = TransferRequest {
            kind: TransferKind::Control(setup),
            flags: TransferFlags::default(),
            timeout_ms: 0,
            length: u32::from(setup.length),
            data,
        };
        Ok(self.run(req).await?.actual_length as usize)
    }

    /// Bulk IN of up to `length` bytes.
    ///
    /// # Errors
    /// As [`Self::control_in`].
    pub async fn bulk_in(&self, endpoint: u8, length: u32) -> Result<Bytes, UsbError> {
        Ok(self
            .run(endpoint_in(TransferKind::Bulk(endpoint | 0x80), length))
            .await?
            .data)
    }

    /// Bulk OUT.
    ///
    /// # Errors
    /// As [`Self::control_in`].
    pub async fn bulk_out(&self, endpoint: u8, data: Bytes) -> Result<usize, UsbError> {
        Ok(self
            .run(endpoint_out(TransferKind::Bulk(endpoint & 0x7f), data))
            .await?
            .actual_length as usize)
    }

    /// Interrupt IN.
    ///
    /// # Errors
    /// As [`Self::control_in`].
    pub async fn interrupt_in(&self, endpoint: u8, length: u32) -> Result<Bytes, UsbError> {
        Ok(self
            .run(endpoint_in(
                TransferKind::Interrupt(endpoint | 0x80),
                length,
            ))
            .await?
            .data)
    }

    /// Interrupt OUT.
    ///
    /// # Errors
    /// As [`Self::control_in`].
    pub async fn interrupt_out(&self, endpoint: u8, data: Bytes) -> Result<usize, UsbError> {
        Ok(self
            .run(endpoint_out(TransferKind::Interrupt(endpoint & 0x7f), data))
            .await?
            .actual_length as usize)
    }

    async fn configure(&self, op: ConfigOp) -> Result<(), UsbError> {
        let reply = self
            .client
            .call(|tx| Command::Configure(self.claim, op, tx))
            .await?;
        checked(reply).map(drop)
    }

    /// SET_CONFIGURATION (cancels every pending transfer of the claim).
    ///
    /// # Errors
    /// [`UsbError::Stall`] when the device refuses.
    pub async fn set_configuration(&self, config: u8) -> Result<(), UsbError> {
        self.configure(ConfigOp::SetConfiguration(config)).await
    }

    /// SET_INTERFACE (cancels pending transfers on that interface's endpoints).
    ///
    /// # Errors
    /// [`UsbError::Stall`] when the device refuses.
    pub async fn set_interface(&self, interface: u8, alt: u8) -> Result<(), UsbError> {
        self.configure(ConfigOp::SetInterface(interface, alt)).await
    }

    /// CLEAR_HALT on an endpoint (cancels its pending transfers).
    ///
    /// # Errors
    /// [`UsbError::NoDevice`], [`UsbError::Closed`].
    pub async fn clear_halt(&self, endpoint: u8) -> Result<(), UsbError> {
        self.configure(ConfigOp::ClearHalt(endpoint)).await
    }

    /// Port reset (cancels every pending transfer).
    ///
    /// # Errors
    /// [`UsbError::NoDevice`], [`UsbError::Closed`].
    pub async fn reset(&self) -> Result<(), UsbError> {
        self.configure(ConfigOp::Reset).await
    }

    /// Starts a receive stream on an IN endpoint: the host keeps `depth` transfers queued.
    ///
    /// # Errors
    /// [`UsbError::Transfer`] (`invalid`) for a bad endpoint or depth.
    pub async fn stream(
        &self,
        endpoint: u8,
        depth: u8,
        transfer_size: u32,
    ) -> Result<StreamReceiver, UsbError> {
        let (tx, rx) = mpsc::channel(256);
        let start = StreamStart {
            endpoint,
            depth,
            transfer_size,
        };
        let reply = self
            .client
            .call(|r| Command::StreamStart(self.claim, start, tx, r))
            .await?;
        checked(reply).map(|_| rx)
    }

    /// Stops a receive stream.
    ///
    /// # Errors
    /// [`UsbError::Transfer`] (`invalid`) when no stream runs there.
    pub async fn stop_stream(&self, endpoint: u8) -> Result<(), UsbError> {
        let reply = self
            .client
            .call(|r| Command::StreamStop(self.claim, endpoint, r))
            .await?;
        checked(reply).map(drop)
    }

    /// Closes the claim; the host re-attaches kernel drivers.
    pub async fn close(self) {
        let (tx, rx) = oneshot::channel();
        if self.client.cmd.send(Command::Close(self.claim, tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn endpoint_in(kind: TransferKind, length: u32) -> TransferRequest {
    TransferRequest {
        kind,
        flags: TransferFlags::default(),
        timeout_ms: 0,
        length,
        data: Bytes::new(),
    }
}

fn endpoint_out(kind: TransferKind, data: Bytes) -> TransferRequest {
    TransferRequest {
        kind,
        flags: TransferFlags::default(),
        timeout_ms: 0,
        length: data.len() as u32,
        data,
    }
}
