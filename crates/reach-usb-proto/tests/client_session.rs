//! Spec tests of `ClientSession` (docs/usb-protocol.md), run against a real `HostSession` through
//! the two-session harness in virtual time.

mod pair;

use std::time::Duration;

use pair::{Pair, TIMEOUT, bulk_in, bulk_out};
use reach_usb_proto::UsbError;
use reach_usb_proto::client::ClientEvent;
use reach_usb_proto::host::HostConfig;
use reach_usb_proto::limits::{LARGE_FRAME_PAYLOAD, MIN_WINDOW};

/// Chunk of a frame between two current peers (`large_frames`).
const CHUNK: usize = LARGE_FRAME_PAYLOAD - 4;
use reach_usb_proto::proto::{ClosedReason, DeviceFilter, Op, TransferReply, TransferStatus};

#[test]
fn opening_a_device_gives_a_claim_and_the_device_description() {
    let mut p = Pair::new();
    let rid = p.client.open(p.now, DeviceFilter::default(), TIMEOUT);
    p.settle();
    let events = p.take_events();
    let [ClientEvent::Opened { request_id, result }] = &events[..] else {
        panic!("one OPENED expected: {events:?}");
    };
    assert_eq!(*request_id, rid);
    let opened = result.as_ref().expect("opened");
    assert_eq!(opened.device.vendor_id, 0x0525);
    assert_eq!(p.client.claim_ids(), vec![opened.claim_id]);
    assert_eq!(p.from_client[0].op, Op::Hello, "HELLO goes first");
}

#[test]
fn listing_before_the_host_answers_hello_still_gets_the_device_list() {
    let mut p = Pair::with(HostConfig::enabled(), Duration::from_millis(20));
    let rid = p.client.list(p.now, TIMEOUT);
    p.settle();
    let listed = p.take_events().into_iter().find_map(|e| match e {
        ClientEvent::Listed { request_id, result } if request_id == rid => Some(result),
        _ => None,
    });
    assert_eq!(listed.expect("answered").expect("listed").len(), 1);
}

#[test]
fn an_open_refused_by_a_switched_off_host_is_denied() {
    let mut p = Pair::with(HostConfig::default(), Duration::ZERO);
    let rid = p.client.open(p.now, DeviceFilter::default(), TIMEOUT);
    p.settle();
    let events = p.take_events();
    assert!(
        matches!(&events[..], [ClientEvent::Opened { request_id, result: Err(UsbError::Denied(_)) }] if *request_id == rid),
        "{events:?}"
    );
    assert!(p.client.claim_ids().is_empty());
}

#[test]
fn many_transfers_are_in_flight_at_once_and_each_completes_once() {
    let mut p = Pair::new();
    let claim = p.open();
    p.auto = false;
    let rids: Vec<u32> = (0..200)
        .map(|i| p.submit(claim, &bulk_in(64 + i)))
        .collect();
    p.settle();
    assert_eq!(
        p.held.len(),
        200,
        "every request reached the device before any finished"
    );
    assert_eq!(p.client.pending_count(claim), 200);
    while !p.held.is_empty() {
        p.complete(0);
    }
    p.settle();
    let done = p.take_done();
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), rids);
    for (i, (_, result)) in done.iter().enumerate() {
        assert_eq!(result.as_ref().unwrap().data.len(), 64 + i);
    }
    assert_eq!(p.client.pending_count(claim), 0);
}

#[test]
fn completions_in_any_order_are_matched_to_their_requests() {
    let mut p = Pair::new();
    let claim = p.open();
    p.auto = false;
    let rids: Vec<u32> = [10u32, 20, 30, 40]
        .iter()
        .map(|n| p.submit(claim, &bulk_in(*n)))
        .collect();
    p.settle();
    for index in [3, 0, 1, 0] {
        p.complete(index);
    }
    p.settle();
    let done = p.take_done();
    let got: Vec<(u32, usize)> = done
        .iter()
        .map(|(rid, r)| (*rid, r.as_ref().unwrap().data.len()))
        .collect();
    assert_eq!(
        got,
        [(rids[3], 40), (rids[0], 10), (rids[2], 30), (rids[1], 20)]
    );
}

