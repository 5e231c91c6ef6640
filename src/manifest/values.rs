//! This module deals with the small value languages inside manifests: ports, protocols,
//! CIDRs and IP addresses, Go durations.
//!
//! Each parser accepts exactly what the Calico API accepts and, on failure, returns
//! Calico's own message, so that [`super::validate`] reports and later stages (the
//! resolver) use one definition instead of re-parsing with their own rules.
//!
//! Guarantees: nothing here panics on any input; every parser is total.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::types::IntOrString;

// ---------------------------------------------------------------------------------
// Ports

/// One entry of a rule's `ports`/`notPorts` (Calico `numorstring.Port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortSpec {
    Single(u16),
    /// Inclusive, `min <= max`.
    Range(u16, u16),
    /// A named port, resolved per endpoint.
    Named(String),
}

/// The message Calico gives for a port number outside 1..65535.
pub const PORT_RANGE_MSG: &str = "port range invalid, port number must be between 1 and 65535";

impl PortSpec {
    /// Parses a port as Calico does (`numorstring.PortFromString` + `validatePort`): an
    /// integer, a string of digits, `"min:max"`, or a name matching
    /// `^[a-zA-Z0-9_.-]{1,128}$` that is also a valid Kubernetes port name.
    pub fn parse(v: &IntOrString) -> Result<PortSpec, String> {
        match v {
            IntOrString::Int(i) => match u16::try_from(*i) {
                Ok(p) if p >= 1 => Ok(PortSpec::Single(p)),
                _ => Err(PORT_RANGE_MSG.to_string()),
            },
            IntOrString::Str(s) => PortSpec::parse_str(s),
        }
    }

    /// Parses the string form of a port.
    pub fn parse_str(s: &str) -> Result<PortSpec, String> {
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if all_digits(s) {
            return match s.parse::<u16>() {
                Ok(0) => Err(PORT_RANGE_MSG.to_string()),
                Ok(p) => Ok(PortSpec::Single(p)),
                Err(_) => Err(format!("invalid port format ({s}); {PORT_RANGE_MSG}")),
            };
        }
        if let Some((lo, hi)) = s.split_once(':') {
            if all_digits(lo) && all_digits(hi) {
                let Ok(min) = lo.parse::<u16>() else {
                    return Err(format!("invalid minimum port number in range ({s})"));
                };
                let Ok(max) = hi.parse::<u16>() else {
                    return Err(format!("invalid maximum port number in range ({s})"));
                };
                if min > max {
                    return Err(format!(
                        "minimum port number ({min}) is greater than maximum port number ({max}) in port range"
                    ));
                }
                if min < 1 {
                    return Err(PORT_RANGE_MSG.to_string());
                }
                return Ok(if min == max {
                    PortSpec::Single(min)
                } else {
                    PortSpec::Range(min, max)
                });
            }
        }
        let name_ok = !s.is_empty()
            && s.chars().count() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !name_ok {
            return Err(format!("invalid name for named port ({s})"));
        }
        if let Some(why) = port_name_problems(s).into_iter().next() {
            return Err(format!("invalid name for named port ({s}): {why}"));
        }
        Ok(PortSpec::Named(s.to_string()))
    }

    pub fn is_named(&self) -> bool {
        matches!(self, PortSpec::Named(_))
    }

    /// The numeric bounds, `None` for a named port.
    pub fn range(&self) -> Option<(u16, u16)> {
        match self {
            PortSpec::Single(p) => Some((*p, *p)),
            PortSpec::Range(a, b) => Some((*a, *b)),
            PortSpec::Named(_) => None,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Single(p) => write!(f, "{p}"),
            PortSpec::Range(a, b) => write!(f, "{a}:{b}"),
            PortSpec::Named(n) => f.write_str(n),
        }
    }
}

/// Kubernetes `IsValidPortName` (an IANA service name): the problems, empty when valid.
pub fn port_name_problems(s: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if s.chars().count() > 15 {
        out.push("must be no more than 15 characters");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)");
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens");
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen");
    }
    out
}

