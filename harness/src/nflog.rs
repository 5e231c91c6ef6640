//! This module deals with NFLOG: listening, inside a lab namespace, to the packets nft
//! rules log with `log group N`, so that a denied probe is known within a millisecond
//! from the dataplane's own report instead of after a timeout.
//!
//! A listener opens a `NETLINK_NETFILTER` socket on a thread inside the namespace (NFLOG
//! groups are per namespace), binds the group with packet copy mode and a queue
//! threshold of 1 (the kernel otherwise batches events for up to a second), and is then
//! read by a tokio task. Every event goes into an [`NflogSink`], which keeps a short
//! history and broadcasts to subscribers; [`NflogSink::wait_drop`] waits for the event
//! of one flow. A sink is meant for groups whose rules drop: every event in it counts as
//! a drop of its flow.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::nflog::{
    config_request, ConfigCmd, ConfigMode, ConfigNla, PacketNla, ULogMessage,
};
use netlink_packet_netfilter::{NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use tokio::io::unix::AsyncFd;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::netns::{NetNs, NetnsError};

/// How many bytes of each packet the kernel copies: enough for IPv6 with extension
/// headers and the transport header.
pub const COPY_RANGE: u32 = 256;

/// How many events a sink remembers for late waiters.
pub const HISTORY: usize = 4096;

/// IP protocol numbers used in flow keys.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// What went wrong with an NFLOG listener.
#[derive(Debug, thiserror::Error)]
pub enum NflogError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("NFLOG in namespace {namespace}, group {group}: {context}: {source}")]
    Io {
        namespace: String,
        group: u16,
        context: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The addresses and ports of a packet. For ICMP echo request/reply, `src_port` is the
/// echo identifier and `dst_port` is 0; for other ICMP, both are 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FiveTuple {
    pub protocol: u8,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
}

impl FiveTuple {
    /// Whether `packet` belongs to the flow this tuple opened: same protocol, source
    /// address and source port (the destination may have been rewritten by DNAT before
    /// the packet was dropped).
    pub fn same_flow(&self, packet: &FiveTuple) -> bool {
        self.protocol == packet.protocol
            && self.src == packet.src
            && self.src_port == packet.src_port
    }

    /// Whether `packet` is a reply of the flow this tuple opened, as sent before
    /// any reverse NAT: same protocol, addressed to this tuple's source address and
    /// port (an ICMP echo reply: from the destination, with the same identifier),
    /// from the destination port dialled. Only replies of untracked flows are
    /// ever dropped (a tracked reply is `established`), and untracked flows are
    /// not NATed, so the dialled port is the one the reply comes from.
    pub fn reply_of(&self, packet: &FiveTuple) -> bool {
        if self.protocol != packet.protocol || self.src != packet.dst {
            return false;
        }
        match self.protocol {
            proto::ICMP | proto::ICMPV6 => {
                packet.src == self.dst && packet.src_port == self.src_port && packet.dst_port == 0
            }
            _ => packet.dst_port == self.src_port && packet.src_port == self.dst_port,
        }
    }
}

/// One logged packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NflogEvent {
    /// The namespace whose rule logged it.
    pub namespace: String,
    pub group: u16,
    /// The rule's `log prefix`, as given.
    pub prefix: String,
    /// The packet's flow, when its headers could be parsed.
    pub tuple: Option<FiveTuple>,
    pub indev: Option<u32>,
    pub outdev: Option<u32>,
    /// The packet from its network header on, as copied (at most [`COPY_RANGE`] bytes).
    pub payload: Vec<u8>,
    /// The link-layer header (for Ethernet: destination MAC, source MAC, EtherType) when
    /// the packet came in on an interface that has one (`NFULA_HWHEADER`).
    pub hw_header: Option<Vec<u8>>,
    /// The packet mark, when not 0 (`NFULA_MARK`).
    pub mark: Option<u32>,
    pub received: Instant,
}

struct SinkInner {
    history: Mutex<VecDeque<Arc<NflogEvent>>>,
    tx: broadcast::Sender<Arc<NflogEvent>>,
}

