//! The host session fed arbitrary frames (after a valid HELLO and one open claim) must never
//! panic, and must keep answering a LIST afterwards.
#![no_main]

use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reach_usb_proto::host::{HostAction, HostConfig, HostSession};
use reach_usb_proto::proto::control::{self, Hello};
use reach_usb_proto::proto::{Message, Op, TransferReply, TransferStatus};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut host = HostSession::new(HostConfig::enabled(), now);
    let hello = Hello { versions: vec![2], capabilities: vec![], window: 1 << 20, max_frame_payload: None };
    host.handle_message(now, Message::new(Op::Hello, 0, 0, control::to_body(&hello)).encode_frame(0));
    host.handle_message(now, Message::new(Op::Open, 0, 1, Bytes::from_static(b"{\"filter\":{}}")).encode_frame(0));
    let device = serde_json::from_str(r#"{"bus_id":"1-1","vendor_id":"0525","product_id":"a4a0","serial":null,"manufacturer":null,"product":null,"speed":"high","bcd_device":0,"class":255,"subclass":0,"protocol":0,"active_configuration":1,"port_path":"1-1","interfaces":[{"number":0,"alt":0,"class":255,"subclass":0,"protocol":0,"endpoints":[{"address":129,"kind":"bulk","max_packet_size":512,"interval":0}]}]}"#).unwrap();
    host.handle_open_result(now, 1, Ok(device));
    for part in data.split(|b| *b == 0xFE) {
        host.handle_message(now, Bytes::copy_from_slice(part));
        while let Some(action) = host.poll_action() {
            if let HostAction::Submit { id, .. } = action {
                host.handle_transfer_complete(id, TransferReply::status(TransferStatus::Ok));
            }
        }
        while host.poll_transmit().is_some() {}
    }
    host.handle_message(now, Message::new(Op::List, 0, u32::MAX, Bytes::from_static(b"{}")).encode_frame(0));
    while host.poll_transmit().is_some() {}
});
