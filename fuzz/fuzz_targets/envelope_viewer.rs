//! The viewer socket's envelope decoding, as the server runs it: the first message before
//! authentication (`ViewerAuth`), every later one after, each judged by the relay policy for
//! every grant the access rule can give. Never panics; a view-only grant never forwards input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reach_proto::access::{UsbDenial, ViewerAccess, ViewerGrant};
use reach_proto::codec;
use reach_proto::limits::VIEWER_MAX_MESSAGE;
use reach_proto::policy::{ViewerVerdict, judge_viewer_message};
use reach_proto::v1::envelope::Body;

const PRE_AUTH_MAX: usize = 8 * 1024;

const GRANTS: [ViewerGrant; 3] = [
    ViewerGrant { access: ViewerAccess::ViewOnly, usb: Err(UsbDenial::ViewOnly) },
    ViewerGrant { access: ViewerAccess::Control, usb: Err(UsbDenial::NotInSession) },
    ViewerGrant { access: ViewerAccess::Control, usb: Ok(()) },
];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xFE);
    if let Some(first) = parts.next() {
        if let Ok(env) = codec::decode(first, PRE_AUTH_MAX) {
            assert_eq!(codec::decode(&codec::encode(&env), PRE_AUTH_MAX).ok(), Some(env));
        }
    }
    for part in parts {
        let Ok(env) = codec::decode(part, VIEWER_MAX_MESSAGE) else { continue };
        let Some(body) = &env.body else { continue };
        for grant in &GRANTS {
            let verdict = judge_viewer_message(grant, body);
            let input = matches!(
                body,
                Body::Pointer(_) | Body::Wheel(_) | Body::Key(_) | Body::SpecialKey(_) | Body::Clipboard(_)
            );
            if grant.access == ViewerAccess::ViewOnly && input {
                assert_eq!(verdict, ViewerVerdict::Drop);
            }
            if matches!(body, Body::Usb(_)) && grant.usb.is_err() {
                assert_eq!(verdict, ViewerVerdict::Refuse);
            }
        }
    }
});
