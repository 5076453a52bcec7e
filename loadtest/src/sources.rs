//! Source addresses for the SDK scenario. The gateway limits the SDK path per client IP, so
//! a run from one address measures one visitor's limit, not the gateway. Linux routes all of
//! `127.0.0.0/8` to the loopback interface, so against a loopback target each connection can
//! bind its own `127.0.0.x` without any setup and count as its own visitor.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The first and last source addresses handed out: 127.0.0.1 is left to everything else.
const FIRST: u8 = 2;
const LAST: u8 = 254;

/// Source addresses handed out round-robin, one per new connection.
#[derive(Debug)]
pub(crate) struct Sources {
    /// The target, as connecting from a bound socket needs an address, not a host name.
    target: SocketAddr,
    next: AtomicUsize,
}

impl Sources {
    /// Sources for `url` when its host is an IPv4 loopback address; None otherwise, as a
    /// source in 127/8 cannot reach any other host.
    pub(crate) fn for_target(url: &url::Url) -> Option<Sources> {
        let url::Host::Ipv4(ip) = url.host()? else {
            return None;
        };
        if !ip.is_loopback() {
            return None;
        }
        let port = url.port_or_known_default()?;
        Some(Sources {
            target: SocketAddr::new(IpAddr::V4(ip), port),
            next: AtomicUsize::new(0),
        })
    }

    pub(crate) fn target(&self) -> SocketAddr {
        self.target
    }

    /// The next source address, 127.0.0.2 to 127.0.0.254 and round again.
    pub(crate) fn next(&self) -> SocketAddr {
        let span = usize::from(LAST - FIRST) + 1;
        let n = self.next.fetch_add(1, Ordering::Relaxed) % span;
        // n < 253, so the sum fits a u8.
        let last = FIRST + u8::try_from(n).unwrap_or(0);
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).expect("url")
    }

    #[test]
    fn only_ipv4_loopback_targets_get_sources() {
        assert!(Sources::for_target(&url("http://127.0.0.1:8080")).is_some());
        assert!(Sources::for_target(&url("http://127.5.6.7")).is_some());
        assert!(Sources::for_target(&url("http://10.0.0.1:8080")).is_none());
        assert!(Sources::for_target(&url("http://[::1]:8080")).is_none());
        assert!(Sources::for_target(&url("http://gateway.internal:8080")).is_none());
    }

    #[test]
    fn addresses_go_round_from_2_to_254() {
        let sources = Sources::for_target(&url("http://127.0.0.1:8080")).expect("loopback");
        assert_eq!(sources.target().port(), 8080);
        let ips: Vec<IpAddr> = (0..254).map(|_| sources.next().ip()).collect();
        assert_eq!(ips[0], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(ips[252], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 254)));
        assert_eq!(ips[253], ips[0], "after 254 it starts again at 2");
        let distinct: std::collections::HashSet<_> = ips.iter().collect();
        assert_eq!(distinct.len(), 253);
    }

    #[tokio::test]
    async fn connections_come_from_their_own_loopback_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let target = crate::client::Target::of(
            &url(&format!("http://127.0.0.1:{port}")),
            crate::args::HttpVersion::Http1,
            std::time::Duration::from_secs(5),
            true,
        );
        let mut peers = Vec::new();
        let mut open = Vec::new();
        for _ in 0..3 {
            open.push(
                crate::client::Connection::open(&target)
                    .await
                    .expect("connect"),
            );
            let (_, peer) = listener.accept().await.expect("accept");
            peers.push(peer.ip());
        }
        let expected: Vec<IpAddr> = (2..5)
            .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
            .collect();
        assert_eq!(
            peers, expected,
            "the gateway sees one address per connection"
        );
    }
}
