//! Several instances on one database (SQLite file, or PostgreSQL in the CI pass) and one real
//! `nats-server`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use super::common::TestServer;
use super::nats::Nats;

const SECRET: &str = "one token secret shared by every instance of this cluster";
/// What the issue asks: revocations reach every instance's sockets within a second.
pub const WITHIN: Duration = Duration::from_secs(1);

/// `n` instances on one database (SQLite file, or PostgreSQL in the CI pass) and one bus.
pub async fn cluster(n: usize) -> (Nats, Vec<TestServer>) {
    let bus = Nats::start();
    let url = bus.url.clone();
    let first = TestServer::start_with(|c| {
        c.token_secret = Some(SECRET.to_owned().into());
        c.nats_url = Some(url.clone());
    })
    .await;
    let db = first
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", first.data_dir().join("reach.db").display()));
    let mut all = vec![first];
    for _ in 1..n {
        let (db, url) = (db.clone(), url.clone());
        all.push(
            TestServer::start_with(move |c| {
                c.database_url = Some(db);
                c.token_secret = Some(SECRET.to_owned().into());
                c.nats_url = Some(url);
            })
            .await,
        );
    }
    (bus, all)
}
