//! The viewer-access rule, named cases first, then the whole input matrix against an
//! independent set-intersection oracle.

use super::*;

const TECHNICIAN: CallerRights = CallerRights {
    view: true,
    control: true,
    usb: true,
};
const WATCHER: CallerRights = CallerRights {
    view: true,
    control: false,
    usb: false,
};
const HOST_ON: HostUsb = HostUsb {
    supported: true,
    enabled: true,
};

fn scope(access: ViewerAccess, usb: bool) -> Scope {
    Scope { access, usb }
}

fn inputs(caller: CallerRights, session: Scope, consent: Consent) -> AccessInputs {
    AccessInputs {
        caller,
        session,
        consent,
        host: Some(HOST_ON),
    }
}

#[test]
fn a_view_only_consent_never_gives_a_control_grant() {
    let asked = scope(ViewerAccess::ViewOnly, false);
    let g = decide_viewer_grant(&inputs(TECHNICIAN, asked, Consent::Granted(asked))).unwrap();
    assert_eq!(g.access, ViewerAccess::ViewOnly);
    assert_eq!(g.usb, Err(UsbDenial::ViewOnly));
}

#[test]
fn a_managed_view_only_session_gives_a_technician_view_only() {
    let s = scope(ViewerAccess::ViewOnly, true);
    for consent in [Consent::NotRequired, Consent::Pending] {
        let g = decide_viewer_grant(&inputs(TECHNICIAN, s, consent)).unwrap();
        assert_eq!(g.access, ViewerAccess::ViewOnly);
    }
}

#[test]
fn an_answer_narrower_than_the_question_narrows_the_grant() {
    let asked = scope(ViewerAccess::Control, true);
    let answered = scope(ViewerAccess::Control, false);
    let g = decide_viewer_grant(&inputs(TECHNICIAN, asked, Consent::Granted(answered))).unwrap();
    assert_eq!(g.access, ViewerAccess::Control);
    assert_eq!(g.usb, Err(UsbDenial::NotConsented));
}

#[test]
fn an_answer_never_widens_the_session() {
    let asked = scope(ViewerAccess::ViewOnly, false);
    let answered = scope(ViewerAccess::Control, true);
    let g = decide_viewer_grant(&inputs(TECHNICIAN, asked, Consent::Granted(answered))).unwrap();
    assert_eq!(g.access, ViewerAccess::ViewOnly);
}

#[test]
fn usb_needs_the_host_switch_on_and_a_working_backend() {
    let s = scope(ViewerAccess::Control, true);
    let mut i = inputs(TECHNICIAN, s, Consent::NotRequired);
    i.host = Some(HostUsb {
        supported: true,
        enabled: false,
    });
    assert_eq!(
        decide_viewer_grant(&i).unwrap().usb,
        Err(UsbDenial::HostSwitchOff)
    );
    i.host = Some(HostUsb::default());
    assert_eq!(
        decide_viewer_grant(&i).unwrap().usb,
        Err(UsbDenial::AgentWithoutUsb)
    );
    i.host = None;
    assert_eq!(decide_viewer_grant(&i).unwrap().usb, Ok(()));
}

#[test]
fn a_watcher_gets_view_only_and_no_usb() {
    let s = scope(ViewerAccess::Control, true);
    let g = decide_viewer_grant(&inputs(WATCHER, s, Consent::NotRequired)).unwrap();
    assert_eq!(g.access, ViewerAccess::ViewOnly);
    assert!(g.usb.is_err());
}

#[test]
fn a_user_without_view_or_a_denied_consent_gets_nothing() {
    let s = scope(ViewerAccess::Control, true);
    let nobody = CallerRights::default();
    assert_eq!(
        decide_viewer_grant(&inputs(nobody, s, Consent::NotRequired)),
        Err(GrantRefusal::NoViewPermission)
    );
    assert_eq!(
        decide_viewer_grant(&inputs(TECHNICIAN, s, Consent::Denied)),
        Err(GrantRefusal::ConsentDenied)
    );
}

#[test]
fn a_token_grant_caps_the_rights_the_relay_checks_later() {
    let capped = TECHNICIAN.capped_by(ViewerAccess::ViewOnly, false);
    assert_eq!(capped, WATCHER);
    let usb_less = TECHNICIAN.capped_by(ViewerAccess::Control, false);
    assert!(usb_less.control && !usb_less.usb);
}

