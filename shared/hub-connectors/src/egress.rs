//! The SSRF guard: outbound connector calls never reach private, loopback, link-local (cloud
//! metadata at 169.254.169.254), unique-local, multicast or otherwise reserved addresses unless
//! the deployment allows the host or network explicitly.
//!
//! Checked where it cannot be dodged: on the addresses a host name *resolves to*, inside the
//! HTTP client's resolver (so DNS tricks such as a public name pointing at 127.0.0.1 fail), and
//! on IP-literal URLs before the request (the client skips the resolver for those), including
//! every redirect hop and next-page URL.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused: the name of the reserved range it falls in.
pub fn reserved_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => reserved_v6(v6),
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        (0, _, _) => "this network (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared address space (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local and cloud metadata (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (TEST-NET)",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved and broadcast (240.0.0.0/4)",
        _ => return None,
    };
    Some(range)
}

fn reserved_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // Forms that embed an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reserved_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96): the last 32 bits are the IPv4 destination.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return reserved_v4(v4);
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16): bits 16..48 are the IPv4 address of the relay.
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return reserved_v4(v4);
    }
    let range = match s[0] {
        0x0000 => "IPv4-compatible and reserved (::/8)",
        0x0064 if s[1] == 0xff9b && s[2] == 1 => "local-use NAT64 (64:ff9b:1::/48)",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only (100::/64)",
        0x2001 if s[1] < 0x0200 => "IETF protocol assignments incl. Teredo (2001::/23)",
        0x2001 if s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x3fff if s[1] < 0x1000 => "documentation (3fff::/20)",
        0xfc00..=0xfdff => "unique local (fc00::/7)",
        0xfe80..=0xfebf => "link-local (fe80::/10)",
        0xfec0..=0xfeff => "site-local (fec0::/10)",
        0xff00..=0xffff => "multicast (ff00::/8)",
        _ => return None,
    };
    Some(range)
}

/// What outbound calls may reach besides public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Host names (exact, or `*.example.com` for any subdomain) allowed whatever they resolve
    /// to. Lowercase.
    allowed_hosts: Vec<String>,
    allowed_networks: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is neither a host name, an IP address nor a CIDR network")]
pub struct AllowListError {
    pub entry: String,
}

impl EgressPolicy {
    /// Public addresses only: the setting for deployments.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Also loopback (127.0.0.0/8, ::1) and `localhost`: the local host's sandbox, where the
    /// sample API and test servers run.
    pub fn local_sandbox() -> Self {
        let mut policy = Self::strict();
        policy
            .allowed_networks
            .push(IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::LOCALHOST, 8)));
        policy
            .allowed_networks
            .push(IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)));
        policy.allowed_hosts.push("localhost".into());
        policy
    }

    /// Reads an allow-list (`HUB_EGRESS_ALLOW`): entries separated by commas or whitespace,
    /// each a CIDR (`10.1.0.0/16`), an IP address, a host name or `*.domain`.
    pub fn from_allow_list(list: &str) -> Result<Self, AllowListError> {
        let mut policy = Self::strict();
        for entry in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            policy = policy.allow(entry)?;
        }
        Ok(policy)
    }

    /// Adds one allow-list entry (see [`EgressPolicy::from_allow_list`]).
    pub fn allow(mut self, entry: &str) -> Result<Self, AllowListError> {
        let invalid = || AllowListError {
            entry: entry.to_owned(),
        };
        if let Ok(network) = entry.parse::<IpNet>() {
            self.allowed_networks.push(network.trunc());
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            self.allowed_networks.push(IpNet::from(ip));
        } else {
            let host = entry.to_ascii_lowercase();
            let name = host.strip_prefix("*.").unwrap_or(&host);
            let valid = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !valid {
                return Err(invalid());
            }
            self.allowed_hosts.push(host);
        }
        Ok(self)
    }

    /// Whether `host` (a name, not an address) is exempt from the address check.
    pub fn host_is_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed_hosts
            .iter()
            .any(|allowed| match allowed.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                None => *allowed == host,
            })
    }

    /// `Ok` when `ip` may be reached: public, or inside an allowed network.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), &'static str> {
        let ip = canonical(ip);
        match reserved_range(ip) {
            None => Ok(()),
            Some(_) if self.allowed_networks.iter().any(|n| n.contains(&ip)) => Ok(()),
            Some(range) => Err(range),
        }
    }
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry, so an allow-list entry
/// `127.0.0.1` also covers `::ffff:127.0.0.1`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// An outbound call refused by the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressBlocked {
    pub host: String,
    pub address: IpAddr,
    pub range: &'static str,
}

