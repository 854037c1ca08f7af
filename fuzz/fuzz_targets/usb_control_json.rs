//! JSON control bodies: parsing arbitrary bytes must fail cleanly, and whatever parses must
//! serialise and parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reach_usb_proto::acl::AclFile;
use reach_usb_proto::proto::control::{self, DeviceEvent, ErrorBody, Hello, ListReply, Open, Opened, Resume};

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = control::parse::<T>(data) {
        let again: T = control::parse(&control::to_body(&value)).expect("re-parse");
        assert_eq!(value, again);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Hello>(data);
    round_trip::<ListReply>(data);
    round_trip::<Open>(data);
    round_trip::<Opened>(data);
    round_trip::<Resume>(data);
    round_trip::<ErrorBody>(data);
    round_trip::<DeviceEvent>(data);
    let _ = serde_json::from_slice::<AclFile>(data);
});
