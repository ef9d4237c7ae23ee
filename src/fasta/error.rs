//! The one error type of FASTA parsing: what went wrong and where (file, line, record).

use std::fmt;
use std::io;
use std::sync::Arc;

/// Where in a FASTA input an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (or other source) name, as the user gave it.
    pub source: Arc<str>,
    /// 1-based line number, when known. Readers that start in the middle of a file (byte-range
    /// partitions) only know the byte offset until [`FastaError::resolve_line`] is called.
    pub line: Option<u64>,
    /// Byte offset of the start of the offending line in the (decompressed) stream.
    pub offset: u64,
    /// Id of the record being read, when one had started.
    pub record: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.offset) {
            (Some(line), _) => write!(f, "{}:{line}", self.source)?,
            (None, 0) => write!(f, "{}", self.source)?,
            (None, offset) => write!(f, "{} (byte {offset})", self.source)?,
        }
        if let Some(record) = &self.record {
            write!(f, " (record '{record}')")?;
        }
        Ok(())
    }
}

/// What went wrong while reading FASTA.
#[derive(Debug, thiserror::Error)]
pub enum FastaErrorKind {
    /// A line other than a blank, a `;` comment or a header came before the first header.
    #[error("expected a header line starting with '>', found {found:?}")]
    MissingHeader {
        /// The start of the offending line, for the message.
        found: String,
    },
    /// A carriage return inside a line: the file ends its lines with CR alone (classic Mac),
    /// which would fold records into one.
    #[error(
        "a carriage return (\\r) inside a line: the file ends its lines with CR alone; convert them to \\n (e.g. `tr '\\r' '\\n'`)"
    )]
    LoneCarriageReturn,
    /// A header line with nothing (or only spaces) after the `>`.
    #[error("header line has an empty id")]
    EmptyId,
    /// Bytes that are not UTF-8 in a header or sequence line.
    #[error("invalid UTF-8 in a {0} line")]
    InvalidUtf8(&'static str),
    /// One value (usually a whole sequence) that does not fit a 32-bit Arrow string offset.
    #[error("{column} is longer than {max} bytes, the limit of one Arrow Utf8 value")]
    ValueTooLong {
        /// The column whose value is too long.
        column: &'static str,
        /// The limit that was exceeded.
        max: usize,
    },
    /// Building the Arrow arrays failed (a bug: the reader validates what it appends).
    #[error("building Arrow arrays: {0}")]
    Arrow(#[source] datafusion::arrow::error::ArrowError),
    /// The gzip layer failed: truncated or corrupt compressed data.
    #[error("truncated or corrupt gzip data: {0}")]
    Gzip(#[source] io::Error),
    /// `R2DL_FASTA_SCAN` names no scan, or one this CPU cannot run.
    #[error("{0}")]
    ScanPath(String),
    /// Any other I/O failure of the underlying reader.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
}

/// A FASTA parse error with its [`Location`].
#[derive(Debug, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct FastaError {
    /// Where the error happened.
    pub location: Location,
    /// What happened.
    #[source]
    pub kind: FastaErrorKind,
}

impl FastaError {
    /// An error about the input `source` as a whole (no line, no record).
    pub fn in_source(source: &str, kind: FastaErrorKind) -> Self {
        FastaError {
            location: Location {
                source: source.into(),
                line: None,
                offset: 0,
                record: None,
            },
            kind,
        }
    }

    /// Fills in the line number of an error raised by a reader that began mid-file, given a
    /// function that counts the lines before a byte offset of the underlying file.
    pub fn resolve_line(mut self, lines_before: impl FnOnce(u64) -> io::Result<u64>) -> Self {
        if self.location.line.is_none()
            && let Ok(n) = lines_before(self.location.offset)
        {
            self.location.line = Some(n + 1);
        }
        self
    }
}

/// Counts the `\n` bytes in the first `offset` bytes of `reader`.
pub fn count_newlines(mut reader: impl io::Read, offset: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut left = offset;
    let mut count = 0u64;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        left -= n as u64;
    }
    Ok(count)
}
