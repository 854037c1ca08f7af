//! USB/IP decoding and the translator must never panic and never hold more than their bounds,
//! whatever vhci (or anything on its socket) sends; every URB completed in order is answered.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reach_usb::proto::TransferStatus;
use reach_usbip::wire::{decode_command, decode_reply};
use reach_usbip::{Completion, EndpointKind, EndpointTable, Event, Translator};

fuzz_target!(|data: &[u8]| {
    let _ = decode_command(data);
    let _ = decode_reply(data, |s| s % 2 == 0);
    let table = EndpointTable::default()
        .with(0x81, EndpointKind::Bulk)
        .with(0x02, EndpointKind::Bulk)
        .with(0x83, EndpointKind::Interrupt);
    let mut t = Translator::new(table);
    // Feed in two pieces so partial input is exercised; complete every submit with a reply
    // built from the input's own bytes.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for part in [&data[..split], &data[split..]] {
        if t.handle_input(part).is_err() {
            return;
        }
        while let Some(event) = t.poll_event() {
            let seqnum = match event {
                Event::Submit(s) => s.seqnum,
                Event::Configure { seqnum, .. } | Event::Cancel { seqnum } => seqnum,
            };
            let n = (seqnum as usize % 64).min(data.len());
            let completion = Completion {
                status: TransferStatus::from_u8((seqnum % 8) as u8).unwrap_or(TransferStatus::Ok),
                actual_length: n as u32,
                data: Bytes::copy_from_slice(&data[..n]),
            };
            let _ = t.handle_completion(seqnum, completion);
        }
        // Everything was completed in submission order, so nothing can still be held.
        assert!(t.pending().is_empty());
        while t.poll_transmit().is_some() {}
    }
});
