//! This module deals with the named network namespaces of a lab run: creating them,
//! running code inside them, and removing them on every exit path.
//!
//! Names are `plab-<pid>-<start>-<seq>-<label>-<short>`: the pid of the process that
//! made them, that process's start time (clock ticks since boot, base 36, so that a
//! reused pid is not mistaken for the owner), a per-process run counter, the run's label
//! and a short role name. They live in `/run/netns` like `ip netns add` makes them, so
//! `ip netns list`, `ip -n` and `ip netns exec` work on them while a run is alive.
//!
//! Guarantees:
//! - A namespace is made on a helper thread that `unshare`s and bind-mounts its own
//!   namespace; the caller's thread never changes namespace.
//! - Code that configures a namespace ([`NetNs::run`], [`Lab::create_many`],
//!   [`write_sysctl`]) first checks that its thread is in that namespace and not in the
//!   machine's (pid 1's) or this process's own namespace; otherwise it refuses with
//!   [`NetnsError::Safety`]. Nothing here ever configures the root namespace.
//! - A [`Lab`] removes every namespace it made when dropped (also while unwinding from a
//!   panic), on [`Lab::teardown`], and when the process gets SIGINT, SIGTERM or SIGHUP
//!   (a handler thread removes every namespace of every live lab, then lets the signal
//!   take its default action). After SIGKILL, [`sweep_stale`] (run by [`Lab::new`])
//!   removes namespaces whose owner is gone.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where named namespaces live (as for `ip netns`).
pub const NETNS_DIR: &str = "/run/netns";

/// The prefix of every namespace policylab makes.
pub const NAME_PREFIX: &str = "plab-";

/// What went wrong with a namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("refusing to touch the network: {0}")]
    Safety(String),
    #[error("a helper thread working in namespace {ns} panicked: {message}")]
    Panicked { ns: String, message: String },
    #[error("invalid namespace label {0:?}: use 1 to 40 characters of [a-zA-Z0-9._-]")]
    BadLabel(String),
}

impl NetnsError {
    fn io(context: impl Into<String>, source: impl Into<io::Error>) -> NetnsError {
        NetnsError::Io {
            context: context.into(),
            source: source.into(),
        }
    }
}

