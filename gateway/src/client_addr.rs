//! The client's address when the gateway stands behind proxies (SPEC §9, `--trusted-proxies`).
//!
//! `X-Forwarded-For` is whatever the sender wrote, so it is read only when the connection comes
//! from a proxy the operator named, and then only as far as the proxies reach: each trusted
//! proxy appends the address it received the request from, so the list is walked from the
//! right, past every trusted address, and the first other address is the client. Anything to
//! its left was written by the client and is ignored. Without trusted proxies, or from any
//! other peer, the client is the peer: behind an ingress that would put every browser in one
//! SDK rate-limit bucket, which is why the setting exists.

use std::net::IpAddr;
use std::str::FromStr;

use hyper::header::HeaderMap;
use ipnet::IpNet;

/// Most `X-Forwarded-For` entries examined: a request is not passed through more proxies than
/// this, and a long forged list costs no more than this to read.
const MAX_HOPS: usize = 16;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// `CIDR,…`; a bare address is one host; empty means none.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!("{item:?} is not a CIDR block (e.g. 10.0.0.0/8) or an IP address")
                })?,
            };
            nets.push(net.trunc());
        }
        Ok(TrustedProxies(nets))
    }
}

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The address of the client that sent a request received from `peer`.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        // Every X-Forwarded-For line, in order, as one list read from its right end.
        let lines: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let mut client = peer;
        for entry in lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(','))
            .take(MAX_HOPS)
        {
            match entry.trim().parse::<IpAddr>() {
                Ok(address) => {
                    client = canonical(address);
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // An entry that is no address was not written by a proxy that follows the
                // convention: the last hop known to be real is as far as the chain is believed.
                Err(_) => return client,
            }
        }
        client
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`, as a dual-stack listener reports it) is
/// the IPv4 address, for matching and for rate-limit keys.
pub(crate) fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(
                "x-forwarded-for",
                HeaderValue::from_str(line).expect("value"),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_list_parses_cidrs_and_bare_addresses_and_refuses_the_rest() {
        let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.7,fd00::/8".parse().expect("parse");
        assert!(proxies.trusts(ip("10.1.2.3")));
        assert!(proxies.trusts(ip("192.168.1.7")));
        assert!(!proxies.trusts(ip("192.168.1.8")));
        assert!(proxies.trusts(ip("fd12::1")));
        assert!(
            proxies.trusts(ip("::ffff:10.9.9.9")),
            "IPv4-mapped peers match"
        );
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::default()));
        for bad in ["10.0.0.0/33", "ten", "10.0.0.0/8,nope", "::/129"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(none.client(ip("198.51.100.1"), &forged), ip("198.51.100.1"));
        let proxies: TrustedProxies = "10.0.0.0/8".parse().expect("parse");
        // A client talking to the gateway directly cannot pick its own address.
        assert_eq!(
            proxies.client(ip("198.51.100.1"), &forged),
            ip("198.51.100.1")
        );
        // Through the proxy, the address the proxy saw.
        assert_eq!(proxies.client(ip("10.0.0.5"), &forged), ip("203.0.113.9"));
        // A trusted peer that sent no header is the client.
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn the_chain_is_believed_from_the_right_up_to_the_first_untrusted_address() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().expect("parse");
        // The client wrote the first entry itself; the edge proxy appended the real one, and
        // an inner proxy appended the edge proxy.
        let chain = headers(&["1.1.1.1, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.3"), &chain), ip("203.0.113.9"));
        // The same list split over several header lines.
        let lines = headers(&["1.1.1.1", "203.0.113.9, 10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.3"), &lines), ip("203.0.113.9"));
        // Every hop trusted: the leftmost is the client.
        let inside = headers(&["10.0.0.9, 10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.3"), &inside), ip("10.0.0.9"));
        // IPv6 clients, and IPv4-mapped forms taken as IPv4.
        let v6 = headers(&["2001:db8::7, ::ffff:10.0.0.2"]);
        assert_eq!(proxies.client(ip("10.0.0.3"), &v6), ip("2001:db8::7"));
    }

    #[test]
    fn garbage_and_absurd_lengths_stop_at_the_last_real_hop() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().expect("parse");
        for line in [
            "unknown, 10.0.0.2",
            "1.2.3.4:5678, 10.0.0.2",
            ", 10.0.0.2",
            "10.0.0.2, [::1]",
        ] {
            let got = proxies.client(ip("10.0.0.3"), &headers(&[line]));
            assert!(proxies.trusts(got), "{line}: {got} should be a trusted hop");
        }
        // A forged list of thousands of trusted-looking entries is read only MAX_HOPS deep.
        let long = vec!["10.0.0.1"; 5000].join(", ");
        let forged = format!("203.0.113.9, {long}");
        assert_eq!(
            proxies.client(ip("10.0.0.3"), &headers(&[&forged])),
            ip("10.0.0.1")
        );
    }
}
