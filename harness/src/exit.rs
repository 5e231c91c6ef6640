//! This module deals with the `policylab` binary's exit codes: one enum, each
//! error of the harness says which code it ends a command with
//! ([`crate::runner::RunnerError::exit`]).

/// Every exit code of the `policylab` binary (README: "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Exit {
    /// 0: every expectation held (`check`: no problem).
    Ok = 0,
    /// 1: at least one expectation did not hold (the report marks it).
    Failed = 1,
    /// 2: invalid input, or nothing to check or run; every problem is listed and
    /// nothing was built.
    Invalid = 2,
    /// 3: this machine cannot run the kernel dataplane (not root, no `nft`, no
    /// network namespaces, ...); the message says what to do.
    Machine = 3,
    /// 4: the kernel and the reference model disagreed (a bug in policylab; both
    /// traces are on stderr).
    Disagreement = 4,
    /// 70 (`EX_SOFTWARE`): an internal error, a bug in policylab (a panic, or
    /// the kernel refusing what policylab generated).
    Internal = 70,
    /// 74 (`EX_IOERR`): the report could not be written (stdout or an output
    /// file failed for another reason than a closed pipe).
    Io = 74,
}

impl Exit {
    /// Every code, in numeric order (the README's table lists exactly these).
    pub const ALL: [Exit; 7] = [
        Exit::Ok,
        Exit::Failed,
        Exit::Invalid,
        Exit::Machine,
        Exit::Disagreement,
        Exit::Internal,
        Exit::Io,
    ];

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_sorted() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 70, 74]);
    }
}
