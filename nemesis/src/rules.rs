//! Pure text generation for the mechanisms: nft scripts, iptables-restore input (partitions,
//! loss and the NFQUEUE delay), tc arguments, libfaketime offsets, and parsing `ip -o addr`
//! output.
//!
//! Nothing here runs a command; the mechanisms feed these strings to `nft`, `iptables`,
//! `tc` and the clock file.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The nft table of our own (family `inet`) that holds every packet rule we install.
pub const NFT_TABLE: &str = "faultline";

/// The iptables chain of our own (filter table, jumped to from INPUT) used when nft is
/// unavailable.
pub const IPTABLES_CHAIN: &str = "FAULTLINE";

/// What one node's packet filter must do: the whole state, so it can be written (and
/// re-written after a restart) in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRules {
    /// Drop every packet whose source is one of these addresses (the node's grudge).
    pub drop_from: BTreeSet<IpAddr>,
    /// Drop this percentage of the packets arriving on any interface but loopback.
    pub loss_percent: Option<u8>,
    /// TCP packets to this port are always accepted, before any drop: a node agent's
    /// control port, so that the node's own partition never cuts the harness off it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt_tcp_port: Option<u16>,
}

impl NetRules {
    /// True when the node needs no rule at all (our table or chain can go).
    pub fn is_empty(&self) -> bool {
        self.drop_from.is_empty() && self.loss_percent.unwrap_or(0) == 0
    }
}

/// The nft script that replaces our table with `rules` in one transaction.
///
/// The script first adds the table (a no-op if it exists), then deletes it, so it works
/// whether or not the table was there; with no rules it ends there (this is the heal). Only
/// our table is touched: other tables (Docker's DNS NAT rules, say) stay as they are.
pub fn nft_script(rules: &NetRules) -> String {
    let mut s = format!("add table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n");
    if rules.is_empty() {
        return s;
    }
    let _ = writeln!(s, "table inet {NFT_TABLE} {{");
    s.push_str("  chain input {\n");
    s.push_str("    type filter hook input priority -10; policy accept;\n");
    if let Some(port) = rules.exempt_tcp_port {
        let _ = writeln!(s, "    tcp dport {port} accept");
    }
    let v4: Vec<String> = rules
        .drop_from
        .iter()
        .filter(|a| a.is_ipv4())
        .map(IpAddr::to_string)
        .collect();
    let v6: Vec<String> = rules
        .drop_from
        .iter()
        .filter(|a| a.is_ipv6())
        .map(IpAddr::to_string)
        .collect();
    if !v4.is_empty() {
        let _ = writeln!(s, "    ip saddr {{ {} }} drop", v4.join(", "));
    }
    if !v6.is_empty() {
        let _ = writeln!(s, "    ip6 saddr {{ {} }} drop", v6.join(", "));
    }
    match rules.loss_percent {
        // numgen's "mod 100" yields 0..=99, and nft refuses "< 100": total loss is a plain drop.
        Some(p) if p >= 100 => s.push_str("    iifname != \"lo\" drop\n"),
        Some(p) if p > 0 => {
            let _ = writeln!(s, "    iifname != \"lo\" numgen random mod 100 < {p} drop");
        }
        _ => {}
    }
    s.push_str("  }\n}\n");
    s
}

/// The `iptables-restore --noflush` input that fills our chain with `rules`.
///
/// Declaring the chain empties it first, so this replaces the chain's rules as a unit;
/// other chains are left alone. The jump from INPUT is managed separately
/// ([`iptables_jump_args`]). IPv6 sources are not expressible here (iptables is IPv4);
/// the caller refuses them.
pub fn iptables_restore_script(rules: &NetRules) -> String {
    let mut s = format!("*filter\n:{IPTABLES_CHAIN} - [0:0]\n");
    if let Some(port) = rules.exempt_tcp_port {
        let _ = writeln!(s, "-A {IPTABLES_CHAIN} -p tcp --dport {port} -j ACCEPT");
    }
    for addr in rules.drop_from.iter().filter(|a| a.is_ipv4()) {
        let _ = writeln!(s, "-A {IPTABLES_CHAIN} -s {addr}/32 -j DROP");
    }
    match rules.loss_percent {
        Some(p) if p >= 100 => {
            let _ = writeln!(s, "-A {IPTABLES_CHAIN} ! -i lo -j DROP");
        }
        Some(p) if p > 0 => {
            let probability = f64::from(p) / 100.0;
            let _ = writeln!(
                s,
                "-A {IPTABLES_CHAIN} ! -i lo -m statistic --mode random --probability {probability:.5} -j DROP"
            );
        }
        _ => {}
    }
    s.push_str("COMMIT\n");
    s
}