fn nix_io(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The identity of a network namespace: device and inode of its nsfs file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl NsId {
    fn of_path(path: &Path) -> io::Result<NsId> {
        let m = fs::metadata(path)?;
        Ok(NsId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// The namespace of the calling thread.
pub fn current_thread_ns() -> Result<NsId, NetnsError> {
    NsId::of_path(Path::new("/proc/thread-self/ns/net"))
        .map_err(|e| NetnsError::io("reading /proc/thread-self/ns/net", e))
}

/// The namespaces that must never be configured: the machine's (pid 1's) and the one
/// this process started in (its main thread's).
fn protected_namespaces() -> &'static [NsId] {
    static PROTECTED: OnceLock<Vec<NsId>> = OnceLock::new();
    PROTECTED.get_or_init(|| {
        let mut out = Vec::new();
        for p in ["/proc/1/ns/net", "/proc/self/ns/net"] {
            if let Ok(id) = NsId::of_path(Path::new(p)) {
                out.push(id);
            }
        }
        out
    })
}

/// Fails unless the calling thread is in a namespace other than the protected ones, and,
/// when `expected` is given, in exactly that one.
pub fn ensure_in_lab_namespace(expected: Option<NsId>) -> Result<NsId, NetnsError> {
    let protected = protected_namespaces();
    if protected.is_empty() {
        return Err(NetnsError::Safety(
            "cannot read /proc/1/ns/net or /proc/self/ns/net to tell the root namespace".into(),
        ));
    }
    let here = current_thread_ns()?;
    if protected.contains(&here) {
        return Err(NetnsError::Safety(
            "this thread is in the root (or the process's own) network namespace".into(),
        ));
    }
    if let Some(want) = expected {
        if want != here {
            return Err(NetnsError::Safety(format!(
                "this thread is in namespace {here:?}, expected {want:?}"
            )));
        }
    }
    Ok(here)
}

/// Writes a sysctl under `/proc/sys/net/` (`rel` is like `ipv4/ip_forward`) for the
/// namespace of the calling thread. Refuses unless the thread is in a lab namespace.
pub fn write_sysctl(rel: &str, value: &str) -> Result<(), NetnsError> {
    ensure_in_lab_namespace(None)?;
    let path = format!("/proc/sys/net/{rel}");
    fs::write(&path, value).map_err(|e| NetnsError::io(format!("writing {path}"), e))
}

/// Reads a sysctl under `/proc/sys/net/` for the namespace of the calling thread.
pub fn read_sysctl(rel: &str) -> Result<String, NetnsError> {
    let path = format!("/proc/sys/net/{rel}");
    fs::read_to_string(&path)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| NetnsError::io(format!("reading {path}"), e))
}

/// A named network namespace made by a [`Lab`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    name: String,
    path: PathBuf,
    id: NsId,
}

impl NetNs {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> NsId {
        self.id
    }

    /// Opens the namespace (for `setns` or `IFLA_NET_NS_FD`). Fails if the name now
    /// refers to another namespace.
    pub fn open(&self) -> Result<OwnedFd, NetnsError> {
        let f = fs::File::open(&self.path)
            .map_err(|e| NetnsError::io(format!("opening {}", self.path.display()), e))?;
        let m = f
            .metadata()
            .map_err(|e| NetnsError::io(format!("stat {}", self.path.display()), e))?;
        let id = NsId {
            dev: m.dev(),
            ino: m.ino(),
        };
        if id != self.id {
            return Err(NetnsError::Safety(format!(
                "{} no longer refers to the namespace this lab made",
                self.path.display()
            )));
        }
        Ok(OwnedFd::from(f))
    }

    /// Runs `f` on a fresh thread that has entered this namespace, and returns its
    /// result. The thread ends afterwards, so no thread is ever left in the wrong
    /// namespace. Use it for short work: creating sockets, writing sysctls.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let fd = self.open()?;
        std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .name("plab-ns".into())
                .spawn_scoped(s, move || -> Result<T, NetnsError> {
                    setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                        NetnsError::io(format!("entering namespace {}", self.name), nix_io(e))
                    })?;
                    ensure_in_lab_namespace(Some(self.id))?;
                    Ok(f())
                })
                .map_err(|e| NetnsError::io("spawning a namespace thread", e))?;
            handle.join().map_err(|p| NetnsError::Panicked {
                ns: self.name.clone(),
                message: panic_message(&p),
            })?
        })
    }

    /// Like [`NetNs::run`], without blocking the async caller.
    pub async fn run_async<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let ns = self.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("plab-ns".into())
            .spawn(move || {
                let _ = tx.send(ns.run(f));
            })
            .map_err(|e| NetnsError::io("spawning a namespace thread", e))?;
        rx.await.map_err(|_| NetnsError::Panicked {
            ns: self.name.clone(),
            message: "the helper thread ended without an answer".into(),
        })?
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// The identity of a run: which process made it, and which of its runs it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId {
    pub pid: u32,
    /// The owner's start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
    pub start: u64,
    pub seq: u32,
}

impl RunId {
    fn prefix(&self) -> String {
        format!(
            "{NAME_PREFIX}{}-{}-{}-",
            self.pid,
            to_base36(self.start),
            self.seq
        )
    }
}

/// The owner encoded in a policylab namespace name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsOwner {
    pub name: String,
    pub pid: u32,
    pub start: u64,
    pub seq: u32,
    /// `<label>-<short>`.
    pub rest: String,
}

