//! Fake-device scenarios through the whole stack: stall, timeout, unplug, re-enumeration,
//! cancel, interrupt and bulk-IN streams, babble (overflow).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{rig, within};
use reach_usb::UsbError;
use reach_usb::backend::fake::Scripted;
use reach_usb::proto::{DeviceFilter, TransferKind, TransferRequest, TransferStatus};

#[tokio::test]
async fn stall_then_clear_halt_recovers_the_endpoint() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    rig.device.script(0x83, Scripted::Stall);
    assert_eq!(within(dev.bulk_in(0x83, 16)).await, Err(UsbError::Stall));
    assert_eq!(within(dev.bulk_in(0x83, 16)).await, Err(UsbError::Stall));
    within(dev.clear_halt(0x83)).await.unwrap();
    assert_eq!(within(dev.bulk_in(0x83, 16)).await.unwrap().len(), 16);
}

#[tokio::test(start_paused = true)]
async fn device_timeout_is_reported_as_timeout() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    rig.device.script(0x83, Scripted::Timeout);
    let req = TransferRequest {
        kind: TransferKind::Bulk(0x83),
        flags: Default::default(),
        timeout_ms: 200,
        length: 8,
        data: Bytes::new(),
    };
    let reply = within(dev.submit(req).await.unwrap().wait()).await.unwrap();
    assert_eq!(reply.status, TransferStatus::Timeout);
}

#[tokio::test(start_paused = true)]
async fn client_timeout_fires_after_ten_seconds_and_cancels_on_the_host() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(dev.bulk_in(0x81, 8).await, Err(UsbError::Timeout));
    assert!(started.elapsed() >= Duration::from_secs(10));
    // The claim still works.
    assert_eq!(within(dev.bulk_in(0x83, 4)).await.unwrap().len(), 4);
}

#[tokio::test]
async fn unplug_mid_transfer_fails_it_with_no_device_and_closes_the_claim() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let pending = within(dev.submit(TransferRequest {
        kind: TransferKind::Bulk(0x81),
        flags: Default::default(),
        timeout_ms: 0,
        length: 8,
        data: Bytes::new(),
    }))
    .await
    .unwrap();
    rig.device.script(0x83, Scripted::Unplug);
    let unplugging = dev.bulk_in(0x83, 8);
    let (a, b) = within(async { tokio::join!(pending.wait(), unplugging) }).await;
    assert!(
        matches!(a, Err(UsbError::NoDevice(_)))
            || matches!(a, Ok(ref r) if r.status == TransferStatus::NoDevice),
        "{a:?}"
    );
    assert!(matches!(b, Err(UsbError::NoDevice(_))), "{b:?}");
    let after = within(dev.bulk_in(0x83, 8)).await;
    assert!(
        matches!(after, Err(UsbError::Closed(_))),
        "claim closed after unplug: {after:?}"
    );
    assert!(!rig.device.is_open());
}

#[tokio::test]
async fn reenumerated_device_can_be_opened_again_under_its_new_bus_id() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let old_bus = dev.device().bus_id.clone();
    rig.device.reenumerate();
    let err = within(dev.bulk_in(0x83, 8)).await;
    assert!(
        matches!(err, Err(UsbError::NoDevice(_) | UsbError::Closed(_))),
        "{err:?}"
    );
    let again = within(rig.client.open(DeviceFilter {
        vendor_id: Some(0x0525),
        ..Default::default()
    }))
    .await
    .unwrap();
    assert_ne!(again.device().bus_id, old_bus);
    assert_eq!(within(again.bulk_in(0x83, 8)).await.unwrap().len(), 8);
}

#[tokio::test]
async fn cancelling_a_pending_interrupt_in_returns_cancelled() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let req = TransferRequest {
        kind: TransferKind::Interrupt(0x85),
        flags: Default::default(),
        timeout_ms: 0,
        length: 8,
        data: Bytes::new(),
    };
    let pending = within(dev.submit(req)).await.unwrap();
    dev.cancel(pending.request_id);
    let reply = within(pending.wait()).await.unwrap();
    assert_eq!(reply.status, TransferStatus::Cancelled);
}

