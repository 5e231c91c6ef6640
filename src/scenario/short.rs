//! Small exhaustive parsers for strings of the scenario language: the probe short
//! form `FROM -> TO[:PORT][/PROTO]`, its target part, Go-style durations, and the
//! matrix truth table. They work on text only; names are resolved later against the
//! inventory of the step.

use std::net::IpAddr;
use std::time::Duration;

use super::ProbeProtocol;

/// A target as written, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRef {
    /// `name` or `ns/name`.
    Name(String),
    /// `svc/ns/name` or `svc/name` (namespace `default`).
    Service {
        namespace: String,
        name: String,
    },
    Ip(IpAddr),
}

/// `TO[:PORT][/PROTO]` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestRef {
    pub target: TargetRef,
    pub port: Option<u16>,
    pub protocol: Option<ProbeProtocol>,
}

/// `FROM -> TO[:PORT][/PROTO]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortProbe {
    pub from: String,
    pub dest: DestRef,
}

pub fn parse_protocol(s: &str) -> Option<ProbeProtocol> {
    Some(match s.to_ascii_lowercase().as_str() {
        "tcp" => ProbeProtocol::Tcp,
        "udp" => ProbeProtocol::Udp,
        "sctp" => ProbeProtocol::Sctp,
        "http" => ProbeProtocol::Http,
        "icmp" => ProbeProtocol::Icmp,
        _ => return None,
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Parses `FROM -> TO[:PORT][/PROTO]`.
pub fn parse_short_probe(text: &str) -> Result<ShortProbe, String> {
    let Some((from, to)) = text.split_once("->") else {
        return Err(format!(
            "expected `FROM -> TO[:PORT][/PROTO]` (for example `default/red -> web:80/http`), found {text:?}"
        ));
    };
    let from = from.trim();
    if from.is_empty() {
        return Err("missing the source before `->`".into());
    }
    parse_endpoint_name(from)?;
    let dest = parse_dest(to.trim())?;
    Ok(ShortProbe {
        from: from.to_string(),
        dest,
    })
}

/// Checks a source name: `name` or `ns/name`.
pub fn parse_endpoint_name(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() > 2 || !parts.iter().all(|p| valid_name(p)) {
        return Err(format!(
            "`{s}` is not a source: expected a pod (`ns/name` or `name`), an outside host or a node"
        ));
    }
    Ok(())
}

/// Parses `TO[:PORT][/PROTO]`. A trailing `/tcp`, `/udp`, `/sctp`, `/http` or
/// `/icmp` is always the protocol. IPv6 addresses with a port are written in
/// brackets (`[fd00::1]:80`); a bare IPv6 address has no port.
pub fn parse_dest(s: &str) -> Result<DestRef, String> {
    if s.is_empty() {
        return Err("missing the target after `->`".into());
    }
    let mut rest = s;
    let mut protocol = None;
    if let Some((head, tail)) = rest.rsplit_once('/') {
        if let Some(p) = parse_protocol(tail) {
            protocol = Some(p);
            rest = head;
        }
    }
    // Bracketed IPv6.
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(format!("`{s}`: missing `]` after the IPv6 address"));
        };
        let ip: std::net::Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            p => {
                Some(parse_port(p.strip_prefix(':').ok_or_else(|| {
                    format!("`{s}`: expected `:PORT` after `]`")
                })?)?)
            }
        };
        return Ok(DestRef {
            target: TargetRef::Ip(IpAddr::V6(ip)),
            port,
            protocol,
        });
    }
    if rest.matches(':').count() > 1 {
        let ip: std::net::Ipv6Addr = rest.parse().map_err(|_| {
            format!("`{rest}` is not an IPv6 address (write `[ADDR]:PORT` for a port)")
        })?;
        return Ok(DestRef {
            target: TargetRef::Ip(IpAddr::V6(ip)),
            port: None,
            protocol,
        });
    }
    let (target, port) = match rest.split_once(':') {
        Some((t, p)) => (t, Some(parse_port(p)?)),
        None => (rest, None),
    };
    let target = if let Ok(ip) = target.parse::<std::net::Ipv4Addr>() {
        TargetRef::Ip(IpAddr::V4(ip))
    } else if let Some(svc) = target.strip_prefix("svc/") {
        let parts: Vec<&str> = svc.split('/').collect();
        match parts.as_slice() {
            [name] if valid_name(name) => TargetRef::Service {
                namespace: "default".into(),
                name: name.to_string(),
            },
            [ns, name] if valid_name(ns) && valid_name(name) => TargetRef::Service {
                namespace: ns.to_string(),
                name: name.to_string(),
            },
            _ => return Err(format!("`{target}`: expected a service as `svc/ns/name`")),
        }
    } else {
        parse_endpoint_name(target).map_err(|_| {
            format!(
                "`{target}` is not a target: expected a pod (`ns/name` or `name`), an outside host, a node, an IP or `svc/ns/name`"
            )
        })?;
        TargetRef::Name(target.to_string())
    };
    Ok(DestRef {
        target,
        port,
        protocol,
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("`{p}` is not a port (1-65535)")),
    }
}

/// Parses a Go duration (`1s`, `500ms`, `1h30m`, `1.5s`, `0`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("`{s}` is not a duration: expected a number and a unit (ns, us, ms, s, m, h), for example `1s`, `500ms`, `24h`, `1h30m`")
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += num * nanos;
    }
    if !total.is_finite() || total > 1e18 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// One cell of a matrix truth table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Allow,
    Deny,
    Refused,
}

/// A problem in a truth table: 1-based row and column (in cells) and the text
/// position (0-based line in the table text, 0-based char column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parses a truth table of `rows` × `cols` cells (`.` allow, `X` deny, `R` refused),
/// cells separated by whitespace. Blank lines are ignored.
pub fn parse_table(
    text: &str,
    rows: usize,
    cols: usize,
) -> Result<Vec<Vec<Cell>>, Vec<TableError>> {
    let mut errs = Vec::new();
    let mut table = Vec::new();
    let mut last_line = 0;
    for (ln, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        last_line = ln;
        let row_no = table.len() + 1;
        let mut row = Vec::new();
        let mut col_char = 0usize;
        let mut cells = 0usize;
        let mut chars = line.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            if c.is_whitespace() {
                continue;
            }
            let mut tok = String::from(c);
            while let Some(&(_, n)) = chars.peek() {
                if n.is_whitespace() {
                    break;
                }
                tok.push(n);
                chars.next();
            }
            cells += 1;
            col_char = i;
            match tok.as_str() {
                "." => row.push(Cell::Allow),
                "X" | "x" => row.push(Cell::Deny),
                "R" | "r" => row.push(Cell::Refused),
                _ => errs.push(TableError {
                    line: ln,
                    col: i,
                    message: format!(
                        "row {row_no}, column {cells}: `{tok}` is not a verdict (expected `.` allow, `X` deny or `R` refused)"
                    ),
                }),
            }
        }
        if cells != cols {
            errs.push(TableError {
                line: ln,
                col: col_char,
                message: format!(
                    "row {row_no} has {cells} cells, expected {cols} (one per `to` target)"
                ),
            });
        }
        table.push(row);
    }
    if table.len() != rows {
        errs.push(TableError {
            line: last_line,
            col: 0,
            message: format!(
                "the table has {} rows, expected {rows} (one per `from` source)",
                table.len()
            ),
        });
    }
    if errs.is_empty() {
        Ok(table)
    } else {
        Err(errs)
    }
}