/// Parses a namespace name made by policylab; `None` for any other name.
pub fn parse_name(name: &str) -> Option<NsOwner> {
    let body = name.strip_prefix(NAME_PREFIX)?;
    let mut parts = body.splitn(4, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = from_base36(parts.next()?)?;
    let seq = parts.next()?.parse().ok()?;
    let rest = parts.next()?.to_string();
    if rest.is_empty() {
        return None;
    }
    Some(NsOwner {
        name: name.to_string(),
        pid,
        start,
        seq,
        rest,
    })
}

fn to_base36(mut v: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if v == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while v > 0 {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

fn from_base36(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 13 {
        return None;
    }
    u64::from_str_radix(s, 36).ok()
}

/// The start time of a process in clock ticks since boot, or `None` if it does not exist.
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the
    // last ')'. Field 3 (state) is then the first, field 22 (starttime) the 20th.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that made a namespace is gone (or its pid now belongs to another
/// process).
pub fn owner_is_gone(owner: &NsOwner) -> bool {
    process_start(owner.pid) != Some(owner.start)
}

/// Every policylab namespace in `/run/netns`, sorted by name.
pub fn list_lab_namespaces() -> Result<Vec<NsOwner>, NetnsError> {
    let entries = match fs::read_dir(NETNS_DIR) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetnsError::io(format!("listing {NETNS_DIR}"), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| NetnsError::io(format!("listing {NETNS_DIR}"), e))?;
        if let Some(owner) = entry.file_name().to_str().and_then(parse_name) {
            out.push(owner);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes the namespaces of runs whose process is gone (killed, crashed). Returns the
/// names removed, sorted.
pub fn sweep_stale() -> Result<Vec<String>, NetnsError> {
    remove_where(owner_is_gone)
}

/// Removes every policylab namespace, also those of live runs (`policylab clean`), and
/// nothing else. Returns the names removed, sorted.
pub fn clean_all() -> Result<Vec<String>, NetnsError> {
    remove_where(|_| true)
}

/// Removes the policylab namespaces for which `pick` says yes. Returns the names removed.
pub fn remove_where(pick: impl Fn(&NsOwner) -> bool) -> Result<Vec<String>, NetnsError> {
    let mut removed = Vec::new();
    let mut first_error = None;
    for owner in list_lab_namespaces()? {
        if !pick(&owner) {
            continue;
        }
        match remove_ns_file(&Path::new(NETNS_DIR).join(&owner.name)) {
            Ok(()) => removed.push(owner.name),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// Unmounts and unlinks one `/run/netns` entry. Missing entries are fine.
fn remove_ns_file(path: &Path) -> Result<(), NetnsError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) => {}
        // Not mounted (a crash between creating the file and mounting) or gone.
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(NetnsError::io(
                format!("unmounting {}", path.display()),
                nix_io(e),
            ))
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetnsError::io(format!("removing {}", path.display()), e)),
    }
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, once per process.
fn prepare_netns_dir() -> Result<(), NetnsError> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        fs::create_dir_all(NETNS_DIR).map_err(|e| format!("creating {NETNS_DIR}: {e}"))?;
        let mut made_mount = false;
        loop {
            match mount(
                None::<&str>,
                NETNS_DIR,
                None::<&str>,
                MsFlags::MS_SHARED | MsFlags::MS_REC,
                None::<&str>,
            ) {
                Ok(()) => return Ok(()),
                Err(nix::errno::Errno::EINVAL) if !made_mount => {
                    mount(
                        Some(NETNS_DIR),
                        NETNS_DIR,
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None::<&str>,
                    )
                    .map_err(|e| format!("bind-mounting {NETNS_DIR} on itself: {e}"))?;
                    made_mount = true;
                }
                Err(e) => {
                    return Err(format!(
                        "making {NETNS_DIR} a shared mount: {e} (needs root or CAP_SYS_ADMIN)"
                    ))
                }
            }
        }
    });
    r.clone().map_err(|m| {
        NetnsError::io(
            m,
            io::Error::other("cannot prepare the namespace directory"),
        )
    })
}

/// Names of the namespaces of every live lab of this process, for the signal handler.
fn live_names() -> MutexGuard<'static, BTreeSet<String>> {
    static LIVE: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    let m = LIVE.get_or_init(|| Mutex::new(BTreeSet::new()));
    // A panic while holding the lock cannot leave the set inconsistent (insert/remove
    // only), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Installs, once per process, a thread that removes every live lab namespace on
/// SIGINT, SIGTERM or SIGHUP and then lets the signal take its default action.
fn install_signal_cleanup() -> Result<(), NetnsError> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let r = INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| format!("installing signal handlers: {e}"))?;
        std::thread::Builder::new()
            .name("plab-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let names: Vec<String> = live_names().iter().cloned().collect();
                    for name in names {
                        let _ = remove_ns_file(&Path::new(NETNS_DIR).join(&name));
                    }
                    live_names().clear();
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    // Signals whose default action does not end the process still end it
                    // here: the labs are gone.
                    std::process::exit(128 + sig);
                }
            })
            .map_err(|e| format!("spawning the signal thread: {e}"))?;
        Ok(())
    });
    r.clone()
        .map_err(|m| NetnsError::io(m, io::Error::other("signal handling unavailable")))
}

