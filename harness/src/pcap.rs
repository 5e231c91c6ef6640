//! This module deals with packet capture inside a lab namespace: an `AF_PACKET` socket
//! made on a thread inside the namespace (so it sees only that namespace's
//! interfaces), read by a tokio task, written to a pcap file that tcpdump and Wireshark
//! open.
//!
//! Two scopes:
//! - [`CaptureScope::Interface`]: one interface, `SOCK_RAW`, frames as they are on the
//!   wire, link type Ethernet (every lab interface is a veth or `lo`, both Ethernet
//!   framed). Both directions are captured.
//! - [`CaptureScope::All`]: every interface of the namespace, `SOCK_DGRAM` (from the
//!   network header on), link type `LINUX_SLL2` (what `tcpdump -i any` writes): each
//!   packet carries its interface index, direction and link-layer source address.
//!
//! The socket is made with protocol 0 (it receives nothing) and then bound with
//! `ETH_P_ALL` (and the interface), so no packet of another interface slips in before
//! the bind. [`Capture::stop`] first reads whatever the kernel has already queued, then
//! flushes the file. Timestamps are the wall-clock time the packet was read.

use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::DataLink;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::netns::{NetNs, NetnsError};

/// The most bytes of one packet kept.
pub const SNAPLEN: u32 = 65535;

/// What to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureScope {
    /// One interface, by name.
    Interface(String),
    /// Every interface of the namespace.
    All,
}

/// What went wrong capturing.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("capturing in namespace {namespace}: {context}: {source}")]
    Io {
        namespace: String,
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("pcap file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("the capture task in namespace {namespace} ended abnormally")]
    Task { namespace: String },
}

/// What a finished capture wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSummary {
    pub path: PathBuf,
    pub packets: u64,
    pub datalink: DataLink,
}

/// A running capture. [`Capture::stop`] ends it and finishes the file; dropping it
/// without stopping ends the task and leaves the file with what was flushed so far.
#[derive(Debug)]
pub struct Capture {
    namespace: String,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<CaptureSummary, CaptureError>>>,
}

