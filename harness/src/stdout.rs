//! This module deals with writing to stdout when stdout may be closed
//! (`policylab compile X | head -1`): the first failed write stops all output,
//! the command finishes its work (a lab is torn down as usual), and
//! [`finish`] then ends the process as Unix tools end on a closed pipe (killed
//! by SIGPIPE, shell status 141), quietly.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use policylab_harness::exit::Exit;

/// 0: writing; 1: the reader is gone (EPIPE); 2: another write error (said on
/// stderr once).
static STATE: AtomicU8 = AtomicU8::new(0);

/// Writes `text` to stdout and flushes it; after a failure nothing more is
/// written.
pub fn write(text: &str) {
    if STATE.load(Ordering::Relaxed) != 0 {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STATE.store(1, Ordering::Relaxed);
        } else {
            STATE.store(2, Ordering::Relaxed);
            eprintln!("cannot write to stdout: {e}");
        }
    }
}

/// `print!` through [`write`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(&format!($($arg)*)) };
}

/// `println!` through [`write`].
macro_rules! outln {
    () => { $crate::stdout::write("\n") };
    ($($arg:tt)*) => { $crate::stdout::write(&format!("{}\n", format!($($arg)*))) };
}

pub(crate) use {out, outln};

/// The command's exit, once its work is done: `code`, unless stdout failed.
/// A closed stdout ends the process by SIGPIPE (as `cat`, `grep`, ... do);
/// another write error is exit 74.
pub fn finish(code: Exit) -> std::process::ExitCode {
    match STATE.load(Ordering::Relaxed) {
        0 => code.into(),
        1 => {
            // SAFETY: restoring the default disposition of SIGPIPE and raising it
            // is async-signal-safe and touches no Rust state; everything the
            // command built has already been dropped (torn down) by now.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            // Not reached unless SIGPIPE is blocked: a quiet exit with the code.
            code.into()
        }
        _ => Exit::Io.into(),
    }
}