#[test]
fn cancel_reaches_the_device_and_the_reply_says_cancelled() {
    let mut p = Pair::new();
    let claim = p.open();
    p.auto = false;
    let keep = p.submit(claim, &bulk_in(8));
    let gone = p.submit(claim, &bulk_in(8));
    p.settle();
    p.client.cancel(claim, gone);
    p.settle();
    let target = p.held[1].id;
    assert_eq!(p.cancels, vec![target]);
    p.complete_with(target, TransferReply::status(TransferStatus::Cancelled));
    p.complete(0);
    p.settle();
    let done = p.take_done();
    assert_eq!(done.len(), 2);
    assert_eq!(done[0].0, gone);
    assert_eq!(
        done[0].1.as_ref().unwrap().status,
        TransferStatus::Cancelled
    );
    assert_eq!(done[1].0, keep);
    assert_eq!(done[1].1.as_ref().unwrap().status, TransferStatus::Ok);
}

#[test]
fn cancelling_a_request_that_is_not_pending_sends_nothing() {
    let mut p = Pair::new();
    let claim = p.open();
    let rid = p.submit(claim, &bulk_in(8));
    p.settle();
    assert_eq!(p.take_done().len(), 1);
    let before = p.from_client.len();
    p.client.cancel(claim, rid);
    p.client.cancel(claim, 9999);
    p.settle();
    assert_eq!(p.from_client.len(), before);
}

#[test]
fn out_data_waits_for_credit_and_never_exceeds_the_hosts_window() {
    let config = HostConfig {
        window: MIN_WINDOW,
        ..HostConfig::enabled()
    };
    let mut p = Pair::with(config, Duration::from_millis(5));
    let claim = p.open();
    p.auto = false;
    let half = (MIN_WINDOW / 2) as usize;
    let rids: Vec<u32> = (0..6u8)
        .map(|i| p.submit(claim, &bulk_out(vec![i; half])))
        .collect();
    p.settle();
    let sent: usize = data_bytes(&p.from_client);
    assert!(sent <= MIN_WINDOW as usize, "{sent} bytes outstanding");
    assert_eq!(
        p.held.len(),
        1,
        "the second OUT does not fit the remaining credit"
    );
    while p.ran.len() < 6 || !p.held.is_empty() {
        assert!(!p.held.is_empty(), "stuck waiting for credit");
        p.complete(0);
        p.settle();
    }
    assert!(p.from_host.iter().any(|s| s.op == Op::Credit));
    let done = p.take_done();
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), rids);
    assert!(
        done.iter()
            .all(|d| d.1.as_ref().unwrap().actual_length as usize == half)
    );
    assert!(
        !p.host_events
            .iter()
            .any(|e| format!("{e:?}").contains("CreditExhausted"))
    );
}

#[test]
fn the_client_grants_credit_back_so_in_data_beyond_its_window_flows() {
    let mut p = Pair::new();
    let claim = p.open();
    let mib = 1024 * 1024;
    let n = 40; // 40 MiB of replies through a 32 MiB client window
    for _ in 0..n {
        p.submit(claim, &bulk_in(mib));
    }
    p.settle();
    let done = p.take_done();
    assert_eq!(done.len(), n);
    assert!(
        done.iter()
            .all(|d| d.1.as_ref().unwrap().data.len() == mib as usize)
    );
    assert!(p.from_client.iter().any(|s| s.op == Op::Credit));
}

#[test]
fn a_large_out_is_split_into_frames_and_runs_once_with_its_exact_data() {
    let mut p = Pair::new();
    let claim = p.open();
    let data: Vec<u8> = (0..(CHUNK * 3 + 7)).map(|i| (i % 251) as u8).collect();
    let rid = p.submit(claim, &bulk_out(data.clone()));
    p.settle();
    assert_eq!(p.ran.len(), 1);
    assert_eq!(&p.ran[0].request.data[..], &data[..]);
    let frames: Vec<_> = p
        .from_client
        .iter()
        .filter(|s| s.request_id == rid)
        .collect();
    assert_eq!(frames.len(), 4);
    assert!(frames.iter().all(|s| s.payload <= LARGE_FRAME_PAYLOAD));
    assert_eq!(
        p.take_done()[0].1.as_ref().unwrap().actual_length as usize,
        data.len()
    );
}