#[tokio::test]
async fn interrupt_stream_delivers_packets_in_order_without_a_round_trip_each() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let mut stream = within(dev.stream(0x85, 4, 8)).await.unwrap();
    for i in 0..10u8 {
        rig.device.push_interrupt(&[i]);
    }
    for i in 0..10u8 {
        let packet = within(stream.recv()).await.unwrap();
        assert_eq!((packet.seq, &packet.data[..]), (u32::from(i), &[i][..]));
    }
    within(dev.stop_stream(0x85)).await.unwrap();
    assert_eq!(
        within(dev.stream(0x02, 4, 8)).await.err(),
        Some(UsbError::Transfer(TransferStatus::Invalid))
    );
}

#[tokio::test]
async fn short_not_ok_turns_a_short_in_into_an_error() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    within(dev.bulk_out(0x02, Bytes::from_static(b"abc")))
        .await
        .unwrap();
    let req = TransferRequest {
        kind: TransferKind::Bulk(0x81),
        flags: reach_usb::proto::TransferFlags(reach_usb::proto::TransferFlags::SHORT_NOT_OK),
        timeout_ms: 0,
        length: 8,
        data: Bytes::new(),
    };
    let reply = within(dev.submit(req).await.unwrap().wait()).await.unwrap();
    assert_eq!(
        (reply.status, &reply.data[..]),
        (TransferStatus::IoError, &b"abc"[..])
    );
}

#[tokio::test]
async fn bulk_in_stream_delivers_each_echoed_packet_without_a_request_each_and_stops() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let mut stream = within(dev.stream(0x81, 4, 64)).await.unwrap();
    for i in 0..8u32 {
        let sent = Bytes::from(format!("packet-{i}"));
        within(dev.bulk_out(0x02, sent.clone())).await.unwrap();
        let packet = within(stream.recv()).await.unwrap();
        assert_eq!(
            (packet.status, packet.endpoint, packet.seq, packet.dropped),
            (TransferStatus::Ok, 0x81, i, 0)
        );
        assert_eq!(packet.data, sent);
    }
    within(dev.stop_stream(0x81)).await.unwrap();
    // No stream transfer is left on the endpoint: the next echo goes to a plain bulk IN.
    within(dev.bulk_out(0x02, Bytes::from_static(b"after-stop")))
        .await
        .unwrap();
    assert_eq!(
        &within(dev.bulk_in(0x81, 64)).await.unwrap()[..],
        b"after-stop"
    );
    assert!(stream.try_recv().is_err(), "nothing streamed after STOP");
}

#[tokio::test]
async fn bulk_in_stream_from_a_source_endpoint_streams_full_transfers_in_sequence() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let mut stream = within(dev.stream(0x83, 4, 512)).await.unwrap();
    for seq in 0..32u32 {
        let packet = within(stream.recv()).await.unwrap();
        assert_eq!((packet.status, packet.seq), (TransferStatus::Ok, seq));
        assert_eq!(packet.data.len(), 512);
        assert!(packet.data.iter().enumerate().all(|(j, b)| *b == j as u8));
    }
    within(dev.stop_stream(0x83)).await.unwrap();
    // The claim keeps working after the stream.
    assert_eq!(within(dev.bulk_in(0x83, 16)).await.unwrap().len(), 16);
}

#[tokio::test]
async fn a_babbling_endpoint_completes_with_overflow_and_the_claim_survives() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    rig.device.script(0x83, Scripted::Babble);
    let req = TransferRequest {
        kind: TransferKind::Bulk(0x83),
        flags: Default::default(),
        timeout_ms: 0,
        length: 64,
        data: Bytes::new(),
    };
    let reply = within(dev.submit(req).await.unwrap().wait()).await.unwrap();
    assert_eq!(
        (reply.status, reply.actual_length),
        (TransferStatus::Overflow, 0)
    );
    // Without a script the same endpoint works again, on the same claim.
    assert_eq!(within(dev.bulk_in(0x83, 64)).await.unwrap().len(), 64);

    // An interrupt packet longer than the transfer asked for is babble too.
    rig.device.push_interrupt(&[0xAA; 16]);
    assert_eq!(
        within(dev.interrupt_in(0x85, 8)).await,
        Err(UsbError::Transfer(TransferStatus::Overflow))
    );
    rig.device.push_interrupt(&[1, 2, 3]);
    assert_eq!(
        &within(dev.interrupt_in(0x85, 8)).await.unwrap()[..],
        &[1, 2, 3]
    );

    within(dev.bulk_out(0x02, Bytes::from_static(b"still here")))
        .await
        .unwrap();
    assert_eq!(
        &within(dev.bulk_in(0x81, 64)).await.unwrap()[..],
        b"still here"
    );
    assert!(rig.device.is_open(), "the claim still holds the device");
}
