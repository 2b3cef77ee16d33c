//! The resolved-IP policy: which addresses a validation may contact.
//!
//! The policy is what stops validation from being pointed at internal
//! services (cloud metadata, admin interfaces). An address can reach an
//! IPv4 host while being spelt as IPv6 — IPv4-mapped, through a NAT64
//! gateway, through a 6to4 relay — so those spellings are also judged by the
//! IPv4 address they carry.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

/// A resolved-IP policy: allow and deny lists of networks.
///
/// Deny wins. When the allow list is empty, every address that is not denied
/// is permitted. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are checked
/// as the IPv4 address they carry, and IPv4-mapped entries in the lists are
/// stored as IPv4 networks, so a policy cannot be bypassed by spelling an
/// IPv4 address as IPv6. NAT64 (`64:ff9b::/96`, RFC 6052) and 6to4
/// (`2002::/16`, RFC 3056) addresses must pass twice: as themselves, and as
/// the IPv4 address they embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPolicy {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// A resolved-IP policy that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Neither list has an entry: an unset policy must never mean "anything".
    #[error("resolved-ip-policy needs allow-cidrs or deny-cidrs")]
    Empty,
    /// One entry is not an IP address or CIDR.
    #[error("{list}: {entry:?} is not a valid IP address or CIDR: {reason}")]
    Invalid {
        /// `allow-cidrs` or `deny-cidrs`.
        list: &'static str,
        /// The entry as written.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
}

impl IpPolicy {
    /// Builds a policy from the `allow-cidrs` and `deny-cidrs` lists.
    ///
    /// Entries are CIDRs (`10.0.0.0/8`, `fd00::/8`) or bare addresses
    /// (`169.254.169.254`, a /32 or /128). A CIDR with host bits set
    /// (`10.0.0.1/8`) is refused as ambiguous.
    pub fn new(allow: &[String], deny: &[String]) -> Result<Self, PolicyError> {
        if allow.is_empty() && deny.is_empty() {
            return Err(PolicyError::Empty);
        }
        Ok(Self {
            allow: parse_list("allow-cidrs", allow)?,
            deny: parse_list("deny-cidrs", deny)?,
        })
    }

    /// Whether `ip` may be contacted under this policy.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.passes(ip) && embedded_ipv4(ip).is_none_or(|v4| self.passes(IpAddr::V4(v4)))
    }

    /// The lists applied to `ip` as it is.
    fn passes(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }

    /// The allowed networks (normalised).
    pub fn allow(&self) -> &[IpNet] {
        &self.allow
    }

    /// The denied networks (normalised).
    pub fn deny(&self) -> &[IpNet] {
        &self.deny
    }
}

/// An IPv4-mapped IPv6 address becomes the IPv4 address it carries.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 address a NAT64 well-known-prefix address (`64:ff9b::/96`, the
/// last 32 bits) or a 6to4 address (`2002::/16`, the next 32 bits) carries.
pub(crate) fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = v6.octets();
    match [a, b, c, d, e, f, g, h, i, j, k, l] {
        [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] => Some(Ipv4Addr::new(m, n, o, p)),
        [0x20, 0x02, ..] => Some(Ipv4Addr::new(c, d, e, f)),
        _ => None,
    }
}

fn parse_list(list: &'static str, entries: &[String]) -> Result<Vec<IpNet>, PolicyError> {
    entries.iter().map(|e| parse_entry(list, e)).collect()
}

fn parse_entry(list: &'static str, entry: &str) -> Result<IpNet, PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid {
        list,
        entry: entry.to_owned(),
        reason,
    };
    let text = entry.trim();
    let net = if text.contains('/') {
        let net: IpNet = text.parse().map_err(|e| invalid(format!("{e}")))?;
        if net.trunc() != net {
            return Err(invalid(format!(
                "host bits are set (did you mean {}?)",
                net.trunc()
            )));
        }
        net
    } else {
        let ip: IpAddr = text.parse().map_err(|e| invalid(format!("{e}")))?;
        IpNet::from(ip)
    };
    Ok(unmap(net))
}

