//! Receive streams on bulk IN endpoints: queued transfers, completions without requests, STOP,
//! and the bounded queue with its drop counter.

use super::*;
use crate::limits::MAX_STREAM_BACKLOG;

/// The sample device plus a bulk IN endpoint 0x82.
fn device_with_bulk_in() -> DeviceInfo {
    let mut d = device();
    d.interfaces[0].endpoints.push(crate::proto::EndpointInfo {
        address: 0x82,
        kind: "bulk".into(),
        max_packet_size: 512,
        interval: 0,
    });
    d
}

/// The stream transfers a batch of actions submits, checking they are bulk INs on `endpoint`.
fn stream_submits(actions: Vec<HostAction>, endpoint: u8) -> Vec<TransferId> {
    actions
        .into_iter()
        .map(|a| match a {
            HostAction::Submit { id, request, .. } => {
                assert_eq!(request.kind, TransferKind::Bulk(endpoint));
                id
            }
            other => panic!("expected a stream submit, got {other:?}"),
        })
        .collect()
}

#[test]
fn a_bulk_in_stream_queues_bulk_transfers_and_streams_completions_without_requests() {
    let mut p = Peer::new();
    let (claim, _) = p.open_device(1, device_with_bulk_in());
    let start = StreamStart {
        endpoint: 0x82,
        depth: 3,
        transfer_size: 512,
    };
    p.send(Op::StreamStart, claim, 7, start.encode());
    let mut queued = stream_submits(p.actions(), 0x82);
    assert_eq!(queued.len(), 3, "depth transfers queued at once");
    for i in 0..5u8 {
        let id = queued.remove(0);
        p.host
            .handle_transfer_complete(id, reply_ok(&b"abcde"[usize::from(i)..=usize::from(i)]));
        queued.extend(stream_submits(p.actions(), 0x82));
        assert_eq!(queued.len(), 3, "each completion is replaced");
    }
    let out = p.drain();
    assert_eq!((out[0].op, &out[0].body[..]), (Op::StreamStart, &[0u8][..]));
    let packets: Vec<_> = out[1..]
        .iter()
        .map(|m| {
            assert_eq!((m.op, m.request_id), (Op::StreamData, 7));
            crate::proto::data::StreamData::decode(m.body.clone()).unwrap()
        })
        .map(|d| (d.seq, d.endpoint, d.dropped, d.data))
        .collect();
    let expected: Vec<_> = (0..5u8)
        .map(|i| (u32::from(i), 0x82, 0, Bytes::copy_from_slice(&[b'a' + i])))
        .collect();
    assert_eq!(packets, expected);

    // STOP cancels what is queued; the cancelled completions end the stream silently.
    p.send(Op::StreamStop, claim, 8, Bytes::from_static(&[0x82]));
    let cancels: Vec<HostAction> = p.actions();
    assert_eq!(cancels.len(), 3);
    assert!(
        cancels
            .iter()
            .all(|a| matches!(a, HostAction::Cancel { id } if queued.contains(id)))
    );
    for id in queued {
        p.host
            .handle_transfer_complete(id, TransferReply::status(TransferStatus::Cancelled));
    }
    assert_eq!(p.actions(), vec![], "nothing resubmitted after STOP");
    let out = p.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].op, &out[0].body[..]), (Op::StreamStop, &[0u8][..]));
    // The endpoint is free for a new stream.
    p.send(Op::StreamStart, claim, 9, start.encode());
    assert_eq!(stream_submits(p.actions(), 0x82).len(), 3);
}

#[test]
fn a_bulk_in_stream_that_outruns_its_consumer_drops_and_counts_the_overflow() {
    let mut p = Peer::new();
    let (claim, _) = p.open_device(1, device_with_bulk_in());
    let start = StreamStart {
        endpoint: 0x82,
        depth: 2,
        transfer_size: 64,
    };
    p.send(Op::StreamStart, claim, 7, start.encode());
    let mut queued = stream_submits(p.actions(), 0x82);
    // Nobody transmits: completions pile up in the claim's queue until it is full.
    let overflow = 3;
    for _ in 0..MAX_STREAM_BACKLOG + overflow {
        let id = queued.remove(0);
        p.host.handle_transfer_complete(id, reply_ok(b"x"));
        queued.extend(stream_submits(p.actions(), 0x82));
    }
    let out = p.drain();
    let data: Vec<_> = out
        .iter()
        .filter(|m| m.op == Op::StreamData)
        .map(|m| crate::proto::data::StreamData::decode(m.body.clone()).unwrap())
        .collect();
    assert_eq!(data.len(), MAX_STREAM_BACKLOG, "the queue is bounded");
    assert!(
        data.iter()
            .enumerate()
            .all(|(i, d)| d.seq == i as u32 && d.dropped == 0)
    );
    // Once drained, the next completion goes out and reports what was dropped.
    p.host.handle_transfer_complete(queued[0], reply_ok(b"y"));
    let next = p.drain();
    let d = crate::proto::data::StreamData::decode(next[0].body.clone()).unwrap();
    assert_eq!(
        (d.seq, d.dropped, &d.data[..]),
        (MAX_STREAM_BACKLOG as u32, overflow as u32, &b"y"[..])
    );
}
