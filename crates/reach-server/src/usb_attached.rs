//! Which claims `reach usb attach` holds in a technician's own kernel now, per session, as the
//! agents' `UsbAudit` notes tell (`attached` adds; `detached` and `closed` remove). Kept in
//! memory on this server instance and shown on the session (`usb_attached`), so the console can
//! say "attached to <host>" on the claim. Bounded: sessions and entries beyond the caps are not
//! tracked (the audit log still has every note).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use utoipa::ToSchema;

/// Sessions tracked at most.
pub const MAX_SESSIONS: usize = 4096;
/// Attached claims tracked per session at most.
pub const MAX_PER_SESSION: usize = 64;

/// One claim attached to a technician's kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AttachedClaim {
    /// Claim id inside the technician's USB session.
    pub claim_id: u32,
    /// User id of the technician.
    pub technician: String,
    /// The technician's user name (what the console shows).
    pub technician_name: String,
    /// The technician's host name, as it reported it.
    pub host: String,
    /// Device ids (hex).
    pub vendor_id: String,
    /// Device ids (hex).
    pub product_id: String,
    /// Since when (ms).
    pub since_ms: i64,
}

/// The attached claims of every live session.
#[derive(Debug, Default)]
pub struct UsbAttached(Mutex<HashMap<String, Vec<AttachedClaim>>>);

impl UsbAttached {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<AttachedClaim>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `claim` as attached in `session` (replacing the same technician's same claim).
    pub fn attached(&self, session: &str, claim: AttachedClaim) {
        let mut map = self.map();
        if !map.contains_key(session) && map.len() >= MAX_SESSIONS {
            return;
        }
        let list = map.entry(session.to_owned()).or_default();
        list.retain(|c| !(c.technician == claim.technician && c.claim_id == claim.claim_id));
        if list.len() < MAX_PER_SESSION {
            list.push(claim);
        }
    }

    /// The claim left the technician's kernel, or was closed.
    pub fn released(&self, session: &str, technician: &str, claim_id: u32) {
        let mut map = self.map();
        if let Some(list) = map.get_mut(session) {
            list.retain(|c| !(c.technician == technician && c.claim_id == claim_id));
            if list.is_empty() {
                map.remove(session);
            }
        }
    }

    /// What is attached in `session` now.
    pub fn of(&self, session: &str) -> Vec<AttachedClaim> {
        self.map().get(session).cloned().unwrap_or_default()
    }

    /// The session ended: nothing of it stays attached.
    pub fn forget(&self, session: &str) {
        self.map().remove(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: u32, who: &str) -> AttachedClaim {
        AttachedClaim {
            claim_id: id,
            technician: who.into(),
            technician_name: who.into(),
            host: "tech-laptop".into(),
            vendor_id: "0525".into(),
            product_id: "a4a0".into(),
            since_ms: 1,
        }
    }

    #[test]
    fn an_attached_claim_shows_until_it_is_detached_and_technicians_do_not_mix() {
        let a = UsbAttached::default();
        a.attached("s", claim(1, "alice"));
        a.attached("s", claim(1, "bob"));
        a.attached("s", claim(1, "alice"));
        assert_eq!(a.of("s").len(), 2);
        a.released("s", "alice", 1);
        assert_eq!(a.of("s"), vec![claim(1, "bob")]);
        a.forget("s");
        assert!(a.of("s").is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let a = UsbAttached::default();
        for i in 0..(MAX_PER_SESSION as u32 + 10) {
            a.attached("s", claim(i, "alice"));
        }
        assert_eq!(a.of("s").len(), MAX_PER_SESSION);
        for i in 0..MAX_SESSIONS + 5 {
            a.attached(&format!("s{i}"), claim(1, "alice"));
        }
        assert!(a.of(&format!("s{}", MAX_SESSIONS + 4)).is_empty());
    }
}
