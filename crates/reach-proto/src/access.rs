//! What a viewer may do in a session, decided in one place.
//!
//! [`decide_viewer_grant`] is the one rule: the grant is the *lesser* of what the caller
//! may do (their permissions), what the session was opened with, and — when the person at
//! the machine was asked — what they consented to. USB additionally needs an agent whose
//! passthrough works and is switched on. Every surface calls it: minting a viewer token,
//! opening a session or a support code (to refuse asking for more than the caller may
//! have), the relay for every viewer message, the live-socket re-check after a role
//! change, and the agent (which enforces the scope it consented to on its own).
//!
//! Pure: no IO, no clock. The table test at the bottom crosses every input.

use serde::{Deserialize, Serialize};

use crate::v1::AccessMode;

/// Access a viewer holds: watch only, or watch and control.
///
/// Ordered: `ViewOnly < Control`, so the lesser of two accesses is their `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewerAccess {
    /// Watch only.
    ViewOnly,
    /// Watch, control keyboard and pointer, and (when granted) use USB.
    Control,
}

impl ViewerAccess {
    /// Stable lowercase name (`view_only`, `control`) used in tokens, JSON and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ViewOnly => "view_only",
            Self::Control => "control",
        }
    }

    /// Reads [`Self::as_str`]'s output.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "view_only" => Some(Self::ViewOnly),
            "control" => Some(Self::Control),
            _ => None,
        }
    }

    /// The wire enum.
    pub fn to_wire(self) -> AccessMode {
        match self {
            Self::ViewOnly => AccessMode::ViewOnly,
            Self::Control => AccessMode::Control,
        }
    }

    /// From the wire enum; `Unspecified` is `None`.
    pub fn from_wire(mode: AccessMode) -> Option<Self> {
        match mode {
            AccessMode::ViewOnly => Some(Self::ViewOnly),
            AccessMode::Control => Some(Self::Control),
            AccessMode::Unspecified => None,
        }
    }
}

/// What the caller's permissions allow, read from their role now (and, on the relay,
/// capped by what their viewer token was minted with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallerRights {
    /// Permission `view`.
    pub view: bool,
    /// Permission `control` (admins hold every permission).
    pub control: bool,
    /// Permission `usb`.
    pub usb: bool,
}

impl CallerRights {
    /// Every right: the agent's view of a viewer it consented to (the server already
    /// applied the caller's permissions; the agent enforces only its own consent).
    pub const ALL: Self = Self {
        view: true,
        control: true,
        usb: true,
    };

    /// These rights, capped by what a viewer token was minted with (its access and
    /// whether it included USB).
    pub fn capped_by(self, access: ViewerAccess, usb: bool) -> Self {
        Self {
            view: self.view,
            control: self.control && access == ViewerAccess::Control,
            usb: self.usb && usb,
        }
    }
}

/// What a session was opened with, or what the person at the machine consented to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// Access.
    pub access: ViewerAccess,
    /// USB devices.
    pub usb: bool,
}

impl Scope {
    /// The lesser of two scopes (an answer never widens what was asked).
    pub fn narrowed_to(self, other: Self) -> Self {
        Self {
            access: self.access.min(other.access),
            usb: self.usb && other.usb,
        }
    }
}

/// Where the session's consent stands, with the scope that was consented to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Nobody is asked (managed machine without a consent policy).
    NotRequired,
    /// Asked, no answer yet: the viewer may wait, nothing flows (the relay's chokepoint).
    Pending,
    /// The person said yes to this scope.
    Granted(Scope),
    /// The person said no, or did not answer in time.
    Denied,
}

/// The agent's USB state, as it last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostUsb {
    /// The agent's USB backend works on its machine.
    pub supported: bool,
    /// The host's passthrough switch is on.
    pub enabled: bool,
}

