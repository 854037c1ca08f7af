//! Bus pieces between server instances: decoding, reassembly and acknowledgements must never
//! panic and never hold more than their bound, whatever the bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reach_proto::bus::{Credit, Kind, Piece, Reassembly, decode, decode_ack};

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut whole = Reassembly::new(MAX);
    let mut credit = Credit::default();
    // One input carries many payloads, split at 0xFE; each payload's first byte picks its kind.
    for part in data.split(|b| *b == 0xFE) {
        let Some((&first, rest)) = part.split_first() else { continue };
        if let Some(total) = decode_ack(rest) {
            credit.acked(total);
        }
        credit.sent(rest.len(), 1);
        let kind = match first % 3 {
            0 => Kind::Last,
            1 => Kind::More,
            _ => Kind::Close,
        };
        match decode(kind, Bytes::copy_from_slice(rest)) {
            Ok(Piece::Data { last, bytes }) => {
                if let Ok(Some(message)) = whole.push(last, bytes) {
                    assert!(message.len() <= MAX);
                }
            }
            Ok(Piece::Close { .. }) | Err(_) => {}
        }
    }
});
