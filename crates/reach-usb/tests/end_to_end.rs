//! Client → protocol → host session → fake device over an in-memory transport.

mod common;

use bytes::Bytes;
use common::{rig, within};
use reach_usb::UsbError;
use reach_usb::proto::{DeviceFilter, Setup};

#[tokio::test]
async fn list_open_and_read_the_device_descriptor() {
    let rig = rig();
    let devices = within(rig.client.list()).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].vendor_id, 0x0525);
    let dev = within(rig.client.open(DeviceFilter {
        vendor_id: Some(0x0525),
        ..Default::default()
    }))
    .await
    .unwrap();
    assert_eq!(dev.device().product_id, 0xa4a0);
    let desc = within(dev.control_in(Setup::get_device_descriptor()))
        .await
        .unwrap();
    assert_eq!(desc.len(), 18);
    assert_eq!(&desc[8..12], &[0x25, 0x05, 0xa0, 0xa4]);
}

#[tokio::test]
async fn one_mebibyte_bulk_echo_is_byte_exact() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let data: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let written = within(dev.bulk_out(0x02, Bytes::from(data.clone())))
        .await
        .unwrap();
    assert_eq!(written, data.len());
    let back = within(dev.bulk_in(0x81, data.len() as u32)).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back[..] == data[..], "echo differs");
}

#[tokio::test]
async fn many_transfers_in_flight_complete_matched_by_request_id() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..64u32 {
        let len = 100 + i;
        let req = reach_usb::proto::TransferRequest {
            kind: reach_usb::proto::TransferKind::Bulk(0x83),
            flags: Default::default(),
            timeout_ms: 0,
            length: len,
            data: Bytes::new(),
        };
        pending.push((len, within(dev.submit(req)).await.unwrap()));
    }
    for (len, p) in pending {
        let reply = within(p.wait()).await.unwrap();
        assert_eq!(reply.data.len() as u32, len);
    }
}

#[tokio::test]
async fn opening_a_missing_device_says_no_device_matches() {
    let rig = rig();
    let err = within(rig.client.open(DeviceFilter {
        vendor_id: Some(0xdead),
        ..Default::default()
    }))
    .await
    .err()
    .unwrap();
    assert_eq!(err, UsbError::NoDevice("no device matches".into()));
}

#[tokio::test]
async fn close_releases_the_device_for_the_next_open() {
    let rig = rig();
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    assert!(rig.device.is_open());
    within(dev.close()).await;
    within(async {
        while rig.device.is_open() {
            tokio::task::yield_now().await
        }
    })
    .await;
    let again = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    assert_eq!(again.device().vendor_id, 0x0525);
}
