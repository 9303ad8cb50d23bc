//! IP networks: allow lists, greylisting's client networks, SPF's CIDR mechanisms.

use std::net::IpAddr;

use crate::InvalidValue;

/// An address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub len: u8,
}

impl Network {
    /// "192.0.2.0/24", "2001:db8::/32", or one address (a /32 or /128).
    pub fn parse(s: &str) -> Result<Network, InvalidValue> {
        let s = s.trim();
        if let Some((ip, len)) = s.split_once('/') {
            let addr: IpAddr = ip.parse().map_err(|_| InvalidValue(format!("{s:?}: bad network address")))?;
            let len: u8 =
                len.parse().ok().filter(|l| *l <= max_len(addr)).ok_or_else(|| InvalidValue(format!("{s:?}: bad prefix length")))?;
            return Ok(Network { addr, len });
        }
        let addr: IpAddr = s.parse().map_err(|_| InvalidValue(format!("{s:?} is not an IP address or network")))?;
        Ok(Network { addr, len: max_len(addr) })
    }

    /// Whether `ip` is inside; an IPv4-mapped IPv6 address counts as IPv4, and an
    /// address never matches a network of the other family.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (unmap(ip), self.addr) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                prefix_bits(u128::from(u32::from(a)), 32, self.len) == prefix_bits(u128::from(u32::from(n)), 32, self.len)
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => prefix_bits(u128::from(a), 128, self.len) == prefix_bits(u128::from(n), 128, self.len),
            _ => false,
        }
    }

    /// The network of `ip` with the given prefix per family ("192.0.2.0/24").
    pub fn of(ip: IpAddr, v4_len: u8, v6_len: u8) -> Network {
        let ip = unmap(ip);
        let (len, addr) = match ip {
            IpAddr::V4(a) => (v4_len.min(32), IpAddr::V4((prefix_bits(u128::from(u32::from(a)), 32, v4_len) as u32).into())),
            IpAddr::V6(a) => (v6_len.min(128), IpAddr::V6(prefix_bits(u128::from(a), 128, v6_len).into())),
        };
        Network { addr, len }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn max_len(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `value` (of `bits` bits) with everything after the first `len` bits cleared.
fn prefix_bits(value: u128, bits: u32, len: u8) -> u128 {
    let len = u32::from(len).min(bits);
    if len == 0 { 0 } else { value & (u128::MAX << (128 - len) >> (128 - bits)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        let n = |s: &str| Network::parse(s).unwrap();
        assert!(n("192.0.2.0/24").contains(ip("192.0.2.77")));
        assert!(!n("192.0.2.0/24").contains(ip("192.0.3.1")));
        assert!(n("192.0.2.0/24").contains(ip("::ffff:192.0.2.1")));
        assert!(n("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(n("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!n("0.0.0.0/0").contains(ip("::1")));
        assert!(n("10.0.0.1").contains(ip("10.0.0.1")) && !n("10.0.0.1").contains(ip("10.0.0.2")));
        for bad in ["1.2.3.4/33", "nonsense", "::/129", ""] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Network::of(ip("192.0.2.77"), 24, 64).to_string(), "192.0.2.0/24");
        assert_eq!(Network::of(ip("198.51.100.7"), 16, 64).to_string(), "198.51.0.0/16");
        assert_eq!(Network::of(ip("2001:db8:1:2:3::4"), 24, 64).to_string(), "2001:db8:1:2::/64");
    }
}
