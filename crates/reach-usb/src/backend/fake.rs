//! A scriptable in-process USB device: the only fake in Reach, at the hardware edge.
//!
//! Endpoints of the default device ([`FakeDevice::loopback`]):
//! - `0x02` bulk OUT → echoed on `0x81` bulk IN (in order, waits for data);
//! - `0x83` bulk IN source (returns the requested length of a counting pattern);
//! - `0x04` bulk OUT sink (discards);
//! - `0x85` interrupt IN fed by [`FakeHandle::push_interrupt`] (waits for data);
//! - control: GET_DESCRIPTOR(device), vendor request 1 stores/returns up to 64 bytes, and the
//!   CDC-ACM class requests SET_LINE_CODING (7 bytes, stored), GET_LINE_CODING and
//!   SET_CONTROL_LINE_STATE.
//!
//! [`FakeDevice::cdc_acm`] describes the same endpoints as a USB-serial adapter (`0525:a4a7`,
//! like the Linux gadget serial in CDC-ACM mode): a communications interface (class 0x02) with
//! the interrupt endpoint and a data interface (class 0x0a) whose bulk OUT `0x02` is echoed on
//! bulk IN `0x81`, as a board's console that echoes what is typed.
//!
//! A script ([`FakeHandle::script`]) makes the next transfer on an endpoint stall, time out,
//! babble (overflow), or unplug the device mid-transfer; [`FakeHandle::reenumerate`] unplugs it
//! and brings it back under a new bus id.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{Notify, mpsc};

use super::{BackendError, BoxFuture, HotplugEvent, UsbBackend, UsbDevice};
use crate::proto::{
    ConfigOp, DeviceInfo, EndpointInfo, InterfaceInfo, TransferKind, TransferReply,
    TransferRequest, TransferStatus,
};

/// What the next transfer on an endpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scripted {
    /// Returns `stall` and halts the endpoint until CLEAR_HALT.
    Stall,
    /// Waits for the transfer's timeout (forever when 0), then returns `timeout`.
    Timeout,
    /// Returns `overflow` (device sent more than asked).
    Babble,
    /// Unplugs the device while the transfer is pending.
    Unplug,
}

#[derive(Default)]
struct State {
    present: bool,
    bus_id: String,
    generation: u32,
    echo: VecDeque<Bytes>,
    interrupts: VecDeque<Bytes>,
    halted: HashSet<u8>,
    script: HashMap<u8, VecDeque<Scripted>>,
    vendor_data: Vec<u8>,
    /// CDC-ACM line coding (SET_LINE_CODING), 7 bytes; empty until set.
    line_coding: Vec<u8>,
    opened: bool,
    configuration: u8,
    /// Transfers waiting for data, per endpoint, in submission order (a device's queue).
    lines: HashMap<u8, VecDeque<u64>>,
    next_ticket: u64,
}

/// A waiting transfer's place in its endpoint's line; leaving (done or cancelled) lets the
/// next one go.
struct Ticket {
    handle: FakeHandle,
    endpoint: u8,
    id: u64,
}

impl Ticket {
    fn take(handle: &FakeHandle, endpoint: u8) -> Self {
        let mut s = lock(&handle.0.state);
        let id = s.next_ticket;
        s.next_ticket += 1;
        s.lines.entry(endpoint).or_default().push_back(id);
        Self {
            handle: handle.clone(),
            endpoint,
            id,
        }
    }

    fn is_first(&self) -> bool {
        let s = lock(&self.handle.0.state);
        s.lines
            .get(&self.endpoint)
            .and_then(VecDeque::front)
            .is_some_and(|first| *first == self.id)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(line) = lock(&self.handle.0.state).lines.get_mut(&self.endpoint) {
            line.retain(|t| *t != self.id);
        }
        self.handle.0.notify.notify_waiters();
    }
}

struct Shared {
    template: DeviceInfo,
    state: Mutex<State>,
    notify: Notify,
    latency: Duration,
    bytes_per_sec: Option<u64>,
    watchers: Mutex<Vec<mpsc::UnboundedSender<HotplugEvent>>>,
}

/// Test-side control of a fake device.
#[derive(Clone)]
pub struct FakeHandle(Arc<Shared>);

