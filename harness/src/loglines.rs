//! This module deals with Calico's `Log` rule action: turning a packet logged through
//! NFLOG into the line the kernel's LOG target (`nf_log_syslog`) would write, e.g.
//!
//! ```text
//! calico-packet: IN=eth0 OUT=cali1234 MAC=52:54:...:08:00 SRC=10.244.1.10 DST=10.244.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=61 ID=4242 DF PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0
//! ```
//!
//! Why NFLOG and not the LOG target itself: the kernel writes LOG lines only from the
//! machine's own namespace unless the host-wide sysctl `nf_log_all_netns` is set, which
//! policylab never changes (`nf_log_syslog.c`: `if (!net_eq(net, &init_net) &&
//! !sysctl_nf_log_all_netns) return;`). So the compiled rule is `log prefix "…"
//! group N`, and this module renders the event the way `nf_log_syslog.c` renders a
//! packet with the LOG target's default flags (no `--log-tcp-sequence`,
//! `--log-tcp-options`, `--log-ip-options`, `--log-uid`, no MAC decoding), which is what
//! Calico's iptables `LOG` rules and nft `log` statements use.
//!
//! The format, field by field, as the kernel writes it: `<prefix>IN=<in> OUT=<out> `,
//! then `MAC=<link header as hex bytes joined by ':'> ` when the packet has an input
//! interface, then the IPv4 (`SRC DST LEN TOS PREC TTL ID [CE] [DF] [MF] [FRAG:n]`) or
//! IPv6 (`SRC DST LEN TC HOPLIMIT FLOWLBL`, addresses uncompressed as `%pI6` prints
//! them) header, the transport header (TCP `SPT DPT WINDOW RES flags URGP`, UDP `SPT DPT
//! LEN`, ICMP `TYPE CODE` and echo `ID SEQ` or the quoted packet in `[...]`, ICMPv6
//! likewise, AH/ESP `SPI`, else `PROTO=<n>`) and `MARK=0x<mark> ` when the mark is not
//! 0. Every field ends with a space, so the line does too, exactly like the kernel's.
//! Interface names are those of the namespace whose rule logged (see
//! [`InterfaceNames::of`]). `INCOMPLETE [n bytes]` counts the bytes NFLOG copied
//! ([`crate::nflog::COPY_RANGE`]), which for headers is the packet's own length.
//!
//! The **normalized** form ([`normalize`]) is for deterministic reports: the values that
//! change from run to run are replaced by `*` (the key stays): `MAC` (veth MACs are
//! random), `ID` (IPv4 identification; in ICMP the echo identifier, which is the ping
//! socket's port), `SPT` (the ephemeral source port), `WINDOW` (depends on socket
//! buffers) and `FLOWLBL` (random per socket). `TTL`/`HOPLIMIT` stay: they are fixed by
//! the topology (they show the hops) and are the same on every run. The trailing space
//! is removed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::netns::{NetNs, NetnsError};
use crate::nflog::NflogEvent;

/// The prefix of Calico's Log rules.
pub const CALICO_LOG_PREFIX: &str = "calico-packet: ";

/// The keys whose values [`normalize`] replaces with `*`.
pub const NORMALIZED_KEYS: &[&str] = &["MAC", "ID", "SPT", "WINDOW", "FLOWLBL"];

/// Interface index -> name, in one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceNames {
    names: BTreeMap<u32, String>,
}

impl InterfaceNames {
    /// The interfaces of `ns` (read with `if_nameindex` on a thread inside it).
    pub fn of(ns: &NetNs) -> Result<InterfaceNames, NetnsError> {
        let names = ns.run(list_interfaces)?;
        Ok(InterfaceNames { names })
    }

    /// A fixed table (for tests and replays).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, String)>) -> InterfaceNames {
        InterfaceNames {
            names: pairs.into_iter().collect(),
        }
    }

    /// The name of `index`, or `if<index>` for an interface gone since.
    pub fn name(&self, index: u32) -> String {
        self.names
            .get(&index)
            .cloned()
            .unwrap_or_else(|| format!("if{index}"))
    }
}

