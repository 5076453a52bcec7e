//! Where outbound webhooks may go. Targets are checked when a subscription is saved and again
//! at every connection, after DNS, so a name that later resolves to an internal address (DNS
//! rebinding) is refused too. Loopback, private, link-local (cloud metadata at 169.254.169.254),
//! shared, unspecified, multicast and documentation ranges are refused unless the operator
//! allows private targets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a target URL is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("must be an absolute http or https URL")]
    NotHttp,
    #[error("resolves to a loopback, private or link-local address, which is not allowed")]
    Private,
    #[error("its host name could not be resolved")]
    Unresolved,
    #[error("must not use port 0, which no server listens on")]
    PortZero,
}

/// Checks a URL's form, and its host when it is an address or `localhost`. Names are checked
/// again when a delivery connects, so this is the early, clear answer, not the guard itself.
pub fn check_url(url: &str, allow_private: bool) -> Result<url::Url, TargetError> {
    let parsed = url::Url::parse(url).map_err(|_| TargetError::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::NotHttp);
    }
    // Connecting to port 0 fails or, on some stacks, reaches whatever the OS picks.
    if parsed.port() == Some(0) {
        return Err(TargetError::PortZero);
    }
    let private = match parsed.host() {
        None => return Err(TargetError::NotHttp),
        Some(url::Host::Ipv4(ip)) => is_forbidden(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_forbidden(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if private && !allow_private {
        return Err(TargetError::Private);
    }
    Ok(parsed)
}

/// Whether an address is one outbound webhooks must not reach by default.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_forbidden_v4(v4),
            None => is_forbidden_v6(ip),
        },
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT: reachable inside many clouds.
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments (DS-Lite, NAT64 discovery): not public hosts.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking networks.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let low_v4 = || Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // fec0::/10, the deprecated site-local range, still routed inside some networks.
        || (s[0] & 0xffc0) == 0xfec0
        // 2001:db8::/32, documentation.
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // ::a.b.c.d (IPv4-compatible), 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64): the low 32
        // bits are an IPv4 address that may be internal.
        || (s[..6] == [0, 0, 0, 0, 0, 0] && is_forbidden_v4(low_v4()))
        || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_forbidden_v4(low_v4()))
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        // 2002::/16, 6to4: bits 16..48 are an IPv4 address.
        || (s[0] == 0x2002
            && is_forbidden_v4(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_internal_addresses_by_default() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[::7f00:1]/",
            "http://[2002:a00:1::]/",
            "http://[fec0::1]/",
            "http://[2001:db8::1]/",
            "http://[64:ff9b:1::1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://192.0.0.1/",
            "http://192.0.0.170/",
            "http://[::ffff:192.0.0.8]/",
        ] {
            assert_eq!(check_url(url, false), Err(TargetError::Private), "{url}");
            assert!(
                check_url(url, true).is_ok(),
                "{url} with private targets allowed"
            );
        }
    }

    #[test]
    fn accepts_public_addresses_and_names() {
        for url in [
            "https://hooks.example.com/in",
            "http://93.184.216.34/",
            "http://[2606:2800:220:1::]/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn refuses_port_zero_even_where_private_targets_are_allowed() {
        for url in [
            "http://hooks.example.com:0/in",
            "https://93.184.216.34:0/",
            "http://127.0.0.1:0/",
        ] {
            assert_eq!(check_url(url, true), Err(TargetError::PortZero), "{url}");
            assert!(check_url(url, false).is_err(), "{url}");
        }
        // The neighbours of 192.0.0.0/24 and other ports stay allowed.
        for url in [
            "http://192.0.1.1/",
            "http://191.255.255.255:1/",
            "https://hooks.example.com:65535/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_http_url() {
        for url in [
            "ftp://example.com/",
            "example.com/hook",
            "file:///etc/passwd",
            "",
        ] {
            assert_eq!(check_url(url, true), Err(TargetError::NotHttp), "{url}");
        }
    }
}
