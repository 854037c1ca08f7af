//! Which IP address a request comes from.
//!
//! The socket peer, unless the peer is a configured trusted proxy: only then is
//! `X-Forwarded-For` read, from the right, skipping trusted hops, and the first untrusted hop
//! is the client. A forged header from an untrusted peer is therefore ignored, and a client
//! cannot push its own entries past the proxies it really went through.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Longest `X-Forwarded-For` value considered (bytes); longer headers are ignored.
pub const MAX_FORWARDED_LEN: usize = 2048;

/// The client IP for a request from `peer` with `headers`, given the trusted proxies.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    let mut total = 0;
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for value in values.iter().rev() {
        total += value.len();
        if total > MAX_FORWARDED_LEN {
            return client;
        }
        for hop in value.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return client;
            };
            client = canonical(ip);
            if !is_trusted(client, trusted) {
                return client;
            }
        }
    }
    client
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let got = resolve(ip("192.0.2.9"), &headers(&["1.2.3.4"]), &trusted);
        assert_eq!(got, ip("192.0.2.9"));
    }

    #[test]
    fn a_trusted_proxy_hands_over_the_right_most_untrusted_hop() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["6.6.6.6, 203.0.113.7, 10.0.0.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn several_header_lines_are_read_as_one_list() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["203.0.113.7", "10.0.0.3"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
    }

    #[test]
    fn a_garbage_hop_stops_at_the_last_trusted_address() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&["203.0.113.7, not-an-ip, 10.0.0.2"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let trusted = vec!["127.0.0.1/32".parse().unwrap()];
        let got = resolve(ip("::ffff:127.0.0.1"), &HeaderMap::new(), &trusted);
        assert_eq!(got, ip("127.0.0.1"));
    }
}