#[test]
fn only_control_or_the_creator_may_end_a_session() {
    assert!(may_end_session(TECHNICIAN, false));
    assert!(may_end_session(WATCHER, true));
    assert!(!may_end_session(WATCHER, false));
}

/// What a party allows, as a set: watch, control, usb.
#[derive(Clone, Copy)]
struct Allows {
    watch: bool,
    control: bool,
    usb: bool,
}

fn allows_of_scope(s: Scope) -> Allows {
    Allows {
        watch: true,
        control: s.access == ViewerAccess::Control,
        usb: s.usb,
    }
}

fn every_bool3() -> impl Iterator<Item = (bool, bool, bool)> {
    (0..8u8).map(|b| (b & 1 != 0, b & 2 != 0, b & 4 != 0))
}

fn every_scope() -> Vec<Scope> {
    let mut v = Vec::new();
    for access in [ViewerAccess::ViewOnly, ViewerAccess::Control] {
        for usb in [false, true] {
            v.push(scope(access, usb));
        }
    }
    v
}

fn every_consent() -> Vec<Consent> {
    let mut v = vec![Consent::NotRequired, Consent::Pending, Consent::Denied];
    v.extend(every_scope().into_iter().map(Consent::Granted));
    v
}

fn every_host() -> Vec<Option<HostUsb>> {
    let mut v = vec![None];
    for (supported, enabled, _) in every_bool3().filter(|t| !t.2) {
        v.push(Some(HostUsb { supported, enabled }));
    }
    v
}

/// Whether `reason` is really true of the inputs.
fn reason_holds(i: &AccessInputs, access: ViewerAccess, reason: UsbDenial) -> bool {
    match reason {
        UsbDenial::ViewOnly => access == ViewerAccess::ViewOnly,
        UsbDenial::NoPermission => !i.caller.usb,
        UsbDenial::NotInSession => !i.session.usb,
        UsbDenial::NotConsented => matches!(i.consent, Consent::Granted(s) if !s.usb),
        UsbDenial::AgentWithoutUsb => i.host.is_some_and(|h| !h.supported),
        UsbDenial::HostSwitchOff => i.host.is_some_and(|h| !h.enabled),
    }
}

fn check_one(i: &AccessInputs) {
    let caller = Allows {
        watch: i.caller.view,
        control: i.caller.control,
        usb: i.caller.usb,
    };
    let session = allows_of_scope(i.session);
    let consent = match i.consent {
        Consent::Granted(s) => allows_of_scope(s),
        _ => allows_of_scope(scope(ViewerAccess::Control, true)),
    };
    let host_ok = i.host.is_none_or(|h| h.supported && h.enabled);
    let got = decide_viewer_grant(i);
    if !caller.watch {
        assert_eq!(got, Err(GrantRefusal::NoViewPermission), "{i:?}");
        return;
    }
    if i.consent == Consent::Denied {
        assert_eq!(got, Err(GrantRefusal::ConsentDenied), "{i:?}");
        return;
    }
    let g = got.unwrap_or_else(|e| panic!("{i:?} refused: {e}"));
    let control = caller.control && session.control && consent.control;
    let expected_access = if control {
        ViewerAccess::Control
    } else {
        ViewerAccess::ViewOnly
    };
    assert_eq!(g.access, expected_access, "{i:?}");
    let usb = control && caller.usb && session.usb && consent.usb && host_ok;
    match g.usb {
        Ok(()) => assert!(usb, "{i:?} got USB"),
        Err(reason) => {
            assert!(!usb, "{i:?} lost USB: {reason}");
            assert!(reason_holds(i, g.access, reason), "{i:?}: {reason:?}");
        }
    }
    assert!(g.access <= i.session.access, "never more than the session");
}

#[test]
fn the_grant_is_the_lesser_of_permission_session_consent_and_host_for_every_input() {
    let mut cases = 0;
    for (view, control, usb) in every_bool3() {
        let caller = CallerRights { view, control, usb };
        for session in every_scope() {
            for consent in every_consent() {
                for host in every_host() {
                    check_one(&AccessInputs {
                        caller,
                        session,
                        consent,
                        host,
                    });
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 8 * 4 * 7 * 5);
}
