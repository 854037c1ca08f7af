//! The REST side of the one viewer-access rule ([`reach_proto::access`]): what a caller may
//! ask a session or support code for, and what a viewer token grants. Every decision is
//! [`decide_viewer_grant`]'s; this module only reads its inputs and maps refusals to HTTP.

use reach_proto::access::{
    AccessInputs, Consent, GrantRefusal, Scope, UsbDenial, ViewerAccess, ViewerGrant,
    decide_viewer_grant,
};

use crate::auth::permissions::Permission;
use crate::http::error::{Error, Result};
use crate::http::extract::AuthUser;

/// The scope a new session or support code asks for: what the caller asked, defaulting to
/// the most the caller may have; asking for more than that is refused (403), never
/// silently narrowed.
///
/// # Errors
/// 403 naming the missing permission; 400 for USB without control.
pub fn requested_scope(
    auth: &AuthUser,
    access: Option<ViewerAccess>,
    usb: Option<bool>,
) -> Result<Scope> {
    let usb = usb.unwrap_or(false);
    if usb && access == Some(ViewerAccess::ViewOnly) {
        return Err(Error::bad_request(
            "usb_needs_control",
            "USB devices need control access; ask for `control` or leave `usb` off",
        ));
    }
    let most = decide_viewer_grant(&AccessInputs {
        caller: auth.permissions.rights(),
        session: Scope {
            access: ViewerAccess::Control,
            usb,
        },
        consent: Consent::NotRequired,
        host: None,
    })
    .map_err(refusal_to_error)?;
    let access = access.unwrap_or(most.access);
    if access > most.access {
        return Err(Error::Forbidden(Permission::Control));
    }
    match most.usb {
        Err(UsbDenial::NoPermission) if usb => Err(Error::Forbidden(Permission::Usb)),
        Err(UsbDenial::ViewOnly) if usb => Err(Error::Forbidden(Permission::Control)),
        _ => Ok(Scope { access, usb }),
    }
}

/// The grant a viewer token for a live session carries: the one rule over the caller's
/// permissions, the session's scope and its consent (the host's USB switch is checked
/// live by the relay, not signed in).
///
/// # Errors
/// 403 without `view`; 409 when consent was denied.
pub fn token_grant(auth: &AuthUser, session: Scope, consent: Consent) -> Result<ViewerGrant> {
    decide_viewer_grant(&AccessInputs {
        caller: auth.permissions.rights(),
        session,
        consent,
        host: None,
    })
    .map_err(refusal_to_error)
}

fn refusal_to_error(refusal: GrantRefusal) -> Error {
    match refusal {
        GrantRefusal::ConsentDenied => Error::Conflict {
            code: "consent_denied",
            message: refusal.to_string(),
        },
        _ => Error::Forbidden(Permission::View),
    }
}