/// `::ffff:a.b.c.d/n` with n >= 96 is stored as the IPv4 network it denotes.
fn unmap(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                if let Ok(v4net) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(v4net);
                }
            }
        }
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn both_empty_is_refused() {
        let err = IpPolicy::new(&[], &[]).expect_err("empty policy");
        assert_eq!(
            err.to_string(),
            "resolved-ip-policy needs allow-cidrs or deny-cidrs"
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = IpPolicy::new(&s(&["10.0.0.0/8"]), &s(&["10.1.0.0/16"])).expect("policy");
        assert!(p.permits(ip("10.2.3.4")));
        assert!(!p.permits(ip("10.1.2.3")));
        assert!(!p.permits(ip("192.168.1.1")), "not in allow list");
    }

    #[test]
    fn deny_only_allows_everything_else() {
        let p = IpPolicy::new(&[], &s(&["169.254.169.254", "127.0.0.0/8"])).expect("policy");
        assert!(!p.permits(ip("169.254.169.254")));
        assert!(p.permits(ip("169.254.169.253")));
        assert!(!p.permits(ip("127.0.0.1")));
        assert!(p.permits(ip("2001:db8::1")));
    }

    #[test]
    fn bare_addresses_are_host_routes() {
        let p = IpPolicy::new(&s(&["192.0.2.7", "2001:db8::7"]), &[]).expect("policy");
        assert!(p.permits(ip("192.0.2.7")));
        assert!(!p.permits(ip("192.0.2.8")));
        assert!(p.permits(ip("2001:db8::7")));
        assert!(!p.permits(ip("2001:db8::8")));
    }

    #[test]
    fn v4_mapped_v6_is_checked_as_v4() {
        let p = IpPolicy::new(&[], &s(&["127.0.0.0/8"])).expect("policy");
        assert!(!p.permits(ip("::ffff:127.0.0.1")));
        assert!(p.permits(ip("::ffff:192.0.2.1")));

        let allow = IpPolicy::new(&s(&["192.0.2.0/24"]), &[]).expect("policy");
        assert!(allow.permits(ip("::ffff:192.0.2.10")));

        let mapped_entry = IpPolicy::new(&[], &s(&["::ffff:10.0.0.0/104"])).expect("policy");
        assert!(!mapped_entry.permits(ip("10.9.9.9")));
        assert_eq!(mapped_entry.deny()[0].to_string(), "10.0.0.0/8");
    }

    #[test]
    fn nat64_and_6to4_are_checked_by_their_embedded_ipv4() {
        let p = IpPolicy::new(&[], &s(&["169.254.0.0/16", "127.0.0.0/8"])).expect("policy");
        // NAT64 well-known prefix (RFC 6052): the IPv4 is the last 32 bits.
        assert!(!p.permits(ip("64:ff9b::a9fe:a9fe")), "169.254.169.254");
        assert!(!p.permits(ip("64:ff9b::127.0.0.1")));
        assert!(p.permits(ip("64:ff9b::c000:201")), "192.0.2.1");
        // 6to4 (RFC 3056): the IPv4 follows the 2002::/16 prefix.
        assert!(!p.permits(ip("2002:a9fe:a9fe::1")), "169.254.169.254");
        assert!(!p.permits(ip("2002:7f00:1:ffff::5")), "127.0.0.1");
        assert!(p.permits(ip("2002:c000:201::1")), "192.0.2.1");
        // Not those prefixes: no embedded address is read.
        assert!(p.permits(ip("64:ff9c::7f00:1")));
        assert!(p.permits(ip("2003:7f00:1::1")));

        // Both must pass, deny wins: allowing the IPv6 prefix does not allow
        // an embedded IPv4 outside the allow list, or a denied one.
        let allow =
            IpPolicy::new(&s(&["10.0.0.0/8", "64:ff9b::/96", "2002::/16"]), &[]).expect("policy");
        assert!(allow.permits(ip("64:ff9b::a00:1")), "10.0.0.1");
        assert!(
            !allow.permits(ip("64:ff9b::c000:201")),
            "192.0.2.1 not allowed"
        );
        assert!(allow.permits(ip("2002:a00:1::1")), "10.0.0.1");
        assert!(
            !allow.permits(ip("2002:c000:201::1")),
            "192.0.2.1 not allowed"
        );
        // ... nor does allowing the IPv4 allow the IPv6 spelling by itself.
        let v4_only = IpPolicy::new(&s(&["10.0.0.0/8"]), &[]).expect("policy");
        assert!(!v4_only.permits(ip("64:ff9b::a00:1")));
        let deny_prefix = IpPolicy::new(&[], &s(&["2002::/16"])).expect("policy");
        assert!(!deny_prefix.permits(ip("2002:c000:201::1")));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = IpPolicy::new(&s(&["10.0.0.0/33"]), &[]).expect_err("bad prefix");
        let text = err.to_string();
        assert!(text.starts_with("allow-cidrs: \"10.0.0.0/33\""), "{text}");

        let err = IpPolicy::new(&[], &s(&["10.0.0.1/8"])).expect_err("host bits");
        assert_eq!(
            err.to_string(),
            "deny-cidrs: \"10.0.0.1/8\" is not a valid IP address or CIDR: host bits are set (did you mean 10.0.0.0/8?)"
        );

        let err = IpPolicy::new(&[], &s(&["localhost"])).expect_err("name");
        assert!(err.to_string().contains("\"localhost\""), "{err}");
    }
}
