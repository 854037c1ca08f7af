//! Several instances on one database (SQLite file, or PostgreSQL in the CI pass) and one real
//! `nats-server`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use super::common::TestServer;
use super::nats::Nats;

/// What the issue asks: revocations reach every instance's sockets within a second.
pub const WITHIN: Duration = Duration::from_secs(1);

/// `n` instances on one database and one bus.
pub async fn cluster(n: usize) -> (Nats, Vec<TestServer>) {
    let bus = Nats::start();
    let servers = super::common::instances(n, Some(&bus.url)).await;
    (bus, servers)
}