#[test]
fn a_large_in_is_reassembled_into_one_reply() {
    let mut p = Pair::new();
    let claim = p.open();
    let len = (CHUNK * 5 + 3) as u32;
    let rid = p.submit(claim, &bulk_in(len));
    p.settle();
    let frames = p.from_host.iter().filter(|s| s.request_id == rid).count();
    assert_eq!(frames, 6);
    let done = p.take_done();
    let reply = done[0].1.as_ref().unwrap();
    assert_eq!(reply.data.len(), len as usize);
    assert!(reply.data.iter().enumerate().all(|(i, b)| *b == i as u8));
}

#[test]
fn the_link_delay_costs_one_round_trip_per_transfer() {
    let one_way = Duration::from_millis(25);
    let mut p = Pair::with(HostConfig::enabled(), one_way);
    let claim = p.open();
    let start = p.now;
    p.submit(claim, &bulk_in(512));
    p.settle();
    assert_eq!(p.take_done().len(), 1);
    assert_eq!(p.now - start, one_way * 2);
}

#[test]
fn a_transfer_past_its_deadline_times_out_and_is_cancelled_on_the_host() {
    let mut p = Pair::new();
    let claim = p.open();
    p.auto = false;
    let rid = p
        .client
        .submit(p.now, claim, &bulk_in(8), Duration::from_secs(1))
        .unwrap();
    p.settle();
    p.advance(Duration::from_secs(2));
    let done = p.take_done();
    assert!(
        matches!(&done[..], [(r, Err(UsbError::Timeout))] if *r == rid),
        "{done:?}"
    );
    assert_eq!(p.cancels, vec![p.held[0].id]);
    p.complete_with(
        p.held[0].id,
        TransferReply::status(TransferStatus::Cancelled),
    );
    p.settle();
    assert!(
        p.take_done().is_empty(),
        "the late reply is dropped: delivered once"
    );
}

#[test]
fn a_lost_link_fails_control_requests_but_keeps_claims() {
    let mut p = Pair::with(HostConfig::enabled(), Duration::from_millis(10));
    let claim = p.open();
    let rid = p.client.list(p.now, TIMEOUT);
    p.drop_link();
    let events = p.take_events();
    assert!(
        matches!(&events[..], [ClientEvent::Listed { request_id, result: Err(UsbError::Closed(_)) }] if *request_id == rid),
        "{events:?}"
    );
    assert_eq!(p.client.claim_ids(), vec![claim]);
}

#[test]
fn resume_runs_every_out_exactly_once_across_a_drop() {
    let mut p = Pair::with(HostConfig::enabled(), Duration::from_millis(10));
    let claim = p.open();
    p.auto = false;
    // a: done on the device, reply lost on the link; b: running; c: lost before the host.
    let a = p.submit(claim, &bulk_out(&b"a"[..]));
    let b = p.submit(claim, &bulk_out(&b"b"[..]));
    p.settle();
    p.complete(0);
    let c = p.submit(claim, &bulk_out(&b"c"[..]));
    p.drop_link_after(0);
    // d: submitted while the link is down.
    let d = p.submit(claim, &bulk_out(&b"d"[..]));
    p.restore_link();
    let resumed = p.take_events();
    assert!(
        resumed
            .iter()
            .any(|e| matches!(e, ClientEvent::Resumed { result: Ok(()), .. })),
        "{resumed:?}"
    );
    let replayed: Vec<u32> = resumed
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Done { request_id, .. } => Some(*request_id),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, [a], "the retained completion is replayed");
    while !p.held.is_empty() {
        p.complete(0);
    }
    p.settle();
    let ran: Vec<&[u8]> = p.ran.iter().map(|r| &r.request.data[..]).collect();
    assert_eq!(ran, [&b"a"[..], b"b", b"c", b"d"]);
    let mut done: Vec<u32> = p.take_done().iter().map(|d| d.0).collect();
    done.sort_unstable();
    assert_eq!(done, [b, c, d]);
}