/// Lists the calling thread's namespace's interfaces.
fn list_interfaces() -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    // SAFETY: if_nameindex returns a heap array terminated by an entry with index 0 and
    // a null name, or null on failure; it is freed once with if_freenameindex.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return out;
        }
        let mut p = list;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            let name = std::ffi::CStr::from_ptr((*p).if_name)
                .to_string_lossy()
                .into_owned();
            out.insert((*p).if_index, name);
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    out
}

/// What a LOG line is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedPacket<'a> {
    pub prefix: &'a str,
    /// The input interface's name, when the packet had one.
    pub indev: Option<String>,
    pub outdev: Option<String>,
    /// The link-layer header (printed as `MAC=` when there is an input interface).
    pub hw_header: Option<&'a [u8]>,
    /// The packet from its network header on.
    pub payload: &'a [u8],
    pub mark: Option<u32>,
}

impl<'a> LoggedPacket<'a> {
    /// The packet of an NFLOG event, with interface names from `names`.
    pub fn from_event(ev: &'a NflogEvent, names: &InterfaceNames) -> LoggedPacket<'a> {
        LoggedPacket {
            prefix: &ev.prefix,
            indev: ev.indev.map(|i| names.name(i)),
            outdev: ev.outdev.map(|i| names.name(i)),
            hw_header: ev.hw_header.as_deref(),
            payload: &ev.payload,
            mark: ev.mark,
        }
    }
}

/// The line the kernel's LOG target writes for `p` (with its trailing space).
pub fn format_line(p: &LoggedPacket<'_>) -> String {
    let mut m = String::with_capacity(256);
    let _ = write!(
        m,
        "{}IN={} OUT={} ",
        p.prefix,
        p.indev.as_deref().unwrap_or(""),
        p.outdev.as_deref().unwrap_or("")
    );
    if p.indev.is_some() {
        m.push_str("MAC=");
        if let Some(h) = p.hw_header.filter(|h| !h.is_empty()) {
            let hex: Vec<String> = h.iter().map(|b| format!("{b:02x}")).collect();
            m.push_str(&hex.join(":"));
        }
        m.push(' ');
    }
    let version = p.payload.first().map(|b| b >> 4);
    match version {
        Some(6) => ipv6(&mut m, p.payload, 0, true),
        // The LOG target dispatches on the hook's family; a payload that is no IPv6 is
        // printed as IPv4 (a too-short one as TRUNCATED).
        _ => ipv4(&mut m, p.payload, 0),
    }
    if let Some(mark) = p.mark.filter(|m| *m != 0) {
        let _ = write!(m, "MARK=0x{mark:x} ");
    }
    m
}

/// The line for an NFLOG event.
pub fn line_of_event(ev: &NflogEvent, names: &InterfaceNames) -> String {
    format_line(&LoggedPacket::from_event(ev, names))
}

/// The deterministic form of a line (see the module docs): run-specific values become
/// `*`, the trailing space goes. `prefix` is left as is.
pub fn normalize(line: &str, prefix: &str) -> String {
    let (head, rest) = match line.strip_prefix(prefix) {
        Some(rest) => (prefix, rest),
        None => ("", line),
    };
    let tokens: Vec<String> = rest
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let bare = t.trim_start_matches('[');
            let brackets = &t[..t.len() - bare.len()];
            match bare.split_once('=') {
                Some((k, _)) if NORMALIZED_KEYS.contains(&k) => format!("{brackets}{k}=*"),
                _ => t.to_string(),
            }
        })
        .collect();
    format!("{head}{}", tokens.join(" "))
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

fn be32(p: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *p.get(at)?,
        *p.get(at + 1)?,
        *p.get(at + 2)?,
        *p.get(at + 3)?,
    ]))
}

fn incomplete(m: &mut String, have: usize) {
    let _ = write!(m, "INCOMPLETE [{have} bytes] ");
}

