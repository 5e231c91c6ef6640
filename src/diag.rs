//! This module deals with source files, positions and user-facing diagnostics.
//!
//! Every input policylab reads (a scenario file, a manifest file, a feed file) is
//! registered in a [`Sources`] table and gets a [`FileId`]. Positions are kept as
//! [`Span`]s (file, 1-based line, 1-based column in characters) all the way from the
//! YAML parser to validation, so that every problem can be reported as
//! `file:line:col: message` followed by the offending line.
//!
//! Guarantees:
//! - Rendering is deterministic: diagnostics are sorted by file, line, column, then
//!   message, and duplicates are removed.
//! - Nothing here panics on user input; a span that points past the end of a file
//!   renders without the source line.

use std::fmt;
use std::path::{Path, PathBuf};

/// Index of a file in a [`Sources`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u32);

/// A position in a source file. `line` and `col` are 1-based; `col` counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub file: FileId,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(file: FileId, line: u32, col: u32) -> Span {
        Span { file, line, col }
    }
}

/// One source file: its path as the user named it, and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path used for display (as given on the command line or joined from the
    /// scenario's directory).
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// The text of 1-based line `line`, without its line terminator.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        if line == 0 {
            return None;
        }
        self.text
            .split('\n')
            .nth(line as usize - 1)
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// The most policylab reads from one file (64 MiB: a threat feed of a million
/// addresses is about 16 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads a UTF-8 text file, refusing what is not a regular file (a FIFO would
/// block forever, `/dev/zero` never ends) and files over [`MAX_FILE_BYTES`]. The
/// file is opened without blocking and checked after opening, so a FIFO cannot
/// hang the open and nothing can be swapped in between.
pub fn read_regular_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nonblock())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what = file_type_name(&meta.file_type());
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file: policylab reads only regular files"),
        ));
    }
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is larger than {} MiB, the most policylab reads from one file",
                MAX_FILE_BYTES >> 20
            ),
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// `O_NONBLOCK` on Linux (all architectures policylab runs on).
const fn libc_o_nonblock() -> i32 {
    0o4000
}

fn file_type_name(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// The table of every file read in a run.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Registers a file's text and returns its id. The same path may be added twice
    /// (for example a manifest applied in two steps); each gets its own id.
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> FileId {
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            path: path.into(),
            text: text.into(),
        });
        id
    }

    /// Reads a file from disk ([`read_regular_file`]) and registers it.
    pub fn read(&mut self, path: &Path) -> std::io::Result<FileId> {
        let text = read_regular_file(path)?;
        Ok(self.add(path, text))
    }

    /// Reads the file at `real` ([`read_regular_file`]) and registers it under the
    /// name `name` (the path as the scenario wrote it, for positions and titles).
    pub fn read_as(&mut self, name: &Path, real: &Path) -> std::io::Result<FileId> {
        let text = read_regular_file(real)?;
        Ok(self.add(name, text))
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn path(&self, id: FileId) -> &Path {
        &self.get(id).path
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.get(id).text
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// How bad a diagnostic is. Only errors make a run fail with exit code 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where the problem is; `None` for problems without a position (a file that
    /// cannot be read is reported at the place that names it, so this is rare).
    pub span: Option<Span>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span: Some(span),
            message: message.into(),
        }
    }

    pub fn error_nowhere(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            span: None,
            message: message.into(),
        }
    }

    pub fn warning_nowhere(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            span: None,
            message: message.into(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            span: Some(span),
            message: message.into(),
        }
    }

    /// Renders `file:line:col: message` and, when the line exists, the line and a caret.
    pub fn render(&self, sources: &Sources) -> String {
        let mut out = String::new();
        let level = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        match self.span {
            Some(span) if (span.file.0 as usize) < sources.len() => {
                let file = sources.get(span.file);
                out.push_str(&format!(
                    "{}:{}:{}: {}{}\n",
                    display_path(&file.path),
                    span.line,
                    span.col,
                    level,
                    self.message
                ));
                if let Some(line) = file.line_text(span.line) {
                    let gutter = span.line.to_string();
                    let pad = " ".repeat(gutter.len());
                    out.push_str(&format!("{gutter} | {line}\n"));
                    let caret_col = (span.col as usize).saturating_sub(1);
                    // Keep tabs so the caret lines up under the character.
                    let lead: String = line
                        .chars()
                        .take(caret_col)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    out.push_str(&format!("{pad} | {lead}^\n"));
                }
            }
            _ => out.push_str(&format!("{}{}\n", level, self.message)),
        }
        out
    }
}

/// Paths are shown with `/` separators and without a leading `./`.
pub fn display_path(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

/// A collector of diagnostics: stages push every problem they find and go on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics::default()
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>) {
        self.push(Diagnostic::error(span, message));
    }

    pub fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.push(Diagnostic::warning(span, message));
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Diagnostic>) {
        self.items.extend(other);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The diagnostics, sorted and de-duplicated.
    pub fn sorted(&self) -> Vec<Diagnostic> {
        let mut v = self.items.clone();
        v.sort_by(|a, b| (a.span, a.severity, &a.message).cmp(&(b.span, b.severity, &b.message)));
        v.dedup();
        v
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    /// Renders every diagnostic, sorted, one block each.
    pub fn render(&self, sources: &Sources) -> String {
        self.sorted().iter().map(|d| d.render(sources)).collect()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value together with the place it was written.
///
/// Deserializing a `Spanned<T>` through [`crate::yaml::from_node`] records the position
/// of the node; with any other deserializer the span is unknown and set to
/// [`Span::UNKNOWN`].
#[derive(Debug, Clone, Copy)]
pub struct Spanned<T> {
    pub span: Span,
    pub value: T,
}

impl Span {
    /// Used only for values that were not read from a file (built in code).
    pub const UNKNOWN: Span = Span {
        file: FileId(u32::MAX),
        line: 0,
        col: 0,
    };
}

impl<T> Spanned<T> {
    pub fn new(span: Span, value: T) -> Spanned<T> {
        Spanned { span, value }
    }
}

impl<T: Default> Default for Spanned<T> {
    fn default() -> Self {
        Spanned::new(Span::UNKNOWN, T::default())
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

// Equality and ordering ignore the span: two values written in different places are
// the same value.
impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Spanned<T> {}
impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}
impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}
impl<T: std::hash::Hash> std::hash::Hash for Spanned<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_line_and_caret() {
        let mut s = Sources::new();
        let f = s.add("scenarios/a.yaml", "name: x\nsteps:\n  - prob: a -> b\n");
        let d = Diagnostic::error(Span::new(f, 3, 5), "unknown step verb `prob`");
        assert_eq!(
            d.render(&s),
            "scenarios/a.yaml:3:5: unknown step verb `prob`\n3 |   - prob: a -> b\n  |     ^\n"
        );
    }

    #[test]
    fn sorted_dedups_and_orders() {
        let mut s = Sources::new();
        let f = s.add("a", "x\ny\n");
        let mut ds = Diagnostics::new();
        ds.error(Span::new(f, 2, 1), "b");
        ds.error(Span::new(f, 1, 1), "a");
        ds.error(Span::new(f, 2, 1), "b");
        let v: Vec<_> = ds.sorted().into_iter().map(|d| d.message).collect();
        assert_eq!(v, ["a", "b"]);
    }
}