/// One result of [`Lab::create_many`], filled in by whichever helper thread made it.
type Slot<T, E> = Mutex<Option<Result<(NetNs, T), E>>>;

struct LabInner {
    run: RunId,
    label: String,
    names: Mutex<Vec<String>>,
}

impl LabInner {
    fn names(&self) -> MutexGuard<'_, Vec<String>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The RAII guard of one lab run's namespaces: everything it made is removed when it is
/// dropped, torn down, or the process gets SIGINT/SIGTERM/SIGHUP.
pub struct Lab {
    inner: Arc<LabInner>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("run", &self.inner.run)
            .field("label", &self.inner.label)
            .field("namespaces", &self.inner.names().len())
            .finish()
    }
}

impl Lab {
    /// Starts a run: sweeps namespaces of dead runs, installs the signal cleanup, and
    /// returns the guard. `label` (`[a-zA-Z0-9._-]`, 1..=40) appears in every name.
    pub fn new(label: &str) -> Result<Lab, NetnsError> {
        validate_label(label)?;
        prepare_netns_dir()?;
        install_signal_cleanup()?;
        sweep_stale()?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let start = process_start(pid).ok_or_else(|| {
            NetnsError::io(
                "reading this process's start time",
                io::Error::other("/proc/self/stat unreadable"),
            )
        })?;
        Ok(Lab {
            inner: Arc::new(LabInner {
                run: RunId {
                    pid,
                    start,
                    seq: SEQ.fetch_add(1, Ordering::Relaxed),
                },
                label: label.to_string(),
                names: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn run_id(&self) -> &RunId {
        &self.inner.run
    }

    /// The full namespace name for a short role name.
    pub fn name_for(&self, short: &str) -> String {
        format!("{}{}-{}", self.inner.run.prefix(), self.inner.label, short)
    }

    /// Whether a namespace name belongs to this run.
    pub fn owns(&self, name: &str) -> bool {
        name.starts_with(&self.inner.run.prefix())
    }

    /// The names of the namespaces this run made, in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        self.inner.names().clone()
    }

    /// Makes one namespace.
    pub fn create(&self, short: &str) -> Result<NetNs, NetnsError> {
        let mut out = self.create_many(&[short.to_string()], 1, |_ns| Ok(()))?;
        match out.pop() {
            Some((ns, ())) => Ok(ns),
            None => Err(NetnsError::io(
                "creating a namespace",
                io::Error::other("no namespace was made"),
            )),
        }
    }

    /// Makes one namespace per short name on `threads` helper threads, running `init`
    /// inside each new namespace on the thread that made it (sysctls, sockets). Results
    /// come back in the order of `shorts`. On error, namespaces already made stay
    /// registered with this lab and go away with it.
    pub fn create_many<T, E, F>(
        &self,
        shorts: &[String],
        threads: usize,
        init: F,
    ) -> Result<Vec<(NetNs, T)>, E>
    where
        T: Send,
        E: From<NetnsError> + Send,
        F: Fn(&NetNs) -> Result<T, E> + Sync,
    {
        for s in shorts {
            validate_label(s).map_err(E::from)?;
        }
        let names: Vec<String> = shorts.iter().map(|s| self.name_for(s)).collect();
        let slots: Vec<Slot<T, E>> = names.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let threads = threads.clamp(1, names.len().max(1));
        let panics: Mutex<Vec<String>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            let mut handles = Vec::new();
            for _ in 0..threads {
                let spawned = std::thread::Builder::new()
                    .name("plab-mkns".into())
                    .spawn_scoped(s, || loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= names.len() {
                            break;
                        }
                        let r = self.make_here(&names[i]).map_err(E::from).and_then(|ns| {
                            let t = init(&ns)?;
                            Ok((ns, t))
                        });
                        let failed = r.is_err();
                        *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                        if failed {
                            // Stop handing out work; the caller reports the first error.
                            next.store(names.len(), Ordering::Relaxed);
                            break;
                        }
                    });
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        next.store(names.len(), Ordering::Relaxed);
                        panics
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("cannot spawn a helper thread: {e}"));
                        break;
                    }
                }
            }
            for h in handles {
                if let Err(p) = h.join() {
                    panics
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(panic_message(&p));
                }
            }
        });
        let panics = panics.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(message) = panics.into_iter().next() {
            return Err(E::from(NetnsError::Panicked {
                ns: self.name_for("*"),
                message,
            }));
        }
        let mut out = Vec::with_capacity(names.len());
        let mut missing = false;
        for slot in slots {
            match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
                Some(Ok(v)) => out.push(v),
                Some(Err(e)) => return Err(e),
                None => missing = true,
            }
        }
        if missing {
            return Err(E::from(NetnsError::io(
                "creating namespaces",
                io::Error::other("a namespace was not made"),
            )));
        }
        Ok(out)
    }

    /// On the calling (helper) thread: makes a new namespace, enters it and names it.
    /// The thread stays in the new namespace.
    fn make_here(&self, name: &str) -> Result<NetNs, NetnsError> {
        let path = Path::new(NETNS_DIR).join(name);
        // The file is ours only if we created it (O_EXCL); register it right away, so
        // that every exit path removes it.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&path)
            .map_err(|e| NetnsError::io(format!("creating {}", path.display()), e))?;
        self.inner.names().push(name.to_string());
        live_names().insert(name.to_string());
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| {
            NetnsError::io(
                "unshare(CLONE_NEWNET) (needs root or CAP_SYS_ADMIN)",
                nix_io(e),
            )
        })?;
        let here = ensure_in_lab_namespace(None)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NetnsError::io(format!("bind-mounting {}", path.display()), nix_io(e)))?;
        let id = NsId::of_path(&path)
            .map_err(|e| NetnsError::io(format!("stat {}", path.display()), e))?;
        if id != here {
            return Err(NetnsError::Safety(format!(
                "{} does not refer to the namespace just made",
                path.display()
            )));
        }
        Ok(NetNs {
            name: name.to_string(),
            path,
            id,
        })
    }

    /// Removes every namespace of this run and reports the first failure.
    pub fn teardown(self) -> Result<(), NetnsError> {
        self.remove_all()
    }

    fn remove_all(&self) -> Result<(), NetnsError> {
        let names: Vec<String> = std::mem::take(&mut *self.inner.names());
        let mut first_error = None;
        // Reverse creation order: pods and hosts before nodes and the fabric.
        for name in names.iter().rev() {
            if let Err(e) = remove_ns_file(&Path::new(NETNS_DIR).join(name)) {
                first_error.get_or_insert(e);
            }
            live_names().remove(name);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.remove_all() {
            eprintln!("policylab: removing lab namespaces failed: {e}");
        }
    }
}