impl fmt::Display for EgressBlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host == self.address.to_string() {
            write!(
                f,
                "outbound call to {} refused: {}",
                self.address, self.range
            )
        } else {
            write!(
                f,
                "outbound call to {} refused: it resolves to {}, {}",
                self.host, self.address, self.range
            )
        }
    }
}

impl std::error::Error for EgressBlocked {}

impl EgressPolicy {
    /// Checks a URL host before a request: IP literals here (the client does not resolve them),
    /// names later in [`GuardedResolver`].
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), EgressBlocked> {
        let host = url.host_str().unwrap_or_default();
        // The URL parser has already normalised every IPv4 spelling (`2130706433`, `0x7f.1`)
        // to dotted decimal and keeps IPv6 literals in brackets.
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let Ok(ip) = literal.parse::<IpAddr>() else {
            return Ok(());
        };
        self.check_ip(ip).map_err(|range| EgressBlocked {
            host: ip.to_string(),
            address: ip,
            range,
        })
    }
}

/// The HTTP client's DNS resolver: resolves with the system resolver (or a fixed table, for
/// tests and pinned hosts) and refuses the whole name if any address is not allowed, since the
/// client may connect to any of them.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    pub policy: Arc<EgressPolicy>,
    pub static_hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let policy = Arc::clone(&self.policy);
        let fixed = self.static_hosts.get(&host).cloned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = match fixed {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            if !policy.host_is_allowed(&host) {
                for address in &addresses {
                    policy
                        .check_ip(address.ip())
                        .map_err(|range| EgressBlocked {
                            host: host.clone(),
                            address: address.ip(),
                            range,
                        })?;
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Finds an [`EgressBlocked`] in an error's source chain (the client wraps resolver errors).
pub(crate) fn find_blocked<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e EgressBlocked> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(blocked) = e.downcast_ref::<EgressBlocked>() {
            return Some(blocked);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn reserved_addresses_are_refused_by_default() {
        let strict = EgressPolicy::strict();
        for blocked in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.251",
            "255.255.255.255",
            "198.18.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::127.0.0.1",
        ] {
            assert!(
                strict.check_ip(ip(blocked)).is_err(),
                "{blocked} must be refused"
            );
        }
        for public in [
            "8.8.8.8",
            "140.82.112.3",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(strict.check_ip(ip(public)).is_ok(), "{public} must pass");
        }
    }

    #[test]
    fn allow_list_opens_networks_and_hosts() {
        let policy =
            EgressPolicy::from_allow_list("10.1.0.0/16, 127.0.0.1 api.internal *.corp.test")
                .unwrap();
        assert!(policy.check_ip(ip("10.1.200.3")).is_ok());
        assert!(policy.check_ip(ip("10.2.0.1")).is_err());
        assert!(policy.check_ip(ip("127.0.0.1")).is_ok());
        assert!(policy.check_ip(ip("::ffff:127.0.0.1")).is_ok());
        assert!(policy.check_ip(ip("127.0.0.2")).is_err());
        assert!(policy.host_is_allowed("API.internal."));
        assert!(policy.host_is_allowed("a.b.corp.test"));
        assert!(!policy.host_is_allowed("corp.test"));
        assert!(!policy.host_is_allowed("xcorp.test"));
        assert!(!policy.host_is_allowed("evil-api.internal"));
        assert!(EgressPolicy::from_allow_list("not a/host").is_err());
        assert!(EgressPolicy::from_allow_list("10.0.0.0/33").is_err());
    }

    #[test]
    fn sandbox_allows_loopback_only() {
        let sandbox = EgressPolicy::local_sandbox();
        assert!(sandbox.check_ip(ip("127.0.0.1")).is_ok());
        assert!(sandbox.check_ip(ip("::1")).is_ok());
        assert!(sandbox.check_ip(ip("169.254.169.254")).is_err());
        assert!(sandbox.check_ip(ip("192.168.0.1")).is_err());
        assert!(sandbox.host_is_allowed("localhost"));
    }
}
