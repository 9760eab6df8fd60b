//! The cluster's address plan: the subnet of its network, the gateway (the
//! host's side of the bridge), a fixed IP per node, and the overlap check
//! against networks that already exist. Everything here is pure.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use thiserror::Error;

/// Default subnet of a cluster network: a private /24 far from Docker's own
/// pools (172.17-31.x, 192.168.x) and from the usual 10.0.x / 10.1.x / 10.10.x
/// home and cloud ranges.
pub const DEFAULT_SUBNET: Subnet = Subnet {
    base: Ipv4Addr::new(10, 217, 93, 0),
    prefix: 24,
};

/// Offset of the first node's address in the subnet: node `i` (from 0) gets
/// `base + 11 + i`, so `n1` is `x.y.z.11` as in the notes.
pub const FIRST_NODE_OFFSET: u32 = 11;

/// An address plan that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    /// The text is not `a.b.c.d/prefix`.
    #[error("subnet {0:?} is not of the form a.b.c.d/prefix")]
    Syntax(String),
    /// The prefix is outside 16..=29.
    #[error("subnet {0:?}: prefix must be between /16 and /29")]
    Prefix(String),
    /// Host bits are set in the base address.
    #[error("subnet {text:?} has host bits set; did you mean {network}?")]
    HostBits {
        /// The given text.
        text: String,
        /// The network the text should have named.
        network: Subnet,
    },
    /// More nodes than the subnet holds after the first node offset.
    #[error("subnet {subnet} holds at most {capacity} nodes, {wanted} requested")]
    TooManyNodes {
        /// The subnet.
        subnet: Subnet,
        /// How many nodes fit.
        capacity: u32,
        /// How many were asked for.
        wanted: usize,
    },
}

/// An IPv4 subnet such as `10.217.93.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    base: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// A subnet from its base address and prefix length; the prefix must be in
    /// 16..=29 and the base must have no host bits set.
    pub fn new(base: Ipv4Addr, prefix: u8) -> Result<Self, PlanError> {
        let text = format!("{base}/{prefix}");
        if !(16..=29).contains(&prefix) {
            return Err(PlanError::Prefix(text));
        }
        let network = Subnet {
            base: Ipv4Addr::from(u32::from(base) & mask(prefix)),
            prefix,
        };
        if network.base != base {
            return Err(PlanError::HostBits { text, network });
        }
        Ok(network)
    }

    /// The base (network) address.
    pub fn base(&self) -> Ipv4Addr {
        self.base
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Number of addresses in the subnet, network and broadcast included.
    pub fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    /// The gateway: the first usable address, held by the host's bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    /// Whether `ip` lies in the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.base)
    }

    /// Whether the two subnets share at least one address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let shorter = self.prefix.min(other.prefix);
        let m = mask(shorter);
        u32::from(self.base) & m == u32::from(other.base) & m
    }

    /// How many nodes fit: every usable address from the first node offset to
    /// the one before the broadcast address.
    pub fn node_capacity(&self) -> u32 {
        self.size().saturating_sub(FIRST_NODE_OFFSET + 1)
    }

    /// The fixed addresses of `count` nodes: `base + 11`, `base + 12`, ...
    pub fn node_ips(&self, count: usize) -> Result<Vec<Ipv4Addr>, PlanError> {
        let capacity = self.node_capacity();
        if count > capacity as usize {
            return Err(PlanError::TooManyNodes {
                subnet: *self,
                capacity,
                wanted: count,
            });
        }
        let first = u32::from(self.base) + FIRST_NODE_OFFSET;
        Ok((0..count as u32)
            .map(|i| Ipv4Addr::from(first + i))
            .collect())
    }

    /// Whether `ip` may be given to a node: inside the subnet, not the network,
    /// gateway or broadcast address.
    pub fn is_node_address(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.base));
        self.contains(ip) && offset >= 2 && offset < self.size() - 1
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = PlanError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || PlanError::Syntax(text.to_string());
        let (addr, prefix) = text.trim().split_once('/').ok_or_else(syntax)?;
        let base: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        Subnet::new(base, prefix).map_err(|e| match e {
            PlanError::Prefix(_) => PlanError::Prefix(text.to_string()),
            PlanError::HostBits { network, .. } => PlanError::HostBits {
                text: text.to_string(),
                network,
            },
            other => other,
        })
    }
}

/// The first existing network whose subnet overlaps `candidate`, as
/// `(network name, its subnet text)`. `existing` lists every network's name
/// with the subnets of its IPAM config; subnets that are not IPv4 (IPv6 ones)
/// are skipped.
pub fn find_overlap(
    candidate: &Subnet,
    existing: &[(String, Vec<String>)],
) -> Option<(String, String)> {
    existing.iter().find_map(|(name, subnets)| {
        subnets.iter().find_map(|text| {
            let subnet = parse_any_v4(text)?;
            candidate
                .overlaps(&subnet)
                .then(|| (name.clone(), text.clone()))
        })
    })
}