// ---------------------------------------------------------------------------------
// Protocols

/// A rule's `protocol`/`notProtocol` (Calico `numorstring.Protocol`), as written: a
/// name keeps its variant and a number stays a number (`6` is `Number(6)`, not `Tcp`);
/// use [`Protocol::number`] to compare across forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    IcmpV6,
    Sctp,
    UdpLite,
    /// 1..=255.
    Number(u8),
}

/// Why a protocol did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// `0`, or a number above 255.
    NumberInvalid(i64),
    /// Not one of the names; `suggestion` is the right spelling when only the case
    /// was wrong (`tcp` → `TCP`).
    NameInvalid {
        name: String,
        suggestion: Option<&'static str>,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::NumberInvalid(0) => f.write_str("protocol number invalid"),
            ProtocolError::NumberInvalid(n) => write!(
                f,
                "protocol number invalid: {n} is not between 1 and 255"
            ),
            ProtocolError::NameInvalid {
                suggestion: Some(s),
                ..
            } => write!(
                f,
                "protocol name invalid (names are case-sensitive: write {s})"
            ),
            ProtocolError::NameInvalid { .. } => write!(
                f,
                "protocol name invalid (expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255)"
            ),
        }
    }
}

impl Protocol {
    pub const NAMES: [(&'static str, Protocol); 6] = [
        ("TCP", Protocol::Tcp),
        ("UDP", Protocol::Udp),
        ("ICMP", Protocol::Icmp),
        ("ICMPv6", Protocol::IcmpV6),
        ("SCTP", Protocol::Sctp),
        ("UDPLite", Protocol::UdpLite),
    ];

    /// Parses as Calico's validator accepts it: the names exactly (case-sensitive, see
    /// decision `protocol-names-case-sensitive`) or a number 1..255 (also as a string of digits).
    pub fn parse(v: &IntOrString) -> Result<Protocol, ProtocolError> {
        match v {
            IntOrString::Int(i) => Protocol::from_int(*i),
            IntOrString::Str(s) => {
                if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                    return Protocol::from_int(s.parse::<i64>().unwrap_or(i64::MAX));
                }
                if let Some((_, p)) = Protocol::NAMES.iter().find(|(n, _)| *n == s) {
                    return Ok(*p);
                }
                let suggestion = Protocol::NAMES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(s))
                    .map(|(n, _)| *n);
                Err(ProtocolError::NameInvalid {
                    name: s.clone(),
                    suggestion,
                })
            }
        }
    }

    fn from_int(i: i64) -> Result<Protocol, ProtocolError> {
        match u8::try_from(i) {
            Ok(n) if n >= 1 => Ok(Protocol::Number(n)),
            _ => Err(ProtocolError::NumberInvalid(i)),
        }
    }

    /// The IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::IcmpV6 => 58,
            Protocol::Sctp => 132,
            Protocol::UdpLite => 136,
            Protocol::Number(n) => n,
        }
    }

    /// The named variant for numbers that have one (`Number(6)` → `Tcp`).
    pub fn normalized(self) -> Protocol {
        match self.number() {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            1 => Protocol::Icmp,
            58 => Protocol::IcmpV6,
            132 => Protocol::Sctp,
            136 => Protocol::UdpLite,
            n => Protocol::Number(n),
        }
    }

    /// Calico `Protocol.SupportsPorts`: TCP, UDP, SCTP (6, 17, 132). Not UDPLite.
    pub fn supports_ports(self) -> bool {
        matches!(self.number(), 6 | 17 | 132)
    }

    pub fn is_icmp_v4(self) -> bool {
        self.number() == 1
    }

    pub fn is_icmp_v6(self) -> bool {
        self.number() == 58
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Number(n) => write!(f, "{n}"),
            p => {
                let name = Protocol::NAMES
                    .iter()
                    .find(|(_, q)| q == p)
                    .map(|(n, _)| *n)
                    .unwrap_or("?");
                f.write_str(name)
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Addresses

/// An IP address (`net.ParseIP`): dotted IPv4 or IPv6, no prefix, no zone.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok()
}

/// Calico's `ParseCIDROrIP`: a CIDR (host bits may be set) or a bare address, which
/// means `/32` or `/128`. Returns the network with host bits cleared.
pub fn parse_cidr_or_ip(s: &str) -> Option<IpNet> {
    match parse_net(s) {
        Ok(n) => Some(n.network()),
        Err(_) => None,
    }
}

/// The parts of a network written as a CIDR or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenNet {
    /// The address as written (host bits may be set).
    pub addr: IpAddr,
    pub prefix: u8,
    /// Whether a `/prefix` was written.
    pub has_prefix: bool,
}