impl Capture {
    /// Starts capturing `scope` in `ns` into a new pcap file at `path` (replaced if it
    /// exists).
    pub async fn start(
        ns: &NetNs,
        scope: CaptureScope,
        path: impl Into<PathBuf>,
    ) -> Result<Capture, CaptureError> {
        let path = path.into();
        let namespace = ns.name().to_string();
        let io_err = |context: String, source: io::Error| CaptureError::Io {
            namespace: namespace.clone(),
            context,
            source,
        };
        let datalink = match scope {
            CaptureScope::Interface(_) => DataLink::ETHERNET,
            CaptureScope::All => DataLink::LINUX_SLL2,
        };
        let fd = ns
            .run_async(move || open_packet_socket(&scope))
            .await?
            .map_err(|(c, e)| io_err(c, e))?;
        let fd =
            crate::util::async_fd(fd).map_err(|e| io_err("registering with tokio".into(), e))?;
        let file = File::create(&path).map_err(|e| CaptureError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink,
            endianness: pcap_file::Endianness::native(),
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| {
            CaptureError::File {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(capture_loop(
            fd,
            writer,
            datalink,
            rx,
            path.clone(),
            namespace.clone(),
        ));
        Ok(Capture {
            namespace,
            path,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops capturing: reads what the kernel has queued, flushes and closes the file.
    pub async fn stop(mut self) -> Result<CaptureSummary, CaptureError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().ok_or_else(|| CaptureError::Task {
            namespace: self.namespace.clone(),
        })?;
        task.await.map_err(|_| CaptureError::Task {
            namespace: self.namespace.clone(),
        })?
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Makes and binds the packet socket. Runs on a thread inside the namespace.
fn open_packet_socket(scope: &CaptureScope) -> Result<OwnedFd, (String, io::Error)> {
    let ty = match scope {
        CaptureScope::Interface(_) => libc::SOCK_RAW,
        CaptureScope::All => libc::SOCK_DGRAM,
    };
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err((
            "opening an AF_PACKET socket (needs CAP_NET_RAW)".into(),
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: `raw` is a fresh, open fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ifindex = match scope {
        CaptureScope::Interface(name) => {
            let c = std::ffi::CString::new(name.as_str()).map_err(|_| {
                (
                    format!("interface name {name:?}"),
                    io::Error::from(io::ErrorKind::InvalidInput),
                )
            })?;
            // SAFETY: `c` is a valid NUL-terminated string.
            let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
            if i == 0 {
                return Err((
                    format!("finding interface {name:?}"),
                    io::Error::last_os_error(),
                ));
            }
            i as i32
        }
        CaptureScope::All => 0,
    };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a valid sockaddr_ll and its size is passed.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err((
            "binding the packet socket".into(),
            io::Error::last_os_error(),
        ));
    }
    Ok(fd)
}

/// One packet read from the socket: its bytes (at most the buffer), its real length and
/// where it came from.
struct Read {
    len: usize,
    orig_len: usize,
    sll: libc::sockaddr_ll,
}

fn recv_one(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Read> {
    // SAFETY: sockaddr_ll is plain data.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: buf and sll are valid for writes of the sizes passed; MSG_TRUNC makes the
    // kernel return the packet's real length.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
            (&mut sll as *mut libc::sockaddr_ll).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let orig_len = n as usize;
    Ok(Read {
        len: orig_len.min(buf.len()),
        orig_len,
        sll,
    })
}

/// The 20-byte `LINUX_SLL2` header for a packet read from a `SOCK_DGRAM` packet socket.
pub fn sll2_header(
    protocol_be: u16,
    ifindex: i32,
    hatype: u16,
    pkttype: u8,
    addr: &[u8],
) -> [u8; 20] {
    let mut h = [0u8; 20];
    // sll_protocol is already in network byte order.
    h[0..2].copy_from_slice(&protocol_be.to_ne_bytes());
    h[4..8].copy_from_slice(&(ifindex as u32).to_be_bytes());
    h[8..10].copy_from_slice(&hatype.to_be_bytes());
    h[10] = pkttype;
    let n = addr.len().min(8);
    h[11] = n as u8;
    h[12..12 + n].copy_from_slice(&addr[..n]);
    h
}

async fn capture_loop(
    fd: AsyncFd<OwnedFd>,
    mut writer: PcapWriter<BufWriter<File>>,
    datalink: DataLink,
    mut stop: oneshot::Receiver<()>,
    path: PathBuf,
    namespace: String,
) -> Result<CaptureSummary, CaptureError> {
    let mut buf = vec![0u8; SNAPLEN as usize];
    let mut packets = 0u64;
    let file_err = |e: pcap_file::PcapError| CaptureError::File {
        path: path.clone(),
        message: e.to_string(),
    };
    let mut write = |writer: &mut PcapWriter<BufWriter<File>>,
                     r: &Read,
                     data: &[u8]|
     -> Result<(), CaptureError> {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        match datalink {
            DataLink::LINUX_SLL2 => {
                let h = sll2_header(
                    r.sll.sll_protocol,
                    r.sll.sll_ifindex,
                    r.sll.sll_hatype,
                    r.sll.sll_pkttype,
                    &r.sll.sll_addr[..usize::from(r.sll.sll_halen).min(8)],
                );
                let mut frame = Vec::with_capacity(20 + data.len());
                frame.extend_from_slice(&h);
                frame.extend_from_slice(data);
                let orig = (20 + r.orig_len) as u32;
                writer
                    .write_packet(&PcapPacket::new(ts, orig, &frame))
                    .map_err(file_err)?;
            }
            _ => {
                writer
                    .write_packet(&PcapPacket::new(ts, r.orig_len as u32, data))
                    .map_err(file_err)?;
            }
        }
        packets += 1;
        Ok(())
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ready = fd.readable() => {
                let Ok(mut guard) = ready else { break };
                match guard.try_io(|s| recv_one(s.get_ref(), &mut buf)) {
                    Ok(Ok(r)) => {
                        let data = buf[..r.len].to_vec();
                        write(&mut writer, &r, &data)?;
                    }
                    Ok(Err(e)) => {
                        return Err(CaptureError::Io {
                            namespace,
                            context: "reading packets".into(),
                            source: e,
                        })
                    }
                    Err(_would_block) => {}
                }
            }
        }
    }
    // Drain what the kernel already queued.
    loop {
        match recv_one(fd.get_ref(), &mut buf) {
            Ok(r) => {
                let data = buf[..r.len].to_vec();
                write(&mut writer, &r, &data)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                return Err(CaptureError::Io {
                    namespace,
                    context: "reading packets".into(),
                    source: e,
                })
            }
        }
    }
    let mut inner = writer.into_writer();
    io::Write::flush(&mut inner).map_err(|e| CaptureError::File {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(CaptureSummary {
        path,
        packets,
        datalink,
    })
}

/// One packet of a pcap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePacket {
    pub timestamp: Duration,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads a pcap file back: its link type and packets.
pub fn read_file(path: &Path) -> Result<(DataLink, Vec<FilePacket>), CaptureError> {
    let err = |message: String| CaptureError::File {
        path: path.to_path_buf(),
        message,
    };
    let f = File::open(path).map_err(|e| err(e.to_string()))?;
    let mut r = PcapReader::new(io::BufReader::new(f)).map_err(|e| err(e.to_string()))?;
    let datalink = r.header().datalink;
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.map_err(|e| err(e.to_string()))?;
        out.push(FilePacket {
            timestamp: p.timestamp,
            orig_len: p.orig_len,
            data: p.data.into_owned(),
        });
    }
    Ok((datalink, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll2_header_layout() {
        let h = sll2_header(
            (libc::ETH_P_IP as u16).to_be(),
            3,
            1,
            4,
            &[2, 0, 0, 0, 0, 1],
        );
        assert_eq!(&h[0..2], &[0x08, 0x00]);
        assert_eq!(&h[2..4], &[0, 0]);
        assert_eq!(&h[4..8], &[0, 0, 0, 3]);
        assert_eq!(&h[8..10], &[0, 1]);
        assert_eq!(h[10], 4);
        assert_eq!(h[11], 6);
        assert_eq!(&h[12..20], &[2, 0, 0, 0, 0, 1, 0, 0]);
    }
}