/// Builder for a fake device.
pub struct FakeDevice {
    info: DeviceInfo,
    latency: Duration,
    bytes_per_sec: Option<u64>,
}

impl FakeDevice {
    /// The default loopback device, `0525:a4a0` like the Linux gadget zero loopback.
    pub fn loopback() -> Self {
        let ep = |address, kind: &str, max_packet_size, interval| EndpointInfo {
            address,
            kind: kind.into(),
            max_packet_size,
            interval,
        };
        let info = DeviceInfo {
            bus_id: "fake-1".into(),
            vendor_id: 0x0525,
            product_id: 0xa4a0,
            serial: Some("FAKE0001".into()),
            manufacturer: Some("Reach".into()),
            product: Some("Fake loopback".into()),
            speed: "high".into(),
            bcd_device: 0x0100,
            class: 0xff,
            subclass: 0,
            protocol: 0,
            active_configuration: 1,
            port_path: "fake-1".into(),
            interfaces: vec![InterfaceInfo {
                number: 0,
                alt: 0,
                class: 0xff,
                subclass: 0,
                protocol: 0,
                endpoints: vec![
                    ep(0x02, "bulk", 512, 0),
                    ep(0x81, "bulk", 512, 0),
                    ep(0x83, "bulk", 512, 0),
                    ep(0x04, "bulk", 512, 0),
                    ep(0x85, "interrupt", 64, 1),
                ],
            }],
        };
        Self {
            info,
            latency: Duration::ZERO,
            bytes_per_sec: None,
        }
    }

    /// A CDC-ACM USB-serial adapter, `0525:a4a7`, whose data interface echoes (module docs).
    pub fn cdc_acm() -> Self {
        let ep = |address, kind: &str, max_packet_size, interval| EndpointInfo {
            address,
            kind: kind.into(),
            max_packet_size,
            interval,
        };
        let interface = |number, class, subclass, protocol, endpoints| InterfaceInfo {
            number,
            alt: 0,
            class,
            subclass,
            protocol,
            endpoints,
        };
        Self::loopback().with_info(|d| {
            d.bus_id = "fake-2".into();
            d.port_path = "fake-2".into();
            d.product_id = 0xa4a7;
            d.serial = Some("FAKEACM1".into());
            d.product = Some("Fake serial (CDC-ACM)".into());
            d.class = 0x02;
            d.interfaces = vec![
                interface(0, 0x02, 0x02, 0x01, vec![ep(0x85, "interrupt", 16, 16)]),
                interface(
                    1,
                    0x0a,
                    0,
                    0,
                    vec![ep(0x02, "bulk", 512, 0), ep(0x81, "bulk", 512, 0)],
                ),
            ];
        })
    }

    /// Overrides the description (ids, serial, classes, bus id).
    pub fn with_info(mut self, edit: impl FnOnce(&mut DeviceInfo)) -> Self {
        edit(&mut self.info);
        self
    }

    /// Adds a fixed latency to every transfer.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Limits data transfer speed.
    pub fn with_speed(mut self, bytes_per_sec: u64) -> Self {
        self.bytes_per_sec = Some(bytes_per_sec);
        self
    }

