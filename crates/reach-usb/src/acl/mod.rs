//! The host's USB ACL (SPEC §9.2): rules and the one permission check [`UsbAcl::decide`]
//! (from `reach-usb-proto`), the signed file ([`store`]) and the operator prompt ([`policy`]).
//!
//! First matching rule wins; `null` fields match anything. Without a matching rule, hubs and FIDO
//! security keys are denied, then `default` applies. An ACL whose integrity check failed denies
//! everything.

pub mod policy;
pub mod store;

pub use reach_usb_proto::acl::*;