/// Everything the rule depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessInputs {
    /// What the caller may do.
    pub caller: CallerRights,
    /// What the session was opened with.
    pub session: Scope,
    /// The consent and its scope.
    pub consent: Consent,
    /// The agent's USB state; `None` when the grant is signed into a token (the host's
    /// switch can change later, so the relay checks it live on every USB frame).
    pub host: Option<HostUsb>,
}

/// Why USB is not available to a viewer (each says what would fix it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsbDenial {
    /// The viewer only watches.
    #[error("USB needs control access; this viewer is view-only")]
    ViewOnly,
    /// The technician lacks permission `usb`.
    #[error("the technician does not hold the `usb` permission")]
    NoPermission,
    /// The session was opened without USB.
    #[error("the session was opened without USB; open a new session with USB")]
    NotInSession,
    /// The person at the machine did not consent to USB.
    #[error("the person at the machine did not allow USB devices")]
    NotConsented,
    /// The agent has no working USB backend.
    #[error("the agent cannot share USB devices on this machine")]
    AgentWithoutUsb,
    /// The host's passthrough switch is off.
    #[error("USB passthrough is switched off on the host (reach usb enable)")]
    HostSwitchOff,
}

impl UsbDenial {
    /// Stable machine-readable name (`view_only`, `no_permission`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ViewOnly => "view_only",
            Self::NoPermission => "no_permission",
            Self::NotInSession => "not_in_session",
            Self::NotConsented => "not_consented",
            Self::AgentWithoutUsb => "agent_without_usb",
            Self::HostSwitchOff => "host_switch_off",
        }
    }
}

/// What a viewer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewerGrant {
    /// Watch only, or control.
    pub access: ViewerAccess,
    /// USB, or why not.
    pub usb: Result<(), UsbDenial>,
}

/// Why a viewer may not be in the session at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantRefusal {
    /// The caller lacks permission `view`.
    #[error("the user may not watch sessions (permission `view`)")]
    NoViewPermission,
    /// The person at the machine said no (or did not answer).
    #[error("the person at the machine declined")]
    ConsentDenied,
}

/// The one viewer-access rule: the lesser of caller, session and consent; USB only when
/// all of them and the host allow it.
///
/// # Errors
/// [`GrantRefusal`] when the caller may not even watch, or consent was denied.
pub fn decide_viewer_grant(i: &AccessInputs) -> Result<ViewerGrant, GrantRefusal> {
    if !i.caller.view {
        return Err(GrantRefusal::NoViewPermission);
    }
    let allowed = match i.consent {
        Consent::Denied => return Err(GrantRefusal::ConsentDenied),
        Consent::NotRequired | Consent::Pending => i.session,
        Consent::Granted(scope) => i.session.narrowed_to(scope),
    };
    let caller_access = if i.caller.control {
        ViewerAccess::Control
    } else {
        ViewerAccess::ViewOnly
    };
    let access = caller_access.min(allowed.access);
    Ok(ViewerGrant {
        access,
        usb: usb_verdict(i, access),
    })
}

fn usb_verdict(i: &AccessInputs, access: ViewerAccess) -> Result<(), UsbDenial> {
    if access != ViewerAccess::Control {
        return Err(UsbDenial::ViewOnly);
    }
    // The session's and the consent's limits first: they explain a token minted without
    // USB better than the caller's rights (which that token caps).
    if !i.session.usb {
        return Err(UsbDenial::NotInSession);
    }
    if matches!(i.consent, Consent::Granted(scope) if !scope.usb) {
        return Err(UsbDenial::NotConsented);
    }
    if !i.caller.usb {
        return Err(UsbDenial::NoPermission);
    }
    match i.host {
        Some(h) if !h.supported => Err(UsbDenial::AgentWithoutUsb),
        Some(h) if !h.enabled => Err(UsbDenial::HostSwitchOff),
        _ => Ok(()),
    }
}

/// Whether a user may end a session: `control`, or being the technician who opened it.
/// Watching never lets a user end someone else's session.
pub fn may_end_session(caller: CallerRights, is_creator: bool) -> bool {
    caller.control || is_creator
}

#[cfg(test)]
mod tests;