    fn build(self) -> FakeHandle {
        let state = State {
            present: true,
            bus_id: self.info.bus_id.clone(),
            configuration: 1,
            ..State::default()
        };
        FakeHandle(Arc::new(Shared {
            template: self.info,
            state: Mutex::new(state),
            notify: Notify::new(),
            latency: self.latency,
            bytes_per_sec: self.bytes_per_sec,
            watchers: Mutex::new(Vec::new()),
        }))
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FakeHandle {
    fn info(&self) -> DeviceInfo {
        let s = lock(&self.0.state);
        let mut info = self.0.template.clone();
        info.bus_id.clone_from(&s.bus_id);
        info.port_path.clone_from(&s.bus_id);
        info.active_configuration = s.configuration;
        info
    }

    /// Queues a scripted behaviour for the next transfer on `endpoint` (0 for control).
    pub fn script(&self, endpoint: u8, what: Scripted) {
        lock(&self.0.state)
            .script
            .entry(endpoint)
            .or_default()
            .push_back(what);
    }

    /// Feeds one interrupt IN packet on `0x85`.
    pub fn push_interrupt(&self, data: &[u8]) {
        lock(&self.0.state)
            .interrupts
            .push_back(Bytes::copy_from_slice(data));
        self.0.notify.notify_waiters();
    }

    /// Interrupt IN packets fed with [`Self::push_interrupt`] that no transfer has taken yet.
    pub fn interrupts_pending(&self) -> usize {
        lock(&self.0.state).interrupts.len()
    }

    /// Unplugs the device: pending and future transfers return `no_device`.
    pub fn unplug(&self) {
        let info = self.info();
        {
            let mut s = lock(&self.0.state);
            s.present = false;
            s.opened = false;
        }
        self.0.notify.notify_waiters();
        self.emit(HotplugEvent::Removed(info));
    }

    /// Unplugs the device and brings it back under a new bus id (as after a firmware reset).
    pub fn reenumerate(&self) {
        self.unplug();
        {
            let mut s = lock(&self.0.state);
            s.generation += 1;
            s.bus_id = format!("{}.{}", self.0.template.bus_id, s.generation);
            s.present = true;
            s.halted.clear();
            s.echo.clear();
        }
        self.emit(HotplugEvent::Added(self.info()));
    }

    /// Whether a consumer currently holds the device open.
    pub fn is_open(&self) -> bool {
        lock(&self.0.state).opened
    }

    fn emit(&self, event: HotplugEvent) {
        let mut watchers = self
            .0
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        watchers.retain(|w| w.send(event.clone()).is_ok());
    }
}

/// A backend holding fake devices.
#[derive(Clone, Default)]
pub struct FakeBackend {
    devices: Arc<Mutex<Vec<FakeHandle>>>,
    /// Subscribers from [`UsbBackend::watch`]: told about devices added later too.
    watchers: Arc<Mutex<Vec<mpsc::UnboundedSender<HotplugEvent>>>>,
}

impl FakeBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (plugs in) a device and returns its test handle; watchers see it added.
    pub fn add(&self, device: FakeDevice) -> FakeHandle {
        let handle = device.build();
        let mut devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        devices.push(handle.clone());
        let mut watchers = self
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        watchers.retain(|w| !w.is_closed());
        handle
            .0
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(watchers.iter().cloned());
        drop((watchers, devices));
        handle.emit(HotplugEvent::Added(handle.info()));
        handle
    }

    fn find(&self, bus_id: &str) -> Option<FakeHandle> {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        devices
            .iter()
            .find(|d| {
                let s = lock(&d.0.state);
                s.present && s.bus_id == bus_id
            })
            .cloned()
    }
}

impl UsbBackend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<DeviceInfo>, BackendError>> {
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = devices
            .iter()
            .filter(|d| lock(&d.0.state).present)
            .map(FakeHandle::info)
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn open(&self, bus_id: &str) -> BoxFuture<'_, Result<Arc<dyn UsbDevice>, BackendError>> {
        let found = self.find(bus_id);
        let bus_id = bus_id.to_owned();
        Box::pin(async move {
            let handle = found.ok_or_else(|| BackendError::NoDevice(bus_id.clone()))?;
            let mut s = lock(&handle.0.state);
            if s.opened {
                return Err(BackendError::Busy(bus_id));
            }
            s.opened = true;
            let generation = s.generation;
            drop(s);
            Ok(Arc::new(OpenFake { handle, generation }) as Arc<dyn UsbDevice>)
        })
    }

    fn watch(&self) -> Option<mpsc::UnboundedReceiver<HotplugEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let devices = self
            .devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(tx.clone());
        for d in devices.iter() {
            d.0.watchers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(tx.clone());
        }
        Some(rx)
    }
}

struct OpenFake {
    handle: FakeHandle,
    generation: u32,
}

enum Step {
    Done(TransferReply),
    Wait,
}

impl OpenFake {
    fn shared(&self) -> &Shared {
        &self.handle.0
    }

