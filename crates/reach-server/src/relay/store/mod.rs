//! Rows of machines, agent keys, support codes and sessions. Every query is scoped by
//! tenant where a user is involved; SQL is portable (SQLite and PostgreSQL).

pub mod credentials;
pub mod machines;
pub mod sessions;
