//! What may cross the relay, decided in one place.
//!
//! Everything a viewer may send is an explicit allow-list by [`ViewerAccess`];
//! anything not listed is dropped, never forwarded. The server enforces this: an
//! altered viewer gains nothing.

use crate::v1::{self, envelope::Body};

pub use crate::access::ViewerAccess;
use crate::access::ViewerGrant;

/// What the relay does with one viewer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerVerdict {
    /// Forward to the agent.
    Forward,
    /// Forward to the agent if the viewer's input token bucket has a token.
    ForwardThrottled,
    /// Drop silently (view-only input, or a kind viewers never send).
    Drop,
    /// Drop and tell the viewer why (USB not granted: the grant's `usb` says why).
    Refuse,
}

/// Decides what happens to a message a viewer holding `grant` sent (the grant comes from
/// [`crate::access::decide_viewer_grant`], the one access rule).
pub fn judge_viewer_message(grant: &ViewerGrant, body: &Body) -> ViewerVerdict {
    use ViewerVerdict::{Drop, Forward, ForwardThrottled, Refuse};
    let control = grant.access == ViewerAccess::Control;
    match body {
        Body::KeyframeRequest(_) | Body::StartStream(_) | Body::StopStream(_) => ForwardThrottled,
        Body::Pointer(_)
        | Body::Wheel(_)
        | Body::Key(_)
        | Body::SpecialKey(_)
        | Body::Clipboard(_) => {
            if control {
                ForwardThrottled
            } else {
                Drop
            }
        }
        Body::Usb(_) => {
            if grant.usb.is_ok() {
                Forward
            } else {
                Refuse
            }
        }
        // Each one becomes an audit record: throttled like input.
        Body::UsbAttachNote(_) => {
            if grant.usb.is_ok() {
                ForwardThrottled
            } else {
                Refuse
            }
        }
        _ => Drop,
    }
}

/// What the relay does with one agent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentVerdict {
    /// Handled by the server itself (hello, status, consent answer, USB audit, Stop).
    ForServer,
    /// Relayed to the session's viewers (after consent only).
    ToViewers,
    /// Dropped.
    Drop,
}