/// Parses an IPv4 CIDR with any prefix (0..=32), host bits masked off; `None`
/// for IPv6 or malformed text.
fn parse_any_v4(text: &str) -> Option<Subnet> {
    let (addr, prefix) = text.trim().split_once('/')?;
    let base: Ipv4Addr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    if prefix > 32 {
        return None;
    }
    Some(Subnet {
        base: Ipv4Addr::from(u32::from(base) & mask(prefix)),
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s: Subnet = "10.217.93.0/24".parse().unwrap();
        assert_eq!(s.base(), Ipv4Addr::new(10, 217, 93, 0));
        assert_eq!(s.prefix(), 24);
        assert_eq!(s.to_string(), "10.217.93.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 217, 93, 1));
        assert_eq!(s.size(), 256);
        assert_eq!(DEFAULT_SUBNET, s);
        assert_eq!(
            Subnet::new(DEFAULT_SUBNET.base(), DEFAULT_SUBNET.prefix()),
            Ok(s)
        );
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(
            "10.0.0.0".parse::<Subnet>(),
            Err(PlanError::Syntax("10.0.0.0".into()))
        );
        assert_eq!(
            "10.0.0/24".parse::<Subnet>(),
            Err(PlanError::Syntax("10.0.0/24".into()))
        );
        assert_eq!(
            "10.0.0.0/8".parse::<Subnet>(),
            Err(PlanError::Prefix("10.0.0.0/8".into()))
        );
        assert_eq!(
            "10.0.0.0/30".parse::<Subnet>(),
            Err(PlanError::Prefix("10.0.0.0/30".into()))
        );
        let err = "10.1.2.3/24".parse::<Subnet>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "subnet \"10.1.2.3/24\" has host bits set; did you mean 10.1.2.0/24?"
        );
    }

    #[test]
    fn node_ips_start_at_eleven() {
        let s: Subnet = "10.217.93.0/24".parse().unwrap();
        let ips = s.node_ips(5).unwrap();
        assert_eq!(
            ips,
            vec![
                Ipv4Addr::new(10, 217, 93, 11),
                Ipv4Addr::new(10, 217, 93, 12),
                Ipv4Addr::new(10, 217, 93, 13),
                Ipv4Addr::new(10, 217, 93, 14),
                Ipv4Addr::new(10, 217, 93, 15),
            ]
        );
        assert_eq!(s.node_capacity(), 244);
        assert_eq!(
            s.node_ips(244).unwrap().last(),
            Some(&Ipv4Addr::new(10, 217, 93, 254))
        );
        assert!(matches!(
            s.node_ips(245),
            Err(PlanError::TooManyNodes { capacity: 244, .. })
        ));
        let small: Subnet = "10.9.9.0/28".parse().unwrap();
        assert_eq!(small.node_capacity(), 4);
        assert_eq!(
            small.node_ips(4).unwrap().last(),
            Some(&Ipv4Addr::new(10, 9, 9, 14))
        );
    }

    #[test]
    fn node_address_rules() {
        let s: Subnet = "10.5.0.0/24".parse().unwrap();
        assert!(s.is_node_address(Ipv4Addr::new(10, 5, 0, 2)));
        assert!(s.is_node_address(Ipv4Addr::new(10, 5, 0, 254)));
        assert!(!s.is_node_address(Ipv4Addr::new(10, 5, 0, 0)));
        assert!(!s.is_node_address(Ipv4Addr::new(10, 5, 0, 1)));
        assert!(!s.is_node_address(Ipv4Addr::new(10, 5, 0, 255)));
        assert!(!s.is_node_address(Ipv4Addr::new(10, 5, 1, 20)));
    }

    #[test]
    fn overlap() {
        let a: Subnet = "10.217.93.0/24".parse().unwrap();
        let wide: Subnet = "10.217.0.0/16".parse().unwrap();
        let other: Subnet = "10.217.94.0/24".parse().unwrap();
        assert!(a.overlaps(&wide));
        assert!(wide.overlaps(&a));
        assert!(!a.overlaps(&other));
        assert!(a.overlaps(&a));

        let existing = vec![
            ("bridge".to_string(), vec!["172.17.0.0/16".to_string()]),
            ("v6".to_string(), vec!["fd00::/64".to_string()]),
            ("lab".to_string(), vec!["10.208.0.0/12".to_string()]),
        ];
        assert_eq!(
            find_overlap(&a, &existing),
            Some(("lab".to_string(), "10.208.0.0/12".to_string()))
        );
        assert_eq!(find_overlap(&other, &existing[..2]), None);
        let b: Subnet = "172.17.5.0/24".parse().unwrap();
        assert_eq!(
            find_overlap(&b, &existing),
            Some(("bridge".to_string(), "172.17.0.0/16".to_string()))
        );
    }
}