/// `dump_ipv4_packet` with default flags. `off` is where the IPv4 header starts (0, or
/// inside an ICMP error for the quoted packet).
fn ipv4(m: &mut String, p: &[u8], off: usize) {
    let Some(h) = p.get(off..off + 20) else {
        m.push_str("TRUNCATED");
        return;
    };
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    let _ = write!(m, "SRC={src} DST={dst} ");
    let tot_len = u16::from_be_bytes([h[2], h[3]]);
    let tos = h[1];
    let _ = write!(
        m,
        "LEN={tot_len} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        tos & 0x1e,
        tos & 0xe0,
        h[8],
        u16::from_be_bytes([h[4], h[5]])
    );
    let frag = u16::from_be_bytes([h[6], h[7]]);
    if frag & 0x8000 != 0 {
        m.push_str("CE ");
    }
    if frag & 0x4000 != 0 {
        m.push_str("DF ");
    }
    if frag & 0x2000 != 0 {
        m.push_str("MF ");
    }
    let frag_off = frag & 0x1fff;
    if frag_off != 0 {
        let _ = write!(m, "FRAG:{frag_off} ");
    }
    let l4 = off + usize::from(h[0] & 0x0f) * 4;
    let fragment = frag_off != 0;
    match h[9] {
        6 => tcp(m, p, l4, fragment),
        17 | 136 => udp(m, p, l4, h[9], fragment),
        1 => {
            m.push_str("PROTO=ICMP ");
            if fragment {
                return;
            }
            icmp(m, p, l4, off == 0);
        }
        51 => {
            if fragment {
                return;
            }
            m.push_str("PROTO=AH ");
            match be32(p, l4 + 4) {
                Some(spi) => {
                    let _ = write!(m, "SPI=0x{spi:x} ");
                }
                None => incomplete(m, p.len().saturating_sub(l4)),
            }
        }
        50 => {
            m.push_str("PROTO=ESP ");
            if fragment {
                return;
            }
            match be32(p, l4) {
                Some(spi) => {
                    let _ = write!(m, "SPI=0x{spi:x} ");
                }
                None => incomplete(m, p.len().saturating_sub(l4)),
            }
        }
        other => {
            let _ = write!(m, "PROTO={other} ");
        }
    }
}

/// The ICMP part of an IPv4 line; `outer` is false inside a quoted packet (the kernel
/// quotes only once).
fn icmp(m: &mut String, p: &[u8], l4: usize, outer: bool) {
    let have = p.len().saturating_sub(l4);
    let (Some(&ty), Some(&code)) = (p.get(l4), p.get(l4 + 1)) else {
        incomplete(m, have);
        return;
    };
    if p.len() < l4 + 8 {
        incomplete(m, have);
        return;
    }
    let _ = write!(m, "TYPE={ty} CODE={code} ");
    let required = match ty {
        0 | 8 => 4,
        3 | 4 | 5 | 11 | 12 => 8 + 20,
        13 | 14 => 20,
        17 | 18 => 12,
        _ => 0,
    };
    if required != 0 && have < required {
        incomplete(m, have);
        return;
    }
    match ty {
        0 | 8 => {
            let _ = write!(
                m,
                "ID={} SEQ={} ",
                be16(p, l4 + 4).unwrap_or(0),
                be16(p, l4 + 6).unwrap_or(0)
            );
        }
        12 => {
            let _ = write!(m, "PARAMETER={} ", p[l4 + 4]);
        }
        3 | 4 | 5 | 11 => {
            if ty == 5 {
                let gw = Ipv4Addr::new(p[l4 + 4], p[l4 + 5], p[l4 + 6], p[l4 + 7]);
                let _ = write!(m, "GATEWAY={gw} ");
            }
            if outer {
                m.push('[');
                ipv4(m, p, l4 + 8);
                m.push_str("] ");
            }
            if ty == 3 && code == 4 {
                let _ = write!(m, "MTU={} ", be16(p, l4 + 6).unwrap_or(0));
            }
        }
        _ => {}
    }
}

fn tcp(m: &mut String, p: &[u8], l4: usize, fragment: bool) {
    m.push_str("PROTO=TCP ");
    if fragment {
        return;
    }
    let Some(t) = p.get(l4..l4 + 20) else {
        incomplete(m, p.len().saturating_sub(l4));
        return;
    };
    let _ = write!(
        m,
        "SPT={} DPT={} ",
        u16::from_be_bytes([t[0], t[1]]),
        u16::from_be_bytes([t[2], t[3]])
    );
    let _ = write!(m, "WINDOW={} ", u16::from_be_bytes([t[14], t[15]]));
    // The reserved bits of the flag word (after AE), as the kernel prints them.
    let flag_word = u32::from_be_bytes([t[12], t[13], t[14], t[15]]);
    let _ = write!(m, "RES=0x{:02x} ", ((flag_word & 0x0e00_0000) >> 22) as u8);
    let flags = t[13];
    if t[12] & 0x01 != 0 {
        m.push_str("AE ");
    }
    for (bit, name) in [
        (0x80, "CWR"),
        (0x40, "ECE"),
        (0x20, "URG"),
        (0x10, "ACK"),
        (0x08, "PSH"),
        (0x04, "RST"),
        (0x02, "SYN"),
        (0x01, "FIN"),
    ] {
        if flags & bit != 0 {
            m.push_str(name);
            m.push(' ');
        }
    }
    let _ = write!(m, "URGP={} ", u16::from_be_bytes([t[18], t[19]]));
}