    /// One attempt at completing a transfer against the current state.
    fn attempt(&self, req: &TransferRequest, scripted: Option<Scripted>) -> Step {
        let mut s = lock(&self.shared().state);
        if !s.present || s.generation != self.generation {
            return Step::Done(TransferReply::status(TransferStatus::NoDevice));
        }
        let ep = endpoint_of(req);
        match scripted {
            Some(Scripted::Stall) => {
                s.halted.insert(ep);
                return Step::Done(TransferReply::status(TransferStatus::Stall));
            }
            Some(Scripted::Babble) => {
                return Step::Done(TransferReply::status(TransferStatus::Overflow));
            }
            Some(Scripted::Timeout | Scripted::Unplug) => return Step::Wait,
            None => {}
        }
        if s.halted.contains(&ep) {
            return Step::Done(TransferReply::status(TransferStatus::Stall));
        }
        let step = run_endpoint(&mut s, req);
        drop(s);
        if ep == 0x02 {
            // Wake bulk INs on 0x81 that were queued before this data arrived (streams).
            self.shared().notify.notify_waiters();
        }
        step
    }

    async fn run(
        self: Arc<Self>,
        req: TransferRequest,
        mut ticket: Option<Ticket>,
    ) -> TransferReply {
        let ep = endpoint_of(&req);
        let scripted = lock(&self.shared().state)
            .script
            .get_mut(&ep)
            .and_then(VecDeque::pop_front);
        if scripted == Some(Scripted::Unplug) {
            self.handle.unplug();
        }
        if scripted == Some(Scripted::Timeout) {
            if req.timeout_ms == 0 {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(u64::from(req.timeout_ms))).await;
            return TransferReply::status(TransferStatus::Timeout);
        }
        self.delay(req.length as usize).await;
        loop {
            let notified = self.shared().notify.notified();
            if ticket.as_ref().is_none_or(Ticket::is_first) {
                match self.attempt(&req, scripted) {
                    Step::Done(reply) => return reply,
                    Step::Wait if ticket.is_none() => ticket = Some(Ticket::take(&self.handle, ep)),
                    Step::Wait => {}
                }
            }
            notified.await;
        }
    }

