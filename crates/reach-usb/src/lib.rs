//! USB passthrough: protocol, host session, client, ACL and device backends.
#![warn(missing_docs)]