impl WrittenNet {
    /// The network with host bits cleared.
    pub fn network(&self) -> IpNet {
        match self.addr {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, self.prefix).unwrap_or_default().trunc()),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, self.prefix).unwrap_or_default().trunc()),
        }
    }

    pub fn host_bits_set(&self) -> bool {
        self.network().addr() != self.addr
    }

    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

/// Parses a CIDR or a bare address, with a reason when it is neither.
pub fn parse_net(s: &str) -> Result<WrittenNet, String> {
    match s.split_once('/') {
        None => match parse_ip(s) {
            Some(addr) => Ok(WrittenNet {
                addr,
                prefix: if addr.is_ipv4() { 32 } else { 128 },
                has_prefix: false,
            }),
            None => Err(format!("{s:?} is not an IP address or CIDR")),
        },
        Some((ip, len)) => {
            let Some(addr) = parse_ip(ip) else {
                return Err(format!("{ip:?} is not an IP address"));
            };
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let fam = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
            let ok_digits =
                !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit());
            match len.parse::<u8>() {
                Ok(p) if ok_digits && p <= max => Ok(WrittenNet {
                    addr,
                    prefix: p,
                    has_prefix: true,
                }),
                _ => Err(format!(
                    "prefix length {len:?} is out of range for {fam} (0-{max})"
                )),
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Durations

/// Go's `time.ParseDuration`: `[-+]?(\d*\.?\d+(ns|us|µs|μs|ms|s|m|h))+` or `0`.
/// Negative durations return `None` (no field that takes a duration allows them).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e10 {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

/// Formats a duration the way Go prints it, for messages (`5m0s`, `24h0m0s`, `1.5s`).
pub fn format_go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 && nanos == 0 {
        return "0s".into();
    }
    let h = secs / 3600;
    let m = (secs % 3600) / 60;
    let s = secs % 60;
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{:09}", nanos).trim_end_matches('0').to_string()
    };
    if h > 0 {
        format!("{h}h{m}m{s}{frac}s")
    } else if m > 0 {
        format!("{m}m{s}{frac}s")
    } else {
        format!("{s}{frac}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn s(x: &str) -> IntOrString {
        IntOrString::Str(x.into())
    }

    #[rstest]
    #[case(IntOrString::Int(80), Ok(PortSpec::Single(80)))]
    #[case(s("80"), Ok(PortSpec::Single(80)))]
    #[case(s("1:2"), Ok(PortSpec::Range(1, 2)))]
    #[case(s("7:7"), Ok(PortSpec::Single(7)))]
    #[case(s("http"), Ok(PortSpec::Named("http".into())))]
    #[case(IntOrString::Int(0), Err(PORT_RANGE_MSG.to_string()))]
    #[case(IntOrString::Int(65536), Err(PORT_RANGE_MSG.to_string()))]
    #[case(IntOrString::Int(-1), Err(PORT_RANGE_MSG.to_string()))]
    #[case(s("0"), Err(PORT_RANGE_MSG.to_string()))]
    #[case(s("0:10"), Err(PORT_RANGE_MSG.to_string()))]
    #[case(s("65536"), Err(format!("invalid port format (65536); {PORT_RANGE_MSG}")))]
    #[case(s("9:1"), Err("minimum port number (9) is greater than maximum port number (1) in port range".to_string()))]
    #[case(s("1:70000"), Err("invalid maximum port number in range (1:70000)".to_string()))]
    #[case(s("a b"), Err("invalid name for named port (a b)".to_string()))]
    #[case(s(""), Err("invalid name for named port ()".to_string()))]
    #[case(s("80-90"), Err("invalid name for named port (80-90): must contain at least one letter (a-z)".to_string()))]
    #[case(s("HTTP"), Err("invalid name for named port (HTTP): must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string()))]
    #[case(s("1:2:3"), Err("invalid name for named port (1:2:3)".to_string()))]
    fn ports(#[case] input: IntOrString, #[case] want: Result<PortSpec, String>) {
        assert_eq!(PortSpec::parse(&input), want);
    }

    #[rstest]
    #[case(s("TCP"), "TCP")]
    #[case(s("UDPLite"), "UDPLite")]
    #[case(IntOrString::Int(6), "6")]
    #[case(s("132"), "132")]
    #[case(
        s("tcp"),
        "protocol name invalid (names are case-sensitive: write TCP)"
    )]
    #[case(
        s("icmpv6"),
        "protocol name invalid (names are case-sensitive: write ICMPv6)"
    )]
    #[case(
        s("GRE"),
        "protocol name invalid (expected TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number 1-255)"
    )]
    #[case(IntOrString::Int(0), "protocol number invalid")]
    #[case(s("0"), "protocol number invalid")]
    #[case(
        IntOrString::Int(256),
        "protocol number invalid: 256 is not between 1 and 255"
    )]
    fn protocols(#[case] input: IntOrString, #[case] want: &str) {
        let got = match Protocol::parse(&input) {
            Ok(p) => p.to_string(),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, want);
    }

    #[test]
    fn protocol_port_support() {
        for (p, want) in [
            (Protocol::Tcp, true),
            (Protocol::Udp, true),
            (Protocol::Sctp, true),
            (Protocol::UdpLite, false),
            (Protocol::Icmp, false),
            (Protocol::Number(6), true),
            (Protocol::Number(17), true),
            (Protocol::Number(132), true),
            (Protocol::Number(47), false),
        ] {
            assert_eq!(p.supports_ports(), want, "{p}");
        }
        assert_eq!(Protocol::Number(58).normalized(), Protocol::IcmpV6);
    }

    #[rstest]
    #[case("10.0.0.0/8", Some("10.0.0.0/8"))]
    #[case("10.1.2.3/8", Some("10.0.0.0/8"))]
    #[case("192.0.2.7", Some("192.0.2.7/32"))]
    #[case("2001:db8::1", Some("2001:db8::1/128"))]
    #[case("2001:db8::/32", Some("2001:db8::/32"))]
    #[case("10.0.0.0/33", None)]
    #[case("10.0.0.0/", None)]
    #[case("10.0.0.0/-1", None)]
    #[case("10.0.0/8", None)]
    #[case("example.com", None)]
    #[case("", None)]
    fn cidr_or_ip(#[case] input: &str, #[case] want: Option<&str>) {
        assert_eq!(
            parse_cidr_or_ip(input).map(|n| n.to_string()),
            want.map(str::to_string)
        );
    }

    #[rstest]
    #[case("24h", Some(86400.0))]
    #[case("5m", Some(300.0))]
    #[case("1h30m", Some(5400.0))]
    #[case("1.5s", Some(1.5))]
    #[case("300ms", Some(0.3))]
    #[case("0", Some(0.0))]
    #[case("", None)]
    #[case("1d", None)]
    #[case("24", None)]
    #[case("-5m", None)]
    #[case("1 h", None)]
    #[case("h", None)]
    fn go_durations(#[case] input: &str, #[case] want: Option<f64>) {
        let got = parse_go_duration(input).map(|d| d.as_secs_f64());
        match (got, want) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{input}: {g} != {w}"),
            (g, w) => assert_eq!(g, w, "{input}"),
        }
    }

    #[test]
    fn go_duration_format() {
        assert_eq!(format_go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(format_go_duration(Duration::from_secs(86400)), "24h0m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
