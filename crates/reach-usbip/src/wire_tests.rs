use super::*;

/// A CMD_SUBMIT as vhci sends it: GET_DESCRIPTOR(DEVICE) on ep 0, IN, 18 bytes.
const GET_DEVICE_DESCRIPTOR: [u8; 48] = [
    0, 0, 0, 1, // command CMD_SUBMIT
    0, 0, 0, 7, // seqnum 7
    0, 1, 0, 2, // devid bus 1 dev 2
    0, 0, 0, 1, // direction IN
    0, 0, 0, 0, // ep 0
    0, 0, 2, 0, // transfer_flags URB_DIR_IN
    0, 0, 0, 18, // transfer_buffer_length 18
    0, 0, 0, 0, // start_frame
    0, 0, 0, 0, // number_of_packets (vhci: 0 for non-ISO)
    0, 0, 0, 0, // interval
    0x80, 6, 0, 1, 0, 0, 18, 0, // setup, little-endian as on the bus
];

/// A CMD_SUBMIT bulk OUT of 3 bytes on ep 2 with URB_ZERO_PACKET, then its data.
const BULK_OUT: [u8; 51] = [
    0, 0, 0, 1, 0, 0, 0, 9, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, // basic: OUT ep 2
    0, 0, 0, 0x40, // URB_ZERO_PACKET
    0, 0, 0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // number_of_packets -1 (the doc's "none")
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // interval, setup
    b'a', b'b', b'c',
];

#[test]
fn a_control_in_submit_decodes_from_vhci_bytes() {
    let (cmd, used) = decode_command(&GET_DEVICE_DESCRIPTOR).unwrap().unwrap();
    assert_eq!(used, 48);
    let Command::Submit(s) = cmd else {
        panic!("not a submit")
    };
    assert_eq!((s.seqnum, s.devid, s.ep), (7, 0x0001_0002, 0));
    assert_eq!(s.direction, Direction::In);
    assert_eq!(s.buffer_length, 18);
    assert_eq!(s.setup, [0x80, 6, 0, 1, 0, 0, 18, 0]);
    assert!(s.data.is_empty());
}

#[test]
fn a_bulk_out_submit_carries_its_data_and_round_trips() {
    let (cmd, used) = decode_command(&BULK_OUT).unwrap().unwrap();
    assert_eq!(used, 51);
    let Command::Submit(s) = &cmd else {
        panic!("not a submit")
    };
    assert_eq!((s.ep, s.direction), (2, Direction::Out));
    assert_eq!(s.transfer_flags, URB_ZERO_PACKET);
    assert_eq!(&s.data[..], b"abc");
    // The encoder writes number_of_packets 0, as vhci does; everything else is identical.
    let mut expected = BULK_OUT;
    expected[32..36].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(&s.encode()[..], &expected[..]);
}

#[test]
fn an_incomplete_submit_waits_for_its_data() {
    assert_eq!(decode_command(&BULK_OUT[..47]).unwrap(), None);
    assert_eq!(decode_command(&BULK_OUT[..50]).unwrap(), None);
}

#[test]
fn a_cmd_unlink_decodes_and_round_trips() {
    let bytes: [u8; 48] = [
        0, 0, 0, 2, 0, 0, 0, 12, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, // basic
        0, 0, 0, 9, // unlink_seqnum
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let (cmd, used) = decode_command(&bytes).unwrap().unwrap();
    let expected = CmdUnlink {
        seqnum: 12,
        devid: 0x0001_0002,
        unlink_seqnum: 9,
    };
    assert_eq!((cmd, used), (Command::Unlink(expected), 48));
    assert_eq!(&expected.encode()[..], &bytes[..]);
}

#[test]
fn a_ret_submit_encodes_status_length_and_in_data() {
    let ret = RetSubmit {
        seqnum: 7,
        status: -32,
        actual_length: 2,
        data: Bytes::from_static(&[0x12, 0x01]),
    };
    let expected: [u8; 50] = [
        0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, // basic, zeros as the stub
        0xff, 0xff, 0xff, 0xe0, // status -EPIPE
        0, 0, 0, 2, // actual_length
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // start_frame, number_of_packets, error_count
        0, 0, 0, 0, 0, 0, 0, 0, // padding
        0x12, 0x01,
    ];
    assert_eq!(&ret.encode()[..], &expected[..]);
    let (decoded, used) = decode_reply(&expected, |s| s == 7).unwrap().unwrap();
    assert_eq!((decoded, used), (Reply::Submit(ret), 50));
}

#[test]
fn a_ret_submit_of_an_out_urb_carries_no_data() {
    let ret = RetSubmit {
        seqnum: 9,
        status: 0,
        actual_length: 3,
        data: Bytes::new(),
    };
    let bytes = ret.encode();
    assert_eq!(bytes.len(), 48);
    let (decoded, used) = decode_reply(&bytes, |_| false).unwrap().unwrap();
    assert_eq!((decoded, used), (Reply::Submit(ret), 48));
}

#[test]
fn a_ret_unlink_encodes_its_status() {
    let ret = RetUnlink {
        seqnum: 12,
        status: -104,
    };
    let expected: [u8; 48] = [
        0, 0, 0, 4, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // basic
        0xff, 0xff, 0xff, 0x98, // -ECONNRESET
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(&ret.encode()[..], &expected[..]);
    let (decoded, _) = decode_reply(&expected, |_| false).unwrap().unwrap();
    assert_eq!(decoded, Reply::Unlink(ret));
}

#[test]
fn an_oversize_transfer_length_is_refused_from_the_header_alone() {
    let mut bytes = GET_DEVICE_DESCRIPTOR;
    bytes[24..28].copy_from_slice(&(MAX_TRANSFER_LEN + 1).to_be_bytes());
    assert_eq!(
        decode_command(&bytes),
        Err(WireError::TooLong(MAX_TRANSFER_LEN + 1))
    );
    let mut out = BULK_OUT;
    out[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        decode_command(&out[..48]),
        Err(WireError::TooLong(u32::MAX))
    );
}

#[test]
fn iso_packets_are_refused() {
    let mut bytes = BULK_OUT;
    bytes[32..36].copy_from_slice(&[0, 0, 0, 8]);
    assert_eq!(decode_command(&bytes), Err(WireError::Isochronous(8)));
}

#[test]
fn unknown_commands_and_bad_fields_are_refused() {
    let mut bytes = GET_DEVICE_DESCRIPTOR;
    bytes[3] = 3; // a RET_SUBMIT is not a command
    assert_eq!(decode_command(&bytes), Err(WireError::UnknownCommand(3)));
    let mut bytes = GET_DEVICE_DESCRIPTOR;
    bytes[15] = 2;
    assert_eq!(
        decode_command(&bytes),
        Err(WireError::BadField("direction", 2))
    );
    let mut bytes = GET_DEVICE_DESCRIPTOR;
    bytes[19] = 16;
    assert_eq!(decode_command(&bytes), Err(WireError::BadField("ep", 16)));
    assert_eq!(
        decode_reply(&GET_DEVICE_DESCRIPTOR, |_| true),
        Err(WireError::UnknownCommand(1))
    );
}

#[test]
fn a_short_buffer_is_incomplete_not_an_error() {
    for n in 0..48 {
        assert_eq!(decode_command(&GET_DEVICE_DESCRIPTOR[..n]).unwrap(), None);
        assert_eq!(
            decode_reply(&GET_DEVICE_DESCRIPTOR[..n], |_| true).unwrap(),
            None
        );
    }
}