fn udp(m: &mut String, p: &[u8], l4: usize, proto: u8, fragment: bool) {
    m.push_str(if proto == 17 {
        "PROTO=UDP "
    } else {
        "PROTO=UDPLITE "
    });
    if fragment {
        return;
    }
    let Some(u) = p.get(l4..l4 + 8) else {
        incomplete(m, p.len().saturating_sub(l4));
        return;
    };
    let _ = write!(
        m,
        "SPT={} DPT={} LEN={} ",
        u16::from_be_bytes([u[0], u[1]]),
        u16::from_be_bytes([u[2], u[3]]),
        u16::from_be_bytes([u[4], u[5]])
    );
}

/// An IPv6 address as the kernel's `%pI6` prints it: 8 groups of 4 hex digits.
fn pi6(a: &[u8]) -> String {
    let groups: Vec<String> = a
        .chunks(2)
        .map(|g| format!("{:02x}{:02x}", g[0], g[1]))
        .collect();
    groups.join(":")
}

/// `dump_ipv6_packet` with default flags; `outer` is false inside a quoted packet.
fn ipv6(m: &mut String, p: &[u8], off: usize, outer: bool) {
    let Some(h) = p.get(off..off + 40) else {
        m.push_str("TRUNCATED");
        return;
    };
    let _ = write!(m, "SRC={} DST={} ", pi6(&h[8..24]), pi6(&h[24..40]));
    let first = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let _ = write!(
        m,
        "LEN={} TC={} HOPLIMIT={} FLOWLBL={} ",
        usize::from(u16::from_be_bytes([h[4], h[5]])) + 40,
        (first & 0x0ff0_0000) >> 20,
        h[7],
        first & 0x000f_ffff
    );
    let mut fragment = false;
    let mut ptr = off + 40;
    let mut current = h[6];
    // The extension headers the kernel walks (`nf_ip6_ext_hdr`; 59, "no next
    // header", ends the walk).
    while matches!(current, 0 | 43 | 44 | 50 | 51 | 60) {
        let (Some(&next), Some(&len)) = (p.get(ptr), p.get(ptr + 1)) else {
            m.push_str("TRUNCATED");
            return;
        };
        let hdrlen = match current {
            44 => {
                m.push_str("FRAG:");
                let (Some(fo), Some(id)) = (be16(p, ptr + 2), be32(p, ptr + 4)) else {
                    m.push_str("TRUNCATED ");
                    return;
                };
                let _ = write!(m, "{} ", fo & 0xfff8);
                if fo & 0x0001 != 0 {
                    m.push_str("INCOMPLETE ");
                }
                let _ = write!(m, "ID:{id:08x} ");
                if fo & 0xfff8 != 0 {
                    fragment = true;
                }
                8
            }
            0 | 43 | 60 => {
                if fragment {
                    return;
                }
                (usize::from(len) + 1) * 8
            }
            51 => (usize::from(len) + 2) * 4,
            // ESP (50): nothing more can be read.
            _ => return,
        };
        current = next;
        ptr += hdrlen;
    }
    match current {
        6 => tcp(m, p, ptr, fragment),
        17 | 136 => udp(m, p, ptr, current, fragment),
        58 => {
            m.push_str("PROTO=ICMPv6 ");
            if fragment {
                return;
            }
            let have = p.len().saturating_sub(ptr);
            if have < 8 {
                incomplete(m, have);
                return;
            }
            let (ty, code) = (p[ptr], p[ptr + 1]);
            let _ = write!(m, "TYPE={ty} CODE={code} ");
            match ty {
                128 | 129 => {
                    let _ = write!(
                        m,
                        "ID={} SEQ={} ",
                        be16(p, ptr + 4).unwrap_or(0),
                        be16(p, ptr + 6).unwrap_or(0)
                    );
                }
                130..=132 => {}
                1..=4 => {
                    if ty == 4 {
                        let _ = write!(m, "POINTER={:08x} ", be32(p, ptr + 4).unwrap_or(0));
                    }
                    if outer {
                        m.push('[');
                        ipv6(m, p, ptr + 8, false);
                        m.push_str("] ");
                    }
                    if ty == 2 {
                        let _ = write!(m, "MTU={} ", be32(p, ptr + 4).unwrap_or(0));
                    }
                }
                _ => {}
            }
        }
        other => {
            let _ = write!(m, "PROTO={other} ");
        }
    }
}