/// Decides what happens to a message an agent sent.
pub fn judge_agent_message(body: &Body) -> AgentVerdict {
    match body {
        Body::AgentHello(_)
        | Body::AgentStatus(_)
        | Body::ConsentResponse(_)
        | Body::UsbAudit(_)
        // The person at the machine pressed Stop (kind ENDED): the server ends the session.
        | Body::SessionEvent(_) => AgentVerdict::ForServer,
        Body::VideoFrame(_)
        | Body::CursorShape(_)
        | Body::CursorPosition(_)
        | Body::Clipboard(_)
        | Body::Usb(_)
        | Body::Error(_) => AgentVerdict::ToViewers,
        _ => AgentVerdict::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::UsbDenial;
    use crate::v1;

    const VIEW_ONLY: ViewerGrant = ViewerGrant {
        access: ViewerAccess::ViewOnly,
        usb: Err(UsbDenial::ViewOnly),
    };
    const CONTROL: ViewerGrant = ViewerGrant {
        access: ViewerAccess::Control,
        usb: Err(UsbDenial::NotInSession),
    };
    const CONTROL_USB: ViewerGrant = ViewerGrant {
        access: ViewerAccess::Control,
        usb: Ok(()),
    };

    fn inputs() -> Vec<Body> {
        vec![
            Body::Pointer(v1::PointerEvent::default()),
            Body::Wheel(v1::WheelEvent::default()),
            Body::Key(v1::KeyEvent::default()),
            Body::SpecialKey(v1::SpecialKeyEvent::default()),
            Body::Clipboard(v1::ClipboardText::default()),
        ]
    }

    #[test]
    fn view_only_viewer_cannot_send_input() {
        for b in inputs() {
            assert_eq!(judge_viewer_message(&VIEW_ONLY, &b), ViewerVerdict::Drop);
        }
    }

    #[test]
    fn control_viewer_input_is_throttled_not_dropped() {
        for b in inputs() {
            assert_eq!(
                judge_viewer_message(&CONTROL, &b),
                ViewerVerdict::ForwardThrottled
            );
        }
    }

    #[test]
    fn usb_is_forwarded_only_when_the_grant_includes_usb() {
        let usb = Body::Usb(v1::UsbFrame::default());
        for refused in [VIEW_ONLY, CONTROL] {
            assert_eq!(judge_viewer_message(&refused, &usb), ViewerVerdict::Refuse);
        }
        assert_eq!(
            judge_viewer_message(&CONTROL_USB, &usb),
            ViewerVerdict::Forward
        );
    }

    #[test]
    fn an_attach_note_is_throttled_only_with_usb_and_an_agent_never_sends_one() {
        let note = Body::UsbAttachNote(v1::UsbAttachNote::default());
        for refused in [VIEW_ONLY, CONTROL] {
            assert_eq!(judge_viewer_message(&refused, &note), ViewerVerdict::Refuse);
        }
        assert_eq!(
            judge_viewer_message(&CONTROL_USB, &note),
            ViewerVerdict::ForwardThrottled
        );
        assert_eq!(judge_agent_message(&note), AgentVerdict::Drop);
    }

    #[test]
    fn a_viewer_can_never_answer_consent_or_speak_for_the_agent() {
        for b in [
            Body::ConsentResponse(v1::ConsentResponse {
                granted: true,
                ..Default::default()
            }),
            Body::AgentHello(v1::AgentHello::default()),
            Body::AgentAuth(v1::AgentAuth::default()),
            Body::VideoFrame(v1::VideoFrame::default()),
            Body::SessionEvent(v1::SessionEvent::default()),
        ] {
            assert_eq!(judge_viewer_message(&CONTROL, &b), ViewerVerdict::Drop);
        }
    }

    #[test]
    fn agents_cannot_inject_viewer_input_or_auth_messages() {
        for b in [
            Body::Key(v1::KeyEvent::default()),
            Body::ViewerAuth(v1::ViewerAuth::default()),
            Body::AuthOk(v1::AuthOk::default()),
            Body::ConsentRequest(v1::ConsentRequest::default()),
        ] {
            assert_eq!(judge_agent_message(&b), AgentVerdict::Drop);
        }
        assert_eq!(
            judge_agent_message(&Body::VideoFrame(v1::VideoFrame::default())),
            AgentVerdict::ToViewers
        );
    }

    #[test]
    fn usb_audit_is_for_the_server_and_never_reaches_or_comes_from_viewers() {
        let audit = Body::UsbAudit(v1::UsbAudit::default());
        assert_eq!(judge_agent_message(&audit), AgentVerdict::ForServer);
        for grant in [VIEW_ONLY, CONTROL, CONTROL_USB] {
            assert_eq!(judge_viewer_message(&grant, &audit), ViewerVerdict::Drop);
        }
    }

    #[test]
    fn access_names_round_trip() {
        for a in [ViewerAccess::ViewOnly, ViewerAccess::Control] {
            assert_eq!(ViewerAccess::from_name(a.as_str()), Some(a));
        }
        assert_eq!(ViewerAccess::from_name("admin"), None);
    }
}

/// Picks the codec the server stamps on a viewer's start-stream: H.264 when the agent
/// advertised it and the viewer did not ask for raw; raw otherwise (the guaranteed fallback).
///
/// | supports_h264 | prefer | result |
/// |---|---|---|
/// | true | unspecified or H264 | H264 |
/// | true | Raw | Raw |
/// | false | any | Raw |
pub fn select_video_codec(supports_h264: bool, prefer: v1::VideoCodec) -> v1::VideoCodec {
    match (supports_h264, prefer) {
        (true, v1::VideoCodec::Unspecified | v1::VideoCodec::H264) => v1::VideoCodec::H264,
        _ => v1::VideoCodec::Raw,
    }
}

#[cfg(test)]
mod codec_choice_tests {
    use super::select_video_codec;
    use crate::v1::VideoCodec::{H264, Raw, Unspecified};

    #[test]
    fn the_server_picks_h264_only_when_the_agent_supports_it_and_the_viewer_allows_it() {
        for (supports, prefer, expected) in [
            (true, Unspecified, H264),
            (true, H264, H264),
            (true, Raw, Raw),
            (false, Unspecified, Raw),
            (false, H264, Raw),
            (false, Raw, Raw),
        ] {
            assert_eq!(
                select_video_codec(supports, prefer),
                expected,
                "{supports} {prefer:?}"
            );
        }
    }
}
