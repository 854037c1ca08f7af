//! The Reach server: REST API, authentication, database, relay and audit log.
#![warn(missing_docs)]
