//! Permissions and built-in roles.
//!
//! Which role grants which permission is data (table `role_permissions`, seeded by the first
//! migration), so custom roles can arrive later without code changes. This module only names
//! the permissions and roles the code checks against.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One thing a user may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Watch a remote screen.
    View,
    /// Send input to a remote machine.
    Control,
    /// Use remote USB devices.
    Usb,
    /// Create and manage support codes.
    SupportCodes,
    /// Create, edit and delete machines and their agent keys.
    ManageMachines,
    /// Create, edit and delete users.
    ManageUsers,
    /// Read and verify the audit log.
    Audit,
    /// Create, list, suspend and delete tenants (the provider's `owner` role only).
    ManageTenants,
}

impl Permission {
    /// Every permission, in a stable order.
    pub const ALL: [Self; 8] = [
        Self::View,
        Self::Control,
        Self::Usb,
        Self::SupportCodes,
        Self::ManageMachines,
        Self::ManageUsers,
        Self::Audit,
        Self::ManageTenants,
    ];

    /// The name stored in the database and shown in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Control => "control",
            Self::Usb => "usb",
            Self::SupportCodes => "support_codes",
            Self::ManageMachines => "manage_machines",
            Self::ManageUsers => "manage_users",
            Self::Audit => "audit",
            Self::ManageTenants => "manage_tenants",
        }
    }

    /// Parses a stored name; unknown names are `None` (and grant nothing).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of permissions (a small bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionSet(u16);

impl PermissionSet {
    /// Whether `permission` is in the set.
    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// Adds a permission.
    pub fn insert(&mut self, permission: Permission) {
        self.0 |= permission.bit();
    }

    /// The permissions in the set, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl PermissionSet {
    /// What these permissions let a viewer do, as the one access rule reads it
    /// ([`reach_proto::access::decide_viewer_grant`]).
    pub const fn rights(self) -> reach_proto::access::CallerRights {
        reach_proto::access::CallerRights {
            view: self.contains(Permission::View),
            control: self.contains(Permission::Control),
            usb: self.contains(Permission::Usb),
        }
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Self::default();
        for permission in iter {
            set.insert(permission);
        }
        set
    }
}

/// The built-in roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The provider: everything an admin has, plus the tenants API. Given by the bootstrap
    /// only; the users API can neither grant nor change it.
    Owner,
    /// Everything within the tenant.
    Admin,
    /// `view`, `control`, `usb`, `support_codes`.
    Technician,
    /// `view`.
    Viewer,
}

impl Role {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Technician => "technician",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Owner, Self::Admin, Self::Technician, Self::Viewer]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_name_round_trips() {
        for permission in Permission::ALL {
            assert_eq!(Permission::from_name(permission.as_str()), Some(permission));
        }
        assert_eq!(Permission::from_name("root"), None);
    }

    #[test]
    fn a_permission_set_holds_only_what_was_inserted() {
        let set: PermissionSet = [Permission::View, Permission::Audit].into_iter().collect();
        assert!(set.contains(Permission::View));
        assert!(!set.contains(Permission::Control));
        assert_eq!(set.iter().count(), 2);
    }
}
