//! The relay: which agents and viewers are connected, which sessions are live, and the
//! one chokepoint ([`hub::Hub`]) every frame, input and USB byte passes through.
//!
//! # Layout
//! - [`hub`]: in-memory registry of agents, sessions and viewers; routing decisions.
//! - [`notice`]: the viewer joined/left notices an agent gets (who, and whether it may resume).
//! - [`queue`]: each socket task's outbound queue (bounded; holds no memory while empty).
//! - [`budget`]: how much video one viewer may have queued (slow viewers skip to a
//!   keyframe and are closed past a deadline).
//! - [`store`]: session, machine and credential rows (portable SQL).
//! - [`redeem`]: the one support-code redemption (preview or consume) with its lockout.
//! - [`lifecycle`]: what happens when a session opens, consent changes or a session ends
//!   (database, audit, hub and sockets together).
//!
//! The socket tasks themselves live in [`crate::ws`].

pub mod budget;
pub mod hub;
pub mod lifecycle;
pub mod notice;
pub mod queue;
pub mod redeem;
pub mod store;

pub use hub::{Hub, Outbound};
