//! The pump against the fake device through a real host session and client, with a real
//! Unix socket pair standing in for vhci's end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reach_usb::backend::fake::{FakeBackend, FakeDevice, FakeHandle, Scripted};
use reach_usb::client::UsbClient;
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{AllowAll, HostRunner, memory_pair};
use reach_usb::proto::DeviceFilter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::*;
use crate::wire::{CmdSubmit, CmdUnlink, Direction, Reply, RetSubmit, RetUnlink, decode_reply};

const WAIT: Duration = Duration::from_secs(10);

/// The kernel's side of the socket.
struct FakeVhci {
    sock: UnixStream,
    buf: Vec<u8>,
    ins: Vec<u32>,
}

impl FakeVhci {
    async fn submit(&mut self, seqnum: u32, ep: u8, dir: Direction, len: u32, data: &[u8]) {
        self.submit_with_setup(seqnum, ep, dir, len, [0; 8], data)
            .await;
    }

    async fn submit_with_setup(
        &mut self,
        seqnum: u32,
        ep: u8,
        direction: Direction,
        buffer_length: u32,
        setup: [u8; 8],
        data: &[u8],
    ) {
        if direction == Direction::In {
            self.ins.push(seqnum);
        }
        let cmd = CmdSubmit {
            seqnum,
            devid: 1,
            direction,
            ep,
            transfer_flags: 0,
            buffer_length,
            interval: 0,
            setup,
            data: Bytes::copy_from_slice(data),
        };
        self.sock.write_all(&cmd.encode()).await.unwrap();
    }

    async fn unlink(&mut self, seqnum: u32, target: u32) {
        let cmd = CmdUnlink {
            seqnum,
            devid: 1,
            unlink_seqnum: target,
        };
        self.sock.write_all(&cmd.encode()).await.unwrap();
    }