    async fn delay(&self, len: usize) {
        let mut wait = self.shared().latency;
        if let Some(bps) = self.shared().bytes_per_sec.filter(|b| *b > 0) {
            wait += Duration::from_secs_f64(len as f64 / bps as f64);
        }
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

fn endpoint_of(req: &TransferRequest) -> u8 {
    match req.kind {
        TransferKind::Control(_) => 0,
        TransferKind::Bulk(ep) | TransferKind::Interrupt(ep) => ep,
    }
}

fn run_endpoint(s: &mut State, req: &TransferRequest) -> Step {
    let ok = |data: Bytes| TransferReply {
        status: TransferStatus::Ok,
        actual_length: data.len() as u32,
        data,
    };
    let written = |n: usize| TransferReply {
        status: TransferStatus::Ok,
        actual_length: n as u32,
        data: Bytes::new(),
    };
    match req.kind {
        TransferKind::Control(setup) => Step::Done(run_control(s, setup, req)),
        TransferKind::Bulk(0x02) => {
            if !req.data.is_empty() {
                s.echo.push_back(req.data.clone());
            }
            Step::Done(written(req.data.len()))
        }
        TransferKind::Bulk(0x04) => Step::Done(written(req.data.len())),
        TransferKind::Bulk(0x83) => Step::Done(ok(pattern(req.length as usize))),
        TransferKind::Bulk(0x81) => match take_up_to(&mut s.echo, req.length as usize) {
            Some(data) => Step::Done(ok(data)),
            None => Step::Wait,
        },
        TransferKind::Interrupt(0x85) => match s.interrupts.pop_front() {
            Some(data) if data.len() > req.length as usize => {
                Step::Done(TransferReply::status(TransferStatus::Overflow))
            }
            Some(data) => Step::Done(ok(data)),
            None => Step::Wait,
        },
        _ => Step::Done(TransferReply::status(TransferStatus::Stall)),
    }
}

fn run_control(s: &mut State, setup: crate::proto::Setup, req: &TransferRequest) -> TransferReply {
    let ok = |data: Vec<u8>| TransferReply {
        status: TransferStatus::Ok,
        actual_length: data.len() as u32,
        data: Bytes::from(data),
    };
    match (setup.request_type, setup.request, setup.value) {
        (0x80, 6, 0x0100) => {
            let mut d = vec![
                18, 1, 0x00, 0x02, 0xff, 0, 0, 64, 0x25, 0x05, 0xa0, 0xa4, 0x00, 0x01, 1, 2, 3, 1,
            ];
            d.truncate(usize::from(setup.length));
            ok(d)
        }
        (0x40, 1, _) if req.data.len() <= 64 => {
            s.vendor_data = req.data.to_vec();
            TransferReply {
                status: TransferStatus::Ok,
                actual_length: req.data.len() as u32,
                data: Bytes::new(),
            }
        }
        (0xC0, 1, _) => {
            let mut d = s.vendor_data.clone();
            d.truncate(usize::from(setup.length));
            ok(d)
        }
        // CDC-ACM: SET_LINE_CODING, GET_LINE_CODING, SET_CONTROL_LINE_STATE.
        (0x21, 0x20, _) if req.data.len() == 7 => {
            s.line_coding = req.data.to_vec();
            TransferReply {
                status: TransferStatus::Ok,
                actual_length: 7,
                data: Bytes::new(),
            }
        }
        (0xA1, 0x21, _) if !s.line_coding.is_empty() => {
            let mut d = s.line_coding.clone();
            d.truncate(usize::from(setup.length));
            ok(d)
        }
        (0x21, 0x22, _) => TransferReply::status(TransferStatus::Ok),
        _ => TransferReply::status(TransferStatus::Stall),
    }
}

fn take_up_to(queue: &mut VecDeque<Bytes>, max: usize) -> Option<Bytes> {
    let front = queue.front_mut()?;
    if front.len() <= max {
        return queue.pop_front();
    }
    Some(front.split_to(max))
}

/// A counting pattern, built once and sliced, so the source endpoint costs no copies.
fn pattern(len: usize) -> Bytes {
    static PATTERN: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let max = crate::limits::MAX_TRANSFER as usize;
    let all = PATTERN.get_or_init(|| {
        let mut out = BytesMut::zeroed(max);
        out.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        out.freeze()
    });
    all.slice(..len.min(max))
}

impl UsbDevice for OpenFake {
    fn info(&self) -> DeviceInfo {
        self.handle.info()
    }

    fn transfer(self: Arc<Self>, request: TransferRequest) -> BoxFuture<'static, TransferReply> {
        // Like a real device queue, act at call time when nothing delays the transfer, so
        // pipelined transfers take effect in submission order.
        // A transfer behind others waiting for data on its endpoint takes its place in line.
        let ep = endpoint_of(&request);
        let undelayed = self.shared().latency.is_zero() && self.shared().bytes_per_sec.is_none();
        let (unscripted, queued) = {
            let s = lock(&self.shared().state);
            let unscripted = s.script.get(&ep).is_none_or(VecDeque::is_empty);
            (unscripted, s.lines.get(&ep).is_some_and(|l| !l.is_empty()))
        };
        let ticket = if undelayed && unscripted && !queued {
            match self.attempt(&request, None) {
                Step::Done(reply) => return Box::pin(async move { reply }),
                Step::Wait => Some(Ticket::take(&self.handle, ep)),
            }
        } else {
            queued.then(|| Ticket::take(&self.handle, ep))
        };
        Box::pin(self.run(request, ticket))
    }

    fn configure(self: Arc<Self>, op: ConfigOp) -> BoxFuture<'static, TransferStatus> {
        let mut s = lock(&self.shared().state);
        let status = if !s.present || s.generation != self.generation {
            TransferStatus::NoDevice
        } else {
            match op {
                ConfigOp::SetConfiguration(1) => {
                    s.configuration = 1;
                    TransferStatus::Ok
                }
                ConfigOp::SetConfiguration(_) | ConfigOp::SetInterface(_, 1..) => {
                    TransferStatus::Stall
                }
                ConfigOp::SetInterface(0, 0) => TransferStatus::Ok,
                ConfigOp::SetInterface(..) => TransferStatus::Stall,
                ConfigOp::ClearHalt(ep) => {
                    s.halted.remove(&ep);
                    TransferStatus::Ok
                }
                ConfigOp::Reset => {
                    s.halted.clear();
                    s.echo.clear();
                    TransferStatus::Ok
                }
            }
        };
        drop(s);
        Box::pin(async move { status })
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        let mut s = lock(&self.shared().state);
        if s.generation == self.generation {
            s.opened = false;
        }
        drop(s);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Setup;

    fn bulk(ep: u8, data: &[u8], length: u32) -> TransferRequest {
        TransferRequest {
            kind: TransferKind::Bulk(ep),
            flags: Default::default(),
            timeout_ms: 0,
            length,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[tokio::test]
    async fn echo_endpoint_returns_what_was_written() {
        let backend = FakeBackend::new();
        backend.add(FakeDevice::loopback());
        let dev = backend.open("fake-1").await.unwrap();
        assert_eq!(
            dev.clone()
                .transfer(bulk(0x02, b"hello", 5))
                .await
                .actual_length,
            5
        );
        let reply = dev.clone().transfer(bulk(0x81, b"", 3)).await;
        assert_eq!(&reply.data[..], b"hel");
        assert_eq!(&dev.transfer(bulk(0x81, b"", 512)).await.data[..], b"lo");
    }

    #[tokio::test]
    async fn cdc_acm_device_accepts_line_coding_and_echoes_its_data_interface() {
        let backend = FakeBackend::new();
        backend.add(FakeDevice::loopback());
        backend.add(FakeDevice::cdc_acm());
        let listed = backend.list().await.unwrap();
        assert_eq!(listed.len(), 2, "beside the loopback device");
        let acm = &listed[1];
        assert_eq!((acm.vendor_id, acm.product_id), (0x0525, 0xa4a7));
        let classes: Vec<u8> = acm.interfaces.iter().map(|i| i.class).collect();
        assert_eq!(classes, [0x02, 0x0a]);
        let dev = backend.open(&acm.bus_id).await.unwrap();
        let control = |request_type, request, length: u16, data: &[u8]| TransferRequest {
            kind: TransferKind::Control(Setup {
                request_type,
                request,
                value: 0,
                index: 0,
                length,
            }),
            flags: Default::default(),
            timeout_ms: 0,
            length: u32::from(length),
            data: Bytes::copy_from_slice(data),
        };
        let coding = [0x80, 0x25, 0, 0, 0, 0, 8]; // 9600 8N1
        let set = dev.clone().transfer(control(0x21, 0x20, 7, &coding)).await;
        assert_eq!(set.status, TransferStatus::Ok);
        let get = dev.clone().transfer(control(0xA1, 0x21, 7, &[])).await;
        assert_eq!(&get.data[..], &coding);
        let short = dev
            .clone()
            .transfer(control(0x21, 0x20, 3, &[1, 2, 3]))
            .await;
        assert_eq!(
            short.status,
            TransferStatus::Stall,
            "a line coding is 7 bytes"
        );
        dev.clone().transfer(bulk(0x02, b"AT\r", 3)).await;
        assert_eq!(&dev.transfer(bulk(0x81, b"", 64)).await.data[..], b"AT\r");
    }

    #[tokio::test]
    async fn stall_halts_the_endpoint_until_clear_halt() {
        let backend = FakeBackend::new();
        let handle = backend.add(FakeDevice::loopback());
        let dev = backend.open("fake-1").await.unwrap();
        handle.script(0x83, Scripted::Stall);
        assert_eq!(
            dev.clone().transfer(bulk(0x83, b"", 4)).await.status,
            TransferStatus::Stall
        );
        assert_eq!(
            dev.clone().transfer(bulk(0x83, b"", 4)).await.status,
            TransferStatus::Stall
        );
        assert_eq!(
            dev.clone().configure(ConfigOp::ClearHalt(0x83)).await,
            TransferStatus::Ok
        );
        assert_eq!(
            dev.transfer(bulk(0x83, b"", 4)).await.status,
            TransferStatus::Ok
        );
    }

    #[tokio::test]
    async fn second_open_is_busy_and_control_reads_the_descriptor() {
        let backend = FakeBackend::new();
        backend.add(FakeDevice::loopback());
        let dev = backend.open("fake-1").await.unwrap();
        assert!(matches!(
            backend.open("fake-1").await,
            Err(BackendError::Busy(_))
        ));
        let req = TransferRequest {
            kind: TransferKind::Control(Setup::get_device_descriptor()),
            flags: Default::default(),
            timeout_ms: 0,
            length: 18,
            data: Bytes::new(),
        };
        let reply = dev.transfer(req).await;
        assert_eq!(&reply.data[8..12], &[0x25, 0x05, 0xa0, 0xa4]);
    }
}
