//! Frame decoding, reassembly and binary body parsers must never panic and never hold more than
//! their bounds, whatever the bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reach_usb_proto::proto::data::{StreamData, StreamStart, TransferReply, TransferRequest, decode_credit, decode_status};
use reach_usb_proto::proto::{Frame, Reassembler};

fuzz_target!(|data: &[u8]| {
    let mut reassembler = Reassembler::new();
    // Split the input into messages at 0xFE 0xFE markers so one input can carry many frames.
    for part in data.split(|b| *b == 0xFE) {
        let Ok(frame) = Frame::decode(Bytes::copy_from_slice(part)) else { continue };
        if let Ok(Some(message)) = reassembler.push(frame) {
            let body = message.body.clone();
            let _ = TransferRequest::decode_control(body.clone());
            let _ = TransferRequest::decode_endpoint(body.clone(), false);
            let _ = TransferRequest::decode_endpoint(body.clone(), true);
            let _ = TransferReply::decode(body.clone());
            let _ = StreamData::decode(body.clone());
            let _ = StreamStart::decode(&body);
            let _ = decode_status(&body);
            let _ = decode_credit(&body);
        }
        assert!(reassembler.held_bytes() <= reach_usb_proto::limits::MAX_REASSEMBLY_TOTAL);
    }
});