/// Arguments (after `iptables`) that check (`-C`), insert (`-I`) or delete (`-D`) the jump
/// from INPUT to our chain.
pub fn iptables_jump_args(op: &str) -> Vec<String> {
    let mut v = vec!["-w".to_string(), op.to_string(), "INPUT".to_string()];
    if op == "-I" {
        v.push("1".to_string());
    }
    v.extend(["-j".to_string(), IPTABLES_CHAIN.to_string()]);
    v
}

/// The iptables chain of our own (filter table, jumped to from OUTPUT) that hands a delayed
/// node's outgoing packets to its NFQUEUE delayer ([`crate::delay`]).
///
/// Delay needs iptables even when partitions use nft: the NFQUEUE target works through
/// iptables (legacy or nft flavour) where nft's own `queue` statement has no kernel module.
pub const DELAY_CHAIN: &str = "FAULTLINE-DELAY";

/// The NFQUEUE queue number of the first node; node `i` (in name order) uses
/// `DELAY_QUEUE_BASE + i`, so no two nodes share a queue even if they shared a namespace.
pub const DELAY_QUEUE_BASE: u16 = 0xFA00;

/// The NFQUEUE queue number of the node at `index` (in name order), if there is one.
pub fn delay_queue(index: usize) -> Option<u16> {
    u16::try_from(index)
        .ok()
        .and_then(|i| DELAY_QUEUE_BASE.checked_add(i))
}

/// The `iptables-restore --noflush` input that fills our delay chain: every packet the node
/// sends from `src` (loopback excepted) goes to NFQUEUE `queue`.
///
/// `--queue-bypass` lets packets pass undelayed while no delayer is bound to the queue, so a
/// delayer that died never turns into a partition. Declaring the chain empties it first, so
/// this replaces the chain as a unit; the jump from OUTPUT is managed separately
/// ([`chain_jump_args`]).
pub fn delay_restore_script(src: std::net::Ipv4Addr, queue: u16) -> String {
    delay_restore_script_exempt(src, queue, None)
}

/// [`delay_restore_script`], with the TCP packets sent from `exempt_sport` (a node agent's
/// control port, whose answers must not wait) left out of the queue.
pub fn delay_restore_script_exempt(
    src: std::net::Ipv4Addr,
    queue: u16,
    exempt_sport: Option<u16>,
) -> String {
    let exempt = exempt_sport
        .map(|p| format!("-A {DELAY_CHAIN} -p tcp --sport {p} -j RETURN\n"))
        .unwrap_or_default();
    format!(
        "*filter\n:{DELAY_CHAIN} - [0:0]\n{exempt}\
         -A {DELAY_CHAIN} -s {src}/32 ! -o lo -j NFQUEUE --queue-num {queue} --queue-bypass\n\
         COMMIT\n"
    )
}

/// Arguments (after `iptables`) that check (`-C`), insert (`-I`, first place) or delete
/// (`-D`) the jump from the built-in chain `hook` (`INPUT`, `OUTPUT`) to `chain`.
pub fn chain_jump_args(op: &str, hook: &str, chain: &str) -> Vec<String> {
    let mut v = vec!["-w".to_string(), op.to_string(), hook.to_string()];
    if op == "-I" {
        v.push("1".to_string());
    }
    v.extend(["-j".to_string(), chain.to_string()]);
    v
}

/// Arguments (after `iptables`) that add the capability probe's rule: UDP datagrams to
/// `port` on loopback go to NFQUEUE `queue` (used only in a throw-away namespace).
pub fn nfqueue_probe_args(queue: u16, port: u16) -> Vec<String> {
    [
        "-w",
        "-A",
        "OUTPUT",
        "-o",
        "lo",
        "-p",
        "udp",
        "--dport",
        &port.to_string(),
        "-j",
        "NFQUEUE",
        "--queue-num",
        &queue.to_string(),
        "--queue-bypass",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// An offset in libfaketime's timestamp-file syntax: `+30s`, `-1.5s`, `+0.125s`, `+0s`.
///
/// libfaketime 0.9.10 reads a signed number of seconds (fractions allowed) followed by an
/// optional unit (`s`, `m`, `h`, `d`); seconds are written here so any millisecond is exact.
pub fn faketime_offset(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        return format!("{sign}{secs}s");
    }
    let frac = format!("{frac:03}");
    format!("{sign}{secs}.{}s", frac.trim_end_matches('0'))
}

/// A root qdisc that shapes a node's outgoing packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// netem: hold every packet this many milliseconds.
    Delay {
        /// The delay.
        ms: u32,
    },
    /// tbf: at most this many kilobits per second.
    Rate {
        /// The rate.
        kbit: u32,
    },
}