fn validate_label(label: &str) -> Result<(), NetnsError> {
    let ok = !label.is_empty()
        && label.len() <= 40
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(NetnsError::BadLabel(label.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let run = RunId {
            pid: 4242,
            start: 123_456_789,
            seq: 3,
        };
        let name = format!("{}smoke-p-default.red", run.prefix());
        let owner = parse_name(&name).expect("parses");
        assert_eq!(owner.pid, 4242);
        assert_eq!(owner.start, 123_456_789);
        assert_eq!(owner.seq, 3);
        assert_eq!(owner.rest, "smoke-p-default.red");
        assert!(parse_name("plab-x-1-2-a").is_none());
        assert!(parse_name("other-1-2-3-a").is_none());
        assert!(parse_name("plab-1-2-3-").is_none());
    }

    #[test]
    fn own_process_is_not_stale() {
        let pid = std::process::id();
        let start = process_start(pid).expect("own stat");
        let owner = NsOwner {
            name: String::new(),
            pid,
            start,
            seq: 0,
            rest: "x".into(),
        };
        assert!(!owner_is_gone(&owner));
        let reused = NsOwner {
            start: start + 1,
            ..owner
        };
        assert!(owner_is_gone(&reused));
    }

    #[test]
    fn labels() {
        assert!(validate_label("p-default.red_1").is_ok());
        assert!(validate_label("").is_err());
        assert!(validate_label("a/b").is_err());
        assert!(validate_label(&"x".repeat(41)).is_err());
    }
}
