//! A technician with control and `usb` uses a device of a remote machine through a live
//! session: real server, real agent connection, real viewer socket, the fake device at the edge.

mod common;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use std::time::Duration;

use bytes::Bytes;
use reach_usb::proto::{DeviceFilter, Setup};

use common::TestServer;
use usb::*;

const MIB: usize = 1024 * 1024;

fn loopback_filter() -> DeviceFilter {
    DeviceFilter {
        vendor_id: Some(LOOPBACK.0),
        product_id: Some(LOOPBACK.1),
        ..DeviceFilter::default()
    }
}

#[tokio::test]
async fn a_technician_lists_only_acl_allowed_devices_and_reads_a_descriptor() {
    let s = TestServer::start().await;
    let (_host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "bench-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;

    let devices = client.list().await.expect("list");
    let ids: Vec<(u16, u16)> = devices
        .iter()
        .map(|d| (d.vendor_id, d.product_id))
        .collect();
    assert_eq!(ids, vec![LOOPBACK], "the denied device is never shown");

    let dev = client.open(loopback_filter()).await.expect("open");
    let desc = dev
        .control_in(Setup::get_device_descriptor())
        .await
        .expect("GET_DESCRIPTOR");
    assert_eq!(desc.len(), 18);
    assert_eq!(u16::from_le_bytes([desc[8], desc[9]]), LOOPBACK.0);
    assert_eq!(u16::from_le_bytes([desc[10], desc[11]]), LOOPBACK.1);
}

#[tokio::test]
async fn sixty_four_mib_of_bulk_data_come_back_byte_exact_through_the_relay() {
    let s = TestServer::start().await;
    let (_host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "echo-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(loopback_filter()).await.expect("open");

    let total = 64 * MIB;
    let pattern = |i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8;
    let data: Vec<u8> = (0..total).map(pattern).collect();
    let data = Bytes::from(data);
    let writer = {
        let (dev, data) = (dev.clone(), data.clone());
        tokio::spawn(async move {
            for chunk in data.chunks(MIB) {
                let n = dev
                    .bulk_out(0x02, data.slice_ref(chunk))
                    .await
                    .expect("bulk OUT");
                assert_eq!(n, chunk.len());
            }
        })
    };
    let mut received = Vec::with_capacity(total);
    while received.len() < total {
        let got = tokio::time::timeout(Duration::from_secs(30), dev.bulk_in(0x81, MIB as u32))
            .await
            .expect("bulk IN in time")
            .expect("bulk IN");
        received.extend_from_slice(&got);
    }
    writer.await.unwrap();
    assert_eq!(received.len(), total);
    assert!(received == data[..], "echoed bytes differ");
}

#[tokio::test]
async fn an_interrupt_in_stream_arrives_in_order() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "hid-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let dev = client.open(loopback_filter()).await.expect("open");

    let mut stream = dev.stream(0x85, 4, 8).await.expect("stream starts");
    for i in 0..200u32 {
        host.loopback.push_interrupt(&i.to_be_bytes());
    }
    for i in 0..200u32 {
        let packet = tokio::time::timeout(Duration::from_secs(10), stream.recv())
            .await
            .expect("packet in time")
            .expect("stream open");
        assert_eq!(packet.data[..], i.to_be_bytes(), "packet {i}");
    }
}