/// Collects the events of any number of listeners.
#[derive(Clone)]
pub struct NflogSink {
    inner: Arc<SinkInner>,
}

impl std::fmt::Debug for NflogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NflogSink")
            .field("events", &self.history().len())
            .finish()
    }
}

impl Default for NflogSink {
    fn default() -> Self {
        NflogSink::new()
    }
}

impl NflogSink {
    pub fn new() -> NflogSink {
        let (tx, _) = broadcast::channel(HISTORY);
        NflogSink {
            inner: Arc::new(SinkInner {
                history: Mutex::new(VecDeque::with_capacity(HISTORY)),
                tx,
            }),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<NflogEvent>>> {
        self.inner.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an event (listeners do; a runner may also forward selected events from
    /// one sink into another).
    ///
    /// `received` is set here, under the history's lock, so the history is in
    /// `received` order even when several listeners (each stamping its own reads)
    /// push into one sink: [`NflogSink::wait_for`]'s look-back stops at the first
    /// event older than its `since`, which is only right in that order.
    pub fn push(&self, mut event: NflogEvent) {
        let mut h = self.history();
        event.received = Instant::now();
        let event = Arc::new(event);
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(event.clone());
        // Sent under the lock too, so subscribers see the history's order.
        // No subscriber is fine.
        let _ = self.inner.tx.send(event);
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<NflogEvent>> {
        self.inner.tx.subscribe()
    }

    /// The remembered events (the last [`HISTORY`]), oldest first.
    pub fn events(&self) -> Vec<Arc<NflogEvent>> {
        self.history().iter().cloned().collect()
    }

    /// Forgets the remembered events.
    pub fn clear(&self) {
        self.history().clear();
    }

    /// Waits up to `timeout` for an event matching `pred`, looking first at the events
    /// already received since `since` (an event may arrive before the caller asks).
    pub async fn wait_for(
        &self,
        since: Instant,
        timeout: Duration,
        pred: impl Fn(&NflogEvent) -> bool,
    ) -> Option<Arc<NflogEvent>> {
        let mut rx = self.subscribe();
        if let Some(e) = self
            .history()
            .iter()
            .rev()
            .take_while(|e| e.received >= since)
            .find(|e| pred(e))
        {
            return Some(e.clone());
        }
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(e) if pred(&e) => return Some(e),
                    Ok(_) => {}
                    // Missed some: look at the history again.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(e) = self.history().iter().rev().find(|e| pred(e)) {
                            return Some(e.clone());
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    /// Waits up to `timeout` for a logged packet of the flow `tuple` opened (see
    /// [`FiveTuple::same_flow`]) or of its reply ([`FiveTuple::reply_of`]: the drop
    /// of an untracked flow's reply decides it), received at or after `since`.
    pub async fn wait_drop(
        &self,
        tuple: &FiveTuple,
        since: Instant,
        timeout: Duration,
    ) -> Option<Arc<NflogEvent>> {
        self.wait_for(since, timeout, |e| {
            e.tuple
                .as_ref()
                .is_some_and(|t| tuple.same_flow(t) || tuple.reply_of(t))
        })
        .await
    }
}

/// One NFLOG group bound in one namespace. Dropping it stops listening.
#[derive(Debug)]
pub struct NflogListener {
    namespace: String,
    group: u16,
    task: JoinHandle<()>,
    drains: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<()>>,
}

impl NflogListener {
    /// Binds `group` in `ns` and feeds its events into `sink`. Fails if the group is
    /// already bound in that namespace (the kernel allows one listener per group).
    pub async fn start(
        ns: &NetNs,
        group: u16,
        sink: NflogSink,
    ) -> Result<NflogListener, NflogError> {
        let name = ns.name().to_string();
        let io_err = {
            let name = name.clone();
            move |context: &'static str, source: io::Error| NflogError::Io {
                namespace: name.clone(),
                group,
                context,
                source,
            }
        };
        let socket = ns
            .run_async(move || -> Result<Socket, (&'static str, io::Error)> {
                let mut s =
                    Socket::new(NETLINK_NETFILTER).map_err(|e| ("opening the socket", e))?;
                s.bind_auto().map_err(|e| ("binding the socket", e))?;
                configure(&mut s, group)?;
                s.set_non_blocking(true)
                    .map_err(|e| ("making the socket non-blocking", e))?;
                Ok(s)
            })
            .await?
            .map_err(|(c, e)| io_err(c, e))?;
        let fd = crate::util::async_fd(socket).map_err(|e| io_err("registering with tokio", e))?;
        let (drains, drain_rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(read_loop(fd, name.clone(), group, sink, drain_rx));
        Ok(NflogListener {
            namespace: name,
            group,
            task,
            drains,
        })
    }

    /// Returns once every event the kernel had queued on the socket when it was called
    /// is in the sink. The kernel queues an NFLOG message while the logged packet is
    /// still being processed, so after a probe has its answer, a drain of every
    /// namespace's listeners makes the probe's events complete: no settle time.
    pub async fn drain(&self) -> Result<(), NflogError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || NflogError::Io {
            namespace: self.namespace.clone(),
            group: self.group,
            context: "draining the socket",
            source: io::Error::other("the listener has stopped"),
        };
        self.drains.send(tx).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn group(&self) -> u16 {
        self.group
    }
}

impl Drop for NflogListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends the bind command (packet copy, queue threshold 1) and checks the kernel's ack.
fn configure(s: &mut Socket, group: u16) -> Result<(), (&'static str, io::Error)> {
    let msg = config_request(
        NetfilterProtoFamily::Unspec,
        group,
        vec![
            ConfigCmd::Bind.into(),
            ConfigMode::new_packet(COPY_RANGE).into(),
            ConfigNla::QThresh(1),
        ],
    );
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    s.send(&buf, 0)
        .map_err(|e| ("sending the bind command", e))?;
    let mut rx = Vec::with_capacity(8192);
    s.recv(&mut rx, 0)
        .map_err(|e| ("reading the bind answer", e))?;
    let answer = NetlinkMessage::<NetfilterMessage>::deserialize(&rx).map_err(|e| {
        (
            "parsing the bind answer",
            io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        )
    })?;
    match answer.payload {
        NetlinkPayload::Error(e) => match e.code {
            None => Ok(()),
            Some(code) => Err((
                "binding the group (EPERM: another listener has it)",
                io::Error::from_raw_os_error(-code.get()),
            )),
        },
        _ => Ok(()),
    }
}

async fn read_loop(
    fd: AsyncFd<Socket>,
    namespace: String,
    group: u16,
    sink: NflogSink,
    mut drains: tokio::sync::mpsc::UnboundedReceiver<tokio::sync::oneshot::Sender<()>>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(65536);
    loop {
        let readable = tokio::select! {
            biased;
            d = drains.recv() => {
                if let Some(done) = d {
                    // The socket is non-blocking: read until it is empty.
                    loop {
                        buf.clear();
                        match fd.get_ref().recv(&mut buf, 0) {
                            Ok(n) => {
                                let received = Instant::now();
                                for event in parse_datagram(&buf[..n.min(buf.len())], &namespace, group, received) {
                                    sink.push(event);
                                }
                            }
                            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                            Err(_) => break,
                        }
                    }
                    let _ = done.send(());
                }
                None
            }
            r = fd.readable() => Some(r),
        };
        let Some(readable) = readable else { continue };
        let Ok(mut guard) = readable else {
            return;
        };
        buf.clear();
        match guard.try_io(|s| s.get_ref().recv(&mut buf, 0)) {
            Ok(Ok(n)) => {
                let received = Instant::now();
                for event in parse_datagram(&buf[..n.min(buf.len())], &namespace, group, received) {
                    sink.push(event);
                }
            }
            // ENOBUFS: the kernel dropped events because we were slow; go on reading.
            Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(_would_block) => {}
        }
    }
}

/// Parses every NFLOG packet message of one netlink datagram.
pub fn parse_datagram(
    data: &[u8],
    namespace: &str,
    group: u16,
    received: Instant,
) -> Vec<NflogEvent> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let Ok(msg) = NetlinkMessage::<NetfilterMessage>::deserialize(&data[offset..]) else {
            break;
        };
        let len = msg.header.length as usize;
        if let NetlinkPayload::InnerMessage(NetfilterMessage {
            inner: NetfilterMessageInner::ULog(ULogMessage::Packet(nlas)),
            ..
        }) = &msg.payload
        {
            let mut ev = NflogEvent {
                namespace: namespace.to_string(),
                group,
                prefix: String::new(),
                tuple: None,
                indev: None,
                outdev: None,
                payload: Vec::new(),
                hw_header: None,
                mark: None,
                received,
            };
            for nla in nlas {
                match nla {
                    PacketNla::Prefix(p) => ev.prefix = p.to_string_lossy().into_owned(),
                    PacketNla::Payload(p) => {
                        ev.tuple = parse_ip_packet(p);
                        ev.payload = p.clone();
                    }
                    PacketNla::HwHeader(h) => ev.hw_header = Some(h.clone()),
                    PacketNla::Mark(m) if *m != 0 => ev.mark = Some(*m),
                    PacketNla::IfIndexInDev(i) => ev.indev = Some(*i),
                    PacketNla::IfIndexOutDev(i) => ev.outdev = Some(*i),
                    _ => {}
                }
            }
            out.push(ev);
        }
        // Netlink messages are 4-byte aligned.
        let step = (len + 3) & !3;
        if step == 0 {
            break;
        }
        offset += step;
    }
    out
}

/// The flow of an IPv4 or IPv6 packet (network header first).
pub fn parse_ip_packet(p: &[u8]) -> Option<FiveTuple> {
    match p.first()? >> 4 {
        4 => {
            if p.len() < 20 {
                return None;
            }
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let protocol = p[9];
            let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
            // A non-first fragment has no transport header.
            let frag_offset = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
            let l4 = if frag_offset == 0 { p.get(ihl..) } else { None };
            Some(with_ports(protocol, src, dst, l4))
        }
        6 => {
            if p.len() < 40 {
                return None;
            }
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&p[8..24]);
            dst.copy_from_slice(&p[24..40]);
            let (src, dst) = (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
            );
            let mut next = p[6];
            let mut off = 40;
            // Walk hop-by-hop, routing, fragment and destination-options headers.
            loop {
                match next {
                    0 | 43 | 60 => {
                        let h = p.get(off..off + 2)?;
                        next = h[0];
                        off += (usize::from(h[1]) + 1) * 8;
                    }
                    44 => {
                        let h = p.get(off..off + 8)?;
                        let frag_offset = u16::from_be_bytes([h[2], h[3]]) >> 3;
                        next = h[0];
                        off += 8;
                        if frag_offset != 0 {
                            return Some(with_ports(next, src, dst, None));
                        }
                    }
                    _ => break,
                }
            }
            Some(with_ports(next, src, dst, p.get(off..)))
        }
        _ => None,
    }
}

fn with_ports(protocol: u8, src: IpAddr, dst: IpAddr, l4: Option<&[u8]>) -> FiveTuple {
    let mut t = FiveTuple {
        protocol,
        src,
        src_port: 0,
        dst,
        dst_port: 0,
    };
    let Some(l4) = l4 else { return t };
    match protocol {
        proto::TCP | proto::UDP | proto::SCTP if l4.len() >= 4 => {
            t.src_port = u16::from_be_bytes([l4[0], l4[1]]);
            t.dst_port = u16::from_be_bytes([l4[2], l4[3]]);
        }
        proto::ICMP | proto::ICMPV6 if l4.len() >= 6 => {
            let ty = l4[0];
            let echo = matches!(
                (protocol, ty),
                (proto::ICMP, 8 | 0) | (proto::ICMPV6, 128 | 129)
            );
            if echo {
                t.src_port = u16::from_be_bytes([l4[4], l4[5]]);
            }
        }
        _ => {}
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_tcp() {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        let t = parse_ip_packet(&p).expect("parses");
        assert_eq!(t.protocol, proto::TCP);
        assert_eq!(t.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((t.src_port, t.dst_port), (40000, 80));
    }

    #[test]
    fn parses_ipv6_icmp_echo_after_hop_by_hop() {
        let mut p = vec![0u8; 40 + 8 + 8];
        p[0] = 0x60;
        p[6] = 0; // hop-by-hop
        p[8 + 15] = 1;
        p[24 + 15] = 2;
        p[40] = 58; // next: ICMPv6
        p[41] = 0; // 8 bytes
        p[48] = 128;
        p[52..54].copy_from_slice(&777u16.to_be_bytes());
        let t = parse_ip_packet(&p).expect("parses");
        assert_eq!(t.protocol, proto::ICMPV6);
        assert_eq!(t.src_port, 777);
        assert_eq!(t.dst, IpAddr::V6(Ipv6Addr::from(2u128)));
    }

    fn tuple(protocol: u8, src: &str, src_port: u16, dst: &str, dst_port: u16) -> FiveTuple {
        FiveTuple {
            protocol,
            src: src.parse().expect("ip"),
            src_port,
            dst: dst.parse().expect("ip"),
            dst_port,
        }
    }

    #[test]
    fn replies_are_told_from_requests() {
        let flow = tuple(proto::TCP, "10.0.0.1", 10_000, "10.0.0.2", 80);
        assert!(flow.reply_of(&tuple(proto::TCP, "10.0.0.2", 80, "10.0.0.1", 10_000)));
        assert!(!flow.reply_of(&flow));
        assert!(!flow.reply_of(&tuple(proto::UDP, "10.0.0.2", 80, "10.0.0.1", 10_000)));
        // Another probe's request to a server that happens to use our port.
        assert!(!flow.reply_of(&tuple(proto::TCP, "10.0.0.9", 12_345, "10.0.0.1", 10_000)));
        let echo = tuple(proto::ICMP, "10.0.0.1", 77, "10.0.0.2", 0);
        assert!(echo.reply_of(&tuple(proto::ICMP, "10.0.0.2", 77, "10.0.0.1", 0)));
        assert!(!echo.reply_of(&tuple(proto::ICMP, "10.0.0.2", 78, "10.0.0.1", 0)));
    }

    fn event(tuple: FiveTuple, received: Instant) -> NflogEvent {
        NflogEvent {
            namespace: "ns".into(),
            group: 1,
            prefix: "p".into(),
            tuple: Some(tuple),
            indev: None,
            outdev: None,
            payload: Vec::new(),
            hw_header: None,
            mark: None,
            received,
        }
    }

    /// Issue 12 item 5: listeners stamp their reads, then push into one sink; an
    /// event read earlier may be pushed later. The look-back must still find a
    /// matching event pushed before it (it used to stop at the older one and wait
    /// out the whole timeout).
    #[tokio::test]
    async fn wait_for_finds_an_event_pushed_before_an_older_one() {
        let sink = NflogSink::new();
        let since = Instant::now();
        let ours = tuple(proto::UDP, "10.0.0.1", 10_000, "10.0.0.2", 53);
        let other = tuple(proto::UDP, "10.0.0.3", 10_001, "10.0.0.2", 53);
        sink.push(event(ours, Instant::now()));
        // Read by another listener before `since`, pushed after ours.
        let stale = since.checked_sub(Duration::from_secs(1)).unwrap_or(since);
        sink.push(event(other, stale));
        let started = Instant::now();
        let found = sink.wait_drop(&ours, since, Duration::from_secs(2)).await;
        assert!(found.is_some());
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "waited {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn short_packets_are_not_parsed() {
        assert!(parse_ip_packet(&[0x45, 0, 0]).is_none());
        assert!(parse_ip_packet(&[]).is_none());
    }
}
