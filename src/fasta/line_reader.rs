//! A line splitter over one large buffer (reused, or a mapped window of a file): `memchr` for
//! `\n`, no per-line allocation, byte offsets and line numbers for every line it hands out.

use std::fs::File;
use std::io::{self, Read};

use super::mapped::MappedFile;
use super::scan::{BodyScan, scan_body};

/// Initial buffer size; it grows only for a single line longer than this.
const INITIAL_CAPACITY: usize = 1 << 20;

/// Where a [`LineReader`]'s bytes are.
enum Buffer<R> {
    /// Read from `inner` into one reused buffer.
    Read { inner: R, buf: Vec<u8> },
    /// A mapped window of a local file.
    Mapped(MappedFile),
}

/// Splits a byte stream into lines (without the `\n`; a `\r` before it is left in place).
pub(crate) struct LineReader<R> {
    buffer: Buffer<R>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// End of the valid part of `buf`.
    filled: usize,
    /// `buf[pos..scanned]` is known to hold no `\n`.
    scanned: usize,
    eof: bool,
    /// Stream offset of `buf[0]`.
    buf_offset: u64,
    /// Buffer index where the last returned line starts.
    last_start: usize,
    /// Lines returned or consumed so far.
    lines: u64,
}

impl<R: Read> LineReader<R> {
    /// Reads `inner`, whose first byte is at stream offset `offset`.
    pub(crate) fn new(inner: R, offset: u64) -> Self {
        Self::over(
            Buffer::Read {
                inner,
                buf: vec![0; INITIAL_CAPACITY],
            },
            offset,
        )
    }

    /// Reads a local file from byte `offset` on through a memory map (see [`MappedFile`]).
    pub(crate) fn mapped(file: File, offset: u64) -> Self {
        Self::over(Buffer::Mapped(MappedFile::new(file)), offset)
    }

    /// Sets the size of the read buffer or the map window (for tests of their boundaries).
    #[cfg(test)]
    pub(crate) fn with_capacity(mut self, capacity: usize) -> Self {
        self.buffer = match self.buffer {
            Buffer::Read { inner, .. } => Buffer::Read {
                inner,
                buf: vec![0; capacity],
            },
            Buffer::Mapped(map) => Buffer::Mapped(map.with_window(capacity)),
        };
        self
    }

    fn over(buffer: Buffer<R>, offset: u64) -> Self {
        Self {
            buffer,
            pos: 0,
            filled: 0,
            scanned: 0,
            eof: false,
            buf_offset: offset,
            last_start: 0,
            lines: 0,
        }
    }