/// The printed form of an IPv6 address in a line, for building expectations.
pub fn ipv6_as_logged(a: Ipv6Addr) -> String {
    pi6(&a.octets())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP SYN from 10.244.1.10:40000 to 10.244.2.10:80 as Linux sends it (IPv4 with
    /// DF, TTL 61 after two forwards, the usual SYN options), captured bytes.
    const SYN_V4: &[u8] = &[
        0x45, 0x00, 0x00, 0x3c, 0x1a, 0x2b, 0x40, 0x00, 0x3d, 0x06, 0x00, 0x00, // ..proto
        10, 244, 1, 10, 10, 244, 2, 10, // addresses
        0x9c, 0x40, 0x00, 0x50, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00,
        0x00, // ports seq ack
        0xa0, 0x02, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00, // doff/flags window csum urg
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07, // options
    ];

    const MAC: &[u8] = &[
        0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
    ];

    fn packet<'a>(
        payload: &'a [u8],
        indev: Option<&str>,
        outdev: Option<&str>,
    ) -> LoggedPacket<'a> {
        LoggedPacket {
            prefix: CALICO_LOG_PREFIX,
            indev: indev.map(str::to_string),
            outdev: outdev.map(str::to_string),
            hw_header: Some(MAC),
            payload,
            mark: None,
        }
    }

    #[test]
    fn formats_a_forwarded_tcp_syn() {
        let line = format_line(&packet(SYN_V4, Some("eth0"), Some("cali1234")));
        assert_eq!(
            line,
            "calico-packet: IN=eth0 OUT=cali1234 MAC=ee:ee:ee:ee:ee:ee:02:00:00:00:00:01:08:00 \
             SRC=10.244.1.10 DST=10.244.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=61 ID=6699 DF \
             PROTO=TCP SPT=40000 DPT=80 WINDOW=64240 RES=0x00 SYN URGP=0 "
        );
        assert_eq!(
            normalize(&line, CALICO_LOG_PREFIX),
            "calico-packet: IN=eth0 OUT=cali1234 MAC=* SRC=10.244.1.10 DST=10.244.2.10 LEN=60 \
             TOS=0x00 PREC=0x00 TTL=61 ID=* DF PROTO=TCP SPT=* DPT=80 WINDOW=* RES=0x00 SYN URGP=0"
        );
    }

    #[test]
    fn output_hook_has_no_mac_and_marks_are_printed() {
        let mut p = packet(SYN_V4, None, Some("eth0"));
        p.mark = Some(0x10000);
        let line = format_line(&p);
        assert!(
            line.starts_with("calico-packet: IN= OUT=eth0 SRC=10.244.1.10 "),
            "{line}"
        );
        assert!(line.ends_with("SYN URGP=0 MARK=0x10000 "), "{line}");
    }

    #[test]
    fn formats_tos_flags_and_fragments() {
        let mut p = SYN_V4.to_vec();
        p[1] = 0xb8; // DSCP EF: precedence 0xa0, TOS bits 0x18
        p[6] = 0x20; // MF, offset 0
        p[33] = 0x12; // SYN+ACK
        p[32] = 0xa1; // AE
        let line = format_line(&packet(&p, Some("eth0"), None));
        assert!(line.contains(" TOS=0x18 PREC=0xA0 "), "{line}");
        assert!(line.contains(" MF PROTO=TCP "), "{line}");
        assert!(line.contains("RES=0x00 AE ACK SYN URGP=0 "), "{line}");
        let mut frag = SYN_V4.to_vec();
        frag[6] = 0x00;
        frag[7] = 0x10;
        let line = format_line(&packet(&frag, Some("eth0"), None));
        assert!(line.ends_with("ID=6699 FRAG:16 PROTO=TCP "), "{line}");
    }

    #[test]
    fn formats_udp_and_icmp() {
        let mut u = SYN_V4[..28].to_vec();
        u[2..4].copy_from_slice(&28u16.to_be_bytes());
        u[9] = 17;
        u[20..28].copy_from_slice(&[0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        let line = format_line(&packet(&u, Some("eth0"), Some("eth1")));
        assert!(
            line.ends_with("PROTO=UDP SPT=40000 DPT=53 LEN=8 "),
            "{line}"
        );

        let mut echo = SYN_V4[..28].to_vec();
        echo[9] = 1;
        echo[20..28].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01]);
        let line = format_line(&packet(&echo, Some("eth0"), None));
        assert!(
            line.ends_with("PROTO=ICMP TYPE=8 CODE=0 ID=4660 SEQ=1 "),
            "{line}"
        );
        assert!(normalize(&line, CALICO_LOG_PREFIX).ends_with("TYPE=8 CODE=0 ID=* SEQ=1"));

        // Port unreachable quoting the UDP packet.
        let mut unreach = SYN_V4[..28].to_vec();
        unreach[9] = 1;
        unreach[20..28].copy_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        unreach.extend_from_slice(&u);
        let line = format_line(&packet(&unreach, None, Some("eth0")));
        assert!(
            line.contains("PROTO=ICMP TYPE=3 CODE=3 [SRC=10.244.1.10 DST=10.244.2.10 LEN=28 "),
            "{line}"
        );
        assert!(
            line.ends_with("PROTO=UDP SPT=40000 DPT=53 LEN=8 ] "),
            "{line}"
        );
        assert!(normalize(&line, CALICO_LOG_PREFIX).contains("[SRC=10.244.1.10"));
    }

    #[test]
    fn formats_ipv6_uncompressed() {
        let mut p = vec![0u8; 40 + 20];
        p[0] = 0x60;
        p[1] = 0x0a; // flow label 0xa1234
        p[2] = 0x12;
        p[3] = 0x34;
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
        p[6] = 6;
        p[7] = 63;
        p[8..24].copy_from_slice(
            &"fd00:10:244:1::10"
                .parse::<Ipv6Addr>()
                .expect("v6")
                .octets(),
        );
        p[24..40].copy_from_slice(
            &"fd00:10:244:2::10"
                .parse::<Ipv6Addr>()
                .expect("v6")
                .octets(),
        );
        p[40..44].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        p[52] = 0x50;
        p[53] = 0x02;
        p[54..56].copy_from_slice(&64800u16.to_be_bytes());
        let line = format_line(&packet(&p, Some("eth0"), Some("cali1")));
        assert!(
            line.contains(
                "SRC=fd00:0010:0244:0001:0000:0000:0000:0010 DST=fd00:0010:0244:0002:0000:0000:0000:0010 \
                 LEN=60 TC=0 HOPLIMIT=63 FLOWLBL=660020 PROTO=TCP SPT=40000 DPT=80 WINDOW=64800 RES=0x00 SYN URGP=0 "
            ),
            "{line}"
        );
        assert_eq!(
            ipv6_as_logged("fd00:10:244:1::10".parse().expect("v6")),
            "fd00:0010:0244:0001:0000:0000:0000:0010"
        );
        assert!(normalize(&line, CALICO_LOG_PREFIX).contains(" FLOWLBL=* "));
    }

    #[test]
    fn short_packets_are_reported_as_the_kernel_does() {
        let line = format_line(&packet(&SYN_V4[..10], Some("eth0"), None));
        assert!(
            line.ends_with("MAC=ee:ee:ee:ee:ee:ee:02:00:00:00:00:01:08:00 TRUNCATED"),
            "{line}"
        );
        let line = format_line(&packet(&SYN_V4[..30], Some("eth0"), None));
        assert!(line.ends_with("PROTO=TCP INCOMPLETE [10 bytes] "), "{line}");
    }

    #[test]
    fn unknown_interfaces_are_named_by_index() {
        let names = InterfaceNames::from_pairs([(1, "lo".to_string())]);
        assert_eq!(names.name(1), "lo");
        assert_eq!(names.name(7), "if7");
    }
}
