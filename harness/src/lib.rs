//! policylab's impure edge: the lab bench that builds a [`policylab::lab::LabPlan`] out
//! of Linux network namespaces and veth pairs, runs servers and probes inside them,
//! loads nftables rulesets and listens to NFLOG.
//!
//! Start here:
//! - [`netns`]: named namespaces per run, the RAII [`netns::Lab`] guard, signal and
//!   crash cleanup ([`netns::sweep_stale`], [`netns::clean_all`]).
//! - [`topology`]: [`topology::Cluster::build`] turns a plan into namespaces, links,
//!   addresses, routes and servers.
//! - [`server`]: HTTP echo, UDP echo and SCTP servers inside namespaces.
//! - [`probe`]: TCP, HTTP, UDP, SCTP and ICMP probes whose results are data.
//! - [`nflog`]: NFLOG listeners, to know within a millisecond that a probe was dropped.
//! - [`nft`]: loading nft scripts into a namespace atomically.
//! - [`loglines`]: the kernel LOG target's line for a packet logged through NFLOG
//!   (Calico's `Log` action), exact and normalized.
//! - [`pcap`]: packet capture inside a namespace (one interface or all) to pcap files.
//! - [`feedserver`]: threat-feed files over HTTP(S) from an outside host, with a
//!   scenario CA, run-time file replacement and host failure.
//! - [`exit`]: the binary's exit codes, one enum ([`exit::Exit`]).
//! - [`runner`]: the kernel dataplane: runs a scenario's plan in a lab and attributes
//!   every probe from NFLOG, for comparison with the reference model.
//! - [`puller`]: pulling a GlobalThreatFeed's URL over real HTTP(S) from inside a
//!   namespace, with distinct errors for a feed's status.
//!
//! Nothing here ever configures the machine's own (root) network namespace: every
//! configuring thread checks which namespace it is in first.

pub mod exit;
pub mod feedserver;
pub mod loglines;
pub mod netns;
pub mod nflog;
pub mod nft;
pub mod pcap;
pub mod probe;
pub mod puller;
pub mod runner;
pub mod server;
pub mod topology;

mod util {
    //! This module deals with small helpers shared by the modules above.

    use std::os::fd::AsRawFd;

    /// Registers a socket that owns its fd with tokio's reactor.
    pub(crate) fn async_fd<T: AsRawFd>(inner: T) -> std::io::Result<tokio::io::unix::AsyncFd<T>> {
        // SAFETY: every caller passes a socket type that owns a valid, open fd, and the
        // AsyncFd takes ownership of it, so the fd is neither closed nor replaced while
        // registered.
        unsafe { tokio::io::unix::AsyncFd::register(inner) }.map_err(std::io::Error::from)
    }
}