    async fn reply(&mut self) -> Reply {
        loop {
            let ins = self.ins.clone();
            if let Some((r, used)) = decode_reply(&self.buf, |s| ins.contains(&s)).unwrap() {
                self.buf.drain(..used);
                return r;
            }
            let mut chunk = [0u8; 65536];
            let n = timeout(WAIT, self.sock.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "pump closed the socket");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn ret_submit(&mut self) -> RetSubmit {
        match self.reply().await {
            Reply::Submit(r) => r,
            other => panic!("expected RET_SUBMIT, got {other:?}"),
        }
    }
}

async fn attached() -> (FakeVhci, FakeHandle, JoinHandle<PumpEnd>) {
    let backend = FakeBackend::new();
    let device = backend.add(FakeDevice::loopback());
    let (host_end, client_end) = memory_pair();
    let runner = HostRunner::new(
        HostSession::new(HostConfig::enabled(), Instant::now()),
        Arc::new(backend),
        Arc::new(AllowAll),
        "test",
    );
    tokio::spawn(runner.serve(host_end));
    let client = UsbClient::connect(client_end);
    let handle = client.open(DeviceFilter::default()).await.unwrap();
    let table = EndpointTable::from_device(handle.device());
    let (ours, theirs) = UnixStream::pair().unwrap();
    let task = tokio::spawn(pump(handle, ours, table));
    let vhci = FakeVhci {
        sock: theirs,
        buf: Vec::new(),
        ins: Vec::new(),
    };
    (vhci, device, task)
}

#[tokio::test]
async fn control_and_bulk_urbs_reach_the_device_and_come_back() {
    let (mut vhci, _dev, _task) = attached().await;
    let get_desc = [0x80, 6, 0, 1, 0, 0, 18, 0];
    vhci.submit_with_setup(1, 0, Direction::In, 18, get_desc, &[])
        .await;
    let r = vhci.ret_submit().await;
    assert_eq!((r.seqnum, r.status, r.actual_length), (1, 0, 18));
    assert_eq!(&r.data[8..12], &[0x25, 0x05, 0xa0, 0xa4]);
    vhci.submit(2, 2, Direction::Out, 5, b"hello").await;
    let r = vhci.ret_submit().await;
    assert_eq!((r.seqnum, r.status, r.actual_length), (2, 0, 5));
    vhci.submit(3, 1, Direction::In, 512, &[]).await;
    let r = vhci.ret_submit().await;
    assert_eq!((r.seqnum, &r.data[..]), (3, &b"hello"[..]));
}

#[tokio::test]
async fn many_urbs_in_flight_keep_bulk_data_and_replies_in_order() {
    let (mut vhci, _dev, _task) = attached().await;
    // 32 INs queued first (they wait for data), then 32 OUTs of 1 KiB each.
    for i in 0..32 {
        vhci.submit(100 + i, 1, Direction::In, 1024, &[]).await;
    }
    let mut sent = Vec::new();
    for i in 0..32u32 {
        let chunk: Vec<u8> = (0..1024u32).map(|b| (b * 7 + i) as u8).collect();
        sent.extend_from_slice(&chunk);
        vhci.submit(200 + i, 2, Direction::Out, 1024, &chunk).await;
    }
    // Replies on the IN endpoint come back in submission order, as from a real controller.
    let mut in_order = Vec::new();
    let mut received = Vec::new();
    for _ in 0..64 {
        let r = vhci.ret_submit().await;
        assert_eq!(r.status, 0, "seqnum {}", r.seqnum);
        if r.seqnum < 200 {
            in_order.push(r.seqnum);
            received.extend_from_slice(&r.data);
        }
    }
    assert_eq!(in_order, (100..132).collect::<Vec<u32>>());
    assert_eq!(received, sent);
}

#[tokio::test]
async fn an_unlinked_pending_in_is_cancelled_and_answered_econnreset() {
    let (mut vhci, _dev, _task) = attached().await;
    vhci.submit(1, 1, Direction::In, 64, &[]).await;
    vhci.unlink(2, 1).await;
    let expected = Reply::Unlink(RetUnlink {
        seqnum: 2,
        status: -104,
    });
    assert_eq!(vhci.reply().await, expected);
    // The endpoint still works afterwards.
    vhci.submit(3, 2, Direction::Out, 2, b"ok").await;
    vhci.submit(4, 1, Direction::In, 64, &[]).await;
    assert_eq!(vhci.ret_submit().await.seqnum, 3);
    assert_eq!(&vhci.ret_submit().await.data[..], b"ok");
}

#[tokio::test]
async fn a_stall_is_epipe_and_clear_feature_halt_clears_it() {
    let (mut vhci, dev, _task) = attached().await;
    dev.script(0x83, Scripted::Stall);
    vhci.submit(1, 3, Direction::In, 4, &[]).await;
    assert_eq!(vhci.ret_submit().await.status, -32);
    vhci.submit(2, 3, Direction::In, 4, &[]).await;
    assert_eq!(vhci.ret_submit().await.status, -32, "still halted");
    let clear_halt = [0x02, 1, 0, 0, 0x83, 0, 0, 0];
    vhci.submit_with_setup(3, 0, Direction::Out, 0, clear_halt, &[])
        .await;
    assert_eq!(vhci.ret_submit().await.status, 0);
    vhci.submit(4, 3, Direction::In, 4, &[]).await;
    let r = vhci.ret_submit().await;
    assert_eq!((r.status, r.data.len()), (0, 4));
}

#[tokio::test]
async fn closing_the_vhci_socket_ends_the_pump_as_detached() {
    let (vhci, _dev, task) = attached().await;
    drop(vhci);
    let end = timeout(WAIT, task).await.unwrap().unwrap();
    assert!(matches!(end, PumpEnd::Detached), "{end:?}");
}

#[tokio::test]
async fn an_unplug_answers_enodev_and_ends_the_pump_as_claim_lost() {
    let (mut vhci, dev, task) = attached().await;
    dev.script(0x83, Scripted::Unplug);
    vhci.submit(1, 3, Direction::In, 4, &[]).await;
    assert_eq!(vhci.ret_submit().await.status, -19);
    // The claim is over: the pump stops by itself (attach then detaches the vhci port).
    let end = timeout(WAIT, task).await.unwrap().unwrap();
    assert!(matches!(end, PumpEnd::ClaimLost(_)), "{end:?}");
}

#[tokio::test]
async fn garbage_from_vhci_ends_the_pump_as_a_protocol_error() {
    let (mut vhci, _dev, task) = attached().await;
    vhci.sock.write_all(&[0xee; 48]).await.unwrap();
    let end = timeout(WAIT, task).await.unwrap().unwrap();
    assert!(matches!(end, PumpEnd::Protocol(_)), "{end:?}");
}

#[tokio::test]
async fn interrupt_reports_are_read_ahead_by_a_stream_and_answer_later_urbs_in_order() {
    let (mut vhci, dev, _task) = attached().await;
    vhci.submit(1, 5, Direction::In, 64, &[]).await;
    dev.push_interrupt(b"first");
    let r = vhci.ret_submit().await;
    assert_eq!((r.seqnum, r.status, &r.data[..]), (1, 0, &b"first"[..]));
    // No URB is waiting now, yet the host keeps reading: the reports leave the device at once.
    dev.push_interrupt(b"second");
    dev.push_interrupt(b"third");
    let drained = async {
        while dev.interrupts_pending() > 0 {
            tokio::task::yield_now().await;
        }
    };
    timeout(WAIT, drained)
        .await
        .expect("the stream read the reports ahead");
    vhci.submit(2, 5, Direction::In, 64, &[]).await;
    vhci.submit(3, 5, Direction::In, 64, &[]).await;
    assert_eq!(&vhci.ret_submit().await.data[..], b"second");
    assert_eq!(&vhci.ret_submit().await.data[..], b"third");
    // An unlinked waiting interrupt URB is answered at once; the stream serves the next one.
    vhci.submit(4, 5, Direction::In, 64, &[]).await;
    vhci.unlink(5, 4).await;
    let unlinked = Reply::Unlink(RetUnlink {
        seqnum: 5,
        status: -104,
    });
    assert_eq!(vhci.reply().await, unlinked);
    vhci.submit(6, 5, Direction::In, 64, &[]).await;
    dev.push_interrupt(b"fourth");
    let r = vhci.ret_submit().await;
    assert_eq!((r.seqnum, &r.data[..]), (6, &b"fourth"[..]));
}

#[tokio::test]
async fn a_stalled_interrupt_stream_is_epipe_and_restarts_after_clear_halt() {
    let (mut vhci, dev, _task) = attached().await;
    dev.script(0x85, Scripted::Stall);
    vhci.submit(1, 5, Direction::In, 64, &[]).await;
    assert_eq!(vhci.ret_submit().await.status, -32);
    let clear_halt = [0x02, 1, 0, 0, 0x85, 0, 0, 0];
    vhci.submit_with_setup(2, 0, Direction::Out, 0, clear_halt, &[])
        .await;
    assert_eq!(vhci.ret_submit().await.status, 0);
    vhci.submit(3, 5, Direction::In, 64, &[]).await;
    dev.push_interrupt(b"again");
    let r = vhci.ret_submit().await;
    assert_eq!((r.seqnum, r.status, &r.data[..]), (3, 0, &b"again"[..]));
}

#[tokio::test]
async fn an_unplug_under_a_waiting_interrupt_urb_answers_enodev_and_ends_the_pump() {
    let (mut vhci, dev, task) = attached().await;
    vhci.submit(1, 5, Direction::In, 64, &[]).await;
    dev.push_interrupt(b"up");
    assert_eq!(vhci.ret_submit().await.status, 0);
    vhci.submit(2, 5, Direction::In, 64, &[]).await;
    dev.unplug();
    assert_eq!(vhci.ret_submit().await.status, -19);
    let end = timeout(WAIT, task).await.unwrap().unwrap();
    assert!(matches!(end, PumpEnd::ClaimLost(_)), "{end:?}");
}