#[test]
fn a_large_out_cut_by_the_drop_is_sent_again_and_runs_once() {
    let mut p = Pair::new();
    let claim = p.open();
    let data = vec![0x42u8; CHUNK * 4];
    let rid = p.submit(claim, &bulk_out(data.clone()));
    p.drop_link_after(2);
    assert!(p.ran.is_empty());
    p.restore_link();
    assert_eq!(p.ran.len(), 1);
    assert_eq!(p.ran[0].request.data.len(), data.len());
    let done = p.take_done();
    assert_eq!(done.iter().map(|d| d.0).collect::<Vec<_>>(), [rid]);
}

#[test]
fn a_resume_after_the_hosts_retention_fails_and_closes_the_claim() {
    let config = HostConfig {
        retention: Duration::from_secs(5),
        ..HostConfig::enabled()
    };
    let mut p = Pair::with(config, Duration::ZERO);
    let claim = p.open();
    p.auto = false;
    let rid = p.submit(claim, &bulk_in(8));
    p.settle();
    p.drop_link();
    p.host.handle_timeout(p.now + Duration::from_secs(6));
    p.restore_link();
    let events = p.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Resumed { claim: c, result: Err(_) } if *c == claim)),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Done { request_id, result: Err(UsbError::Closed(_)), .. } if *request_id == rid
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Closed {
            reason: ClosedReason::RetentionExpired,
            ..
        }
    )));
    assert!(p.client.claim_ids().is_empty());
}

#[test]
fn closing_a_claim_fails_its_pending_requests() {
    let mut p = Pair::new();
    let claim = p.open();
    p.auto = false;
    let rid = p.submit(claim, &bulk_in(8));
    p.settle();
    p.client.close(claim);
    p.settle();
    let events = p.take_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Done { request_id, result, .. }
                if *request_id == rid
                    && result.as_ref().is_ok_and(|r| r.status == TransferStatus::Cancelled)
        )),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Closed {
            reason: ClosedReason::Requested,
            ..
        }
    )));
    assert!(p.client.submit(p.now, claim, &bulk_in(1), TIMEOUT).is_err());
}

fn data_bytes(seen: &[pair::Seen]) -> usize {
    seen.iter()
        .filter(|s| s.op.uses_credit())
        .map(|s| s.payload - 4)
        .sum()
}

#[test]
fn a_shutdown_closes_every_claim_and_fails_what_is_pending_without_sending() {
    let mut p = Pair::new();
    let claim = p.open();
    p.auto = false;
    let rid = p.submit(claim, &bulk_in(8));
    p.settle();
    let sent = p.from_client.len();
    p.client.handle_shutdown(p.now);
    let events = p.take_events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            ClientEvent::Done { request_id, result: Err(UsbError::Closed(reason)), .. }
                if *request_id == rid && reason == "shutdown"
        )),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Closed {
            reason: ClosedReason::Shutdown,
            ..
        }
    )));
    assert!(p.client.claim_ids().is_empty());
    assert!(p.client.poll_transmit().is_none(), "nothing is sent");
    assert_eq!(p.from_client.len(), sent);
}

#[test]
fn after_a_drop_hello_and_resume_go_out_before_anything_queued_while_the_link_was_down() {
    // A relay's host side decides from a new connection's first frames whether it resumes a
    // parked claim: a CANCEL (or CREDIT) queued during the drop must not go out first.
    let mut p = Pair::with(HostConfig::enabled(), Duration::from_millis(10));
    let claim = p.open();
    p.auto = false;
    let pending = p.submit(claim, &bulk_in(64));
    p.settle();
    p.drop_link();
    p.client.cancel(claim, pending);
    let before = p.from_client.len();
    p.restore_link();
    let ops: Vec<Op> = p.from_client[before..].iter().map(|s| s.op).collect();
    assert_eq!(ops[..2], [Op::Hello, Op::Resume], "{ops:?}");
    assert!(
        ops.contains(&Op::Cancel),
        "the cancel still goes out, after the resume: {ops:?}"
    );
    let resumed = p.take_events();
    assert!(
        resumed
            .iter()
            .any(|e| matches!(e, ClientEvent::Resumed { result: Ok(()), .. })),
        "{resumed:?}"
    );
}