/// Arguments (after `tc`) that put `shape` on `dev`, replacing its root qdisc.
///
/// tbf's bucket holds at least 32 kbit and at least 1/50 s of traffic at the rate (a
/// bucket smaller than one timer tick's worth of traffic caps the rate below the setting).
pub fn shape_args(dev: &str, shape: Shape) -> Vec<String> {
    let mut v: Vec<String> = ["qdisc", "replace", "dev", dev, "root"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match shape {
        Shape::Delay { ms } => v.extend(["netem".into(), "delay".into(), format!("{ms}ms")]),
        Shape::Rate { kbit } => {
            let burst = (kbit / 50).max(32);
            v.extend([
                "tbf".into(),
                "rate".into(),
                format!("{kbit}kbit"),
                "burst".into(),
                format!("{burst}kbit"),
                "latency".into(),
                "400ms".into(),
            ]);
        }
    }
    v
}

/// Arguments (after `tc`) that remove the root qdisc of `dev` (undoing a delay).
pub fn qdisc_delete_args(dev: &str) -> Vec<String> {
    ["qdisc", "del", "dev", dev, "root"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Finds the interface that carries `ip` in the output of `ip -o addr show`.
///
/// Devices are looked up by address, not by name: a container re-attached to its network
/// gets `eth1` instead of `eth0`.
pub fn device_for_ip(ip_o_addr: &str, ip: IpAddr) -> Option<String> {
    ip_o_addr.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let family = fields.iter().position(|f| *f == "inet" || *f == "inet6")?;
        let addr = fields.get(family + 1)?.split('/').next()?;
        if addr.parse::<IpAddr>().ok()? != ip {
            return None;
        }
        let dev = fields.get(1)?.trim_end_matches(':');
        Some(dev.split('@').next().unwrap_or(dev).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(addrs: &[&str], loss: Option<u8>) -> NetRules {
        NetRules {
            drop_from: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            loss_percent: loss,
            exempt_tcp_port: None,
        }
    }

    #[test]
    fn the_agent_port_is_exempt_from_every_drop() {
        let mut r = rules(&["10.77.0.12"], Some(100));
        r.exempt_tcp_port = Some(7900);
        let nft = nft_script(&r);
        let accept = nft.find("tcp dport 7900 accept").expect("accept rule");
        assert!(accept < nft.find("ip saddr").unwrap(), "{nft}");
        let ipt = iptables_restore_script(&r);
        let accept = ipt
            .find("-A FAULTLINE -p tcp --dport 7900 -j ACCEPT")
            .expect("accept rule");
        assert!(accept < ipt.find("-s 10.77.0.12/32").unwrap(), "{ipt}");
        let delay = delay_restore_script_exempt("10.77.0.11".parse().unwrap(), 64000, Some(7900));
        assert!(
            delay.find("--sport 7900 -j RETURN").unwrap() < delay.find("NFQUEUE").unwrap(),
            "{delay}"
        );
        // The exemption alone is no rule: a heal still deletes the table.
        let heal = NetRules {
            exempt_tcp_port: Some(7900),
            ..NetRules::default()
        };
        assert!(heal.is_empty());
        assert_eq!(nft_script(&heal), nft_script(&NetRules::default()));
    }

    #[test]
    fn nft_script_golden() {
        let text = nft_script(&rules(&["10.77.0.13", "10.77.0.12"], Some(30)));
        assert_eq!(
            text,
            "add table inet faultline\n\
             delete table inet faultline\n\
             table inet faultline {\n\
            \x20 chain input {\n\
            \x20   type filter hook input priority -10; policy accept;\n\
            \x20   ip saddr { 10.77.0.12, 10.77.0.13 } drop\n\
            \x20   iifname != \"lo\" numgen random mod 100 < 30 drop\n\
            \x20 }\n\
             }\n"
        );
    }

    #[test]
    fn nft_script_heal_only_deletes_our_table() {
        let text = nft_script(&NetRules::default());
        assert_eq!(
            text,
            "add table inet faultline\ndelete table inet faultline\n"
        );
        assert!(!text.contains("flush"));
        assert_eq!(nft_script(&rules(&[], Some(0))), text);
    }

    #[test]
    fn nft_script_handles_ipv6_and_loss_only() {
        let text = nft_script(&rules(&["fd00::2"], None));
        assert!(text.contains("    ip6 saddr { fd00::2 } drop\n"), "{text}");
        assert!(!text.contains("ip saddr"), "{text}");
        let text = nft_script(&rules(&[], Some(100)));
        assert!(text.contains("    iifname != \"lo\" drop\n"), "{text}");
        assert!(!text.contains("numgen"), "{text}");
        assert!(!text.contains("saddr"), "{text}");
        let text = nft_script(&rules(&[], Some(99)));
        assert!(text.contains("numgen random mod 100 < 99 drop"), "{text}");
        let text = iptables_restore_script(&rules(&[], Some(100)));
        assert!(text.contains("-A FAULTLINE ! -i lo -j DROP\n"), "{text}");
    }

    #[test]
    fn iptables_script_golden() {
        let text = iptables_restore_script(&rules(&["10.77.0.12", "10.77.0.13"], Some(25)));
        assert_eq!(
            text,
            "*filter\n\
             :FAULTLINE - [0:0]\n\
             -A FAULTLINE -s 10.77.0.12/32 -j DROP\n\
             -A FAULTLINE -s 10.77.0.13/32 -j DROP\n\
             -A FAULTLINE ! -i lo -m statistic --mode random --probability 0.25000 -j DROP\n\
             COMMIT\n"
        );
        assert_eq!(
            iptables_restore_script(&NetRules::default()),
            "*filter\n:FAULTLINE - [0:0]\nCOMMIT\n"
        );
        assert_eq!(
            iptables_jump_args("-I").join(" "),
            "-w -I INPUT 1 -j FAULTLINE"
        );
        assert_eq!(
            iptables_jump_args("-C").join(" "),
            "-w -C INPUT -j FAULTLINE"
        );
    }

    #[test]
    fn delay_rules_golden() {
        assert_eq!(
            delay_restore_script("10.77.0.11".parse().unwrap(), 64001),
            "*filter\n\
             :FAULTLINE-DELAY - [0:0]\n\
             -A FAULTLINE-DELAY -s 10.77.0.11/32 ! -o lo -j NFQUEUE --queue-num 64001 --queue-bypass\n\
             COMMIT\n"
        );
        assert_eq!(
            chain_jump_args("-I", "OUTPUT", DELAY_CHAIN).join(" "),
            "-w -I OUTPUT 1 -j FAULTLINE-DELAY"
        );
        assert_eq!(
            chain_jump_args("-D", "OUTPUT", DELAY_CHAIN).join(" "),
            "-w -D OUTPUT -j FAULTLINE-DELAY"
        );
        assert_eq!(
            chain_jump_args("-C", "INPUT", IPTABLES_CHAIN),
            iptables_jump_args("-C")
        );
        assert_eq!(
            nfqueue_probe_args(64999, 9).join(" "),
            "-w -A OUTPUT -o lo -p udp --dport 9 -j NFQUEUE --queue-num 64999 --queue-bypass"
        );
        assert_eq!(delay_queue(0), Some(64000));
        assert_eq!(delay_queue(3), Some(64003));
        assert_eq!(delay_queue(1535), Some(65535));
        assert_eq!(delay_queue(1536), None);
        assert_eq!(delay_queue(usize::MAX), None);
    }

    #[test]
    fn faketime_offsets_golden() {
        let cases = [
            (30_000, "+30s"),
            (-1_500, "-1.5s"),
            (120_000, "+120s"),
            (125, "+0.125s"),
            (-10, "-0.01s"),
            (0, "+0s"),
            (-3_600_001, "-3600.001s"),
        ];
        for (ms, text) in cases {
            assert_eq!(faketime_offset(ms), text, "{ms} ms");
        }
        assert_eq!(faketime_offset(i64::MIN), "-9223372036854775.808s");
    }

    #[test]
    fn tc_args_golden() {
        assert_eq!(
            shape_args("eth0", Shape::Delay { ms: 50 }).join(" "),
            "qdisc replace dev eth0 root netem delay 50ms"
        );
        assert_eq!(
            shape_args("eth0", Shape::Rate { kbit: 400 }).join(" "),
            "qdisc replace dev eth0 root tbf rate 400kbit burst 32kbit latency 400ms"
        );
        assert_eq!(
            shape_args("eth0", Shape::Rate { kbit: 100_000 }).join(" "),
            "qdisc replace dev eth0 root tbf rate 100000kbit burst 2000kbit latency 400ms"
        );
        assert_eq!(
            qdisc_delete_args("eth1").join(" "),
            "qdisc del dev eth1 root"
        );
    }

    #[test]
    fn finds_the_device_by_address() {
        let out = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
                   2: eth1@if7    inet 10.77.0.12/24 scope global eth1\\       valid_lft forever\n\
                   2: eth1@if7    inet6 fe80::1/64 scope link \\       valid_lft forever\n";
        assert_eq!(
            device_for_ip(out, "10.77.0.12".parse().unwrap()).as_deref(),
            Some("eth1")
        );
        assert_eq!(
            device_for_ip(out, "127.0.0.1".parse().unwrap()).as_deref(),
            Some("lo")
        );
        assert_eq!(
            device_for_ip(out, "fe80::1".parse().unwrap()).as_deref(),
            Some("eth1")
        );
        assert_eq!(device_for_ip(out, "10.77.0.99".parse().unwrap()), None);
        assert_eq!(
            device_for_ip("garbage\n\n", "10.77.0.99".parse().unwrap()),
            None
        );
    }
}