    /// The next line as a range of [`Self::buf`], or `None` at the end of the stream.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            let unscanned = &self.buf()[self.scanned..self.filled];
            // `consume` may have left `scanned` on the line's end
            let found = if unscanned.first() == Some(&b'\n') {
                Some(0)
            } else {
                memchr::memchr(b'\n', unscanned)
            };
            if let Some(i) = found {
                let start = self.pos;
                let end = self.scanned + i;
                self.pos = end + 1;
                self.scanned = self.pos;
                return Ok(Some(self.hand_out(start, end)));
            }
            self.scanned = self.filled;
            if self.eof {
                if self.pos == self.filled {
                    return Ok(None);
                }
                let start = self.pos;
                self.pos = self.filled;
                return Ok(Some(self.hand_out(start, self.filled)));
            }
            self.refill()?;
        }
    }

    fn hand_out(&mut self, start: usize, end: usize) -> (usize, usize) {
        self.last_start = start;
        self.lines += 1;
        (start, end)
    }

    /// The longest run of complete lines at the read position none of which starts with `>`,
    /// without consuming it, with what [`scan_body`] found in it (`check_unusual` is passed on):
    /// empty when the next line is a header or the stream has ended. The run ends just after a
    /// `\n`, or at the end of the stream.
    pub(crate) fn peek_block(&mut self, check_unusual: bool) -> io::Result<(&[u8], BodyScan)> {
        loop {
            let unread = &self.buf()[self.pos..self.filled];
            let mut scan = scan_body(unread, check_unusual);
            if !scan.header && !self.eof {
                // Keep only complete lines. The flags may then also cover part of a line left
                // out, which only sends the block down the careful path.
                scan.len = match memchr::memrchr(b'\n', unread) {
                    Some(i) => i + 1,
                    None => {
                        self.refill()?;
                        continue;
                    }
                };
            }
            return Ok((&self.buf()[self.pos..self.pos + scan.len], scan));
        }
    }

    /// Consumes `len` bytes returned by [`Self::peek_block`], which hold `lines` lines.
    /// `line_end`: where the `\n` that ends the line after them is, from the start of the block,
    /// when [`BodyScan::header_line`] knows it.
    pub(crate) fn consume(&mut self, len: usize, lines: u64, line_end: Option<usize>) {
        let start = self.pos;
        self.pos += len;
        self.scanned = line_end.map_or(self.pos, |end| start + end);
        self.lines += lines;
    }

    /// Stream offset of the read position.
    pub(crate) fn position(&self) -> u64 {
        self.buf_offset + self.pos as u64
    }

    /// Puts the line last returned by [`Self::next_line`] back, so that it is returned again.
    /// Valid only directly after `next_line` returned a line.
    pub(crate) fn unread(&mut self) {
        self.pos = self.last_start;
        self.scanned = self.pos;
        self.lines -= 1;
    }

    /// The buffer that the ranges from [`Self::next_line`] index into.
    pub(crate) fn buf(&self) -> &[u8] {
        match &self.buffer {
            Buffer::Read { buf, .. } => buf,
            Buffer::Mapped(map) => map.bytes(),
        }
    }

    /// Stream offset of the start of the line last returned.
    pub(crate) fn line_offset(&self) -> u64 {
        self.buf_offset + self.last_start as u64
    }

    /// Number of lines returned so far (the 1-based number of the last one).
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// Keeps `buf[pos..filled]` (moved to the start of the buffer) and makes at least one more
    /// byte follow it, or sets `eof`. After an error the buffer is empty and at its end.
    fn refill(&mut self) -> io::Result<()> {
        let kept = self.filled - self.pos;
        let from = self.buf_offset + self.pos as u64;
        let result = match &mut self.buffer {
            Buffer::Read { inner, buf } => {
                buf.copy_within(self.pos..self.filled, 0);
                if kept == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
                loop {
                    match inner.read(&mut buf[kept..]) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        read => break read.map(|n| (kept + n, n == 0)),
                    }
                }
            }
            Buffer::Mapped(map) => map.remap(from, kept).map(|at_end| (map.bytes().len(), at_end)),
        };
        self.buf_offset = from;
        self.scanned -= self.pos;
        self.pos = 0;
        let (filled, eof) = result.inspect_err(|_| {
            (self.filled, self.scanned, self.eof) = (0, 0, true);
        })?;
        (self.filled, self.eof) = (filled, eof);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(data: &[u8], capacity: usize) -> Vec<(Vec<u8>, u64)> {
        let mut r = LineReader::new(data, 0).with_capacity(capacity);
        let mut out = Vec::new();
        while let Some((s, e)) = r.next_line().unwrap() {
            out.push((r.buf()[s..e].to_vec(), r.line_offset()));
        }
        out
    }

    #[test]
    fn splits_lines_with_offsets_across_refills_and_growth() {
        let data = b"ab\n\nlonger line here\nlast";
        for capacity in [1, 2, 3, 7, 64] {
            let got = lines_of(data, capacity);
            let want: Vec<(Vec<u8>, u64)> = vec![
                (b"ab".to_vec(), 0),
                (b"".to_vec(), 3),
                (b"longer line here".to_vec(), 4),
                (b"last".to_vec(), 21),
            ];
            assert_eq!(got, want, "capacity {capacity}");
        }
    }

    #[test]
    fn blocks_stop_before_header_lines() {
        let mut r = LineReader::new(&b"AC\nGT\n>h\nTT\n;c\nGG"[..], 0);
        let block = |r: &mut LineReader<&[u8]>| {
            let (bytes, scan) = r.peek_block(true).unwrap();
            (bytes.to_vec(), scan.newlines)
        };
        assert_eq!(block(&mut r), (b"AC\nGT\n".to_vec(), 2));
        r.consume(6, 2, None);
        assert_eq!(block(&mut r), (vec![], 0));
        let (s, e) = r.next_line().unwrap().unwrap();
        assert_eq!((&r.buf()[s..e], r.lines()), (&b">h"[..], 3));
        assert_eq!(block(&mut r), (b"TT\n;c\n".to_vec(), 2));
        r.consume(6, 2, None);
        // the last line is complete only once the end of the stream is seen
        assert_eq!(block(&mut r), (b"GG".to_vec(), 0));
        r.consume(2, 1, None);
        assert_eq!((r.position(), r.lines()), (17, 6));
        assert_eq!(block(&mut r), (vec![], 0));
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn blocks_keep_only_complete_lines_across_refills() {
        let mut r = LineReader::new(&b"AAAA\nCC\n>h\n"[..], 0).with_capacity(7);
        let (bytes, scan) = r.peek_block(true).unwrap();
        assert_eq!((bytes, scan.newlines, scan.header), (&b"AAAA\n"[..], 1, false));
        r.consume(5, 1, None);
        let (bytes, scan) = r.peek_block(true).unwrap();
        assert_eq!((bytes, scan.newlines, scan.header), (&b"CC\n"[..], 1, true));
    }

    #[test]
    fn a_known_line_end_is_used_for_the_header_after_a_block() {
        let mut r = LineReader::new(&b"AC\n>h1 x\nGG\n"[..], 0);
        let (bytes, scan) = r.peek_block(false).unwrap();
        let line_end = scan.header_line.map(|line| scan.len + line.end);
        assert!(line_end.is_none() || line_end == Some(8));
        assert_eq!(bytes.len(), 3);
        r.consume(3, 1, Some(8));
        let (s, e) = r.next_line().unwrap().unwrap();
        assert_eq!((&r.buf()[s..e], r.lines(), r.line_offset()), (&b">h1 x"[..], 2, 3));
        let (s, e) = r.next_line().unwrap().unwrap();
        assert_eq!(&r.buf()[s..e], b"GG");
    }

    #[test]
    fn unread_returns_the_same_line_again() {
        let mut r = LineReader::new(&b"x\ny\n"[..], 10);
        r.next_line().unwrap();
        let (s, e) = r.next_line().unwrap().unwrap();
        assert_eq!(&r.buf()[s..e], b"y");
        assert_eq!((r.lines(), r.line_offset()), (2, 12));
        r.unread();
        let (s, e) = r.next_line().unwrap().unwrap();
        assert_eq!(&r.buf()[s..e], b"y");
        assert_eq!(r.lines(), 2);
        assert!(r.next_line().unwrap().is_none());
    }
}
