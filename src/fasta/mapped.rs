//! A window of a local file mapped read-only into memory, slid forward as the reader moves: the
//! FASTA reader's input for plain local files, which spares the copy out of the page cache that
//! `read` makes (on a page-cached file, that copy is most of a count's time).
//!
//! Setting up and tearing down a window's page tables is work in the kernel (14 % of a
//! `sum(length(sequence))` scan's samples when done in line), so it is done on a helper thread: while the
//! reader reads one window, the next one is mapped and populated ahead of it, and the window it
//! left is unmapped.
//!
//! Memory stays bounded: at most two windows (16 MiB each unless a single line is longer) are
//! mapped at a time, the one being read and the one ahead. The cost of mapping is the usual one:
//! if another process truncates the file while a window of it is being read, the process
//! receives `SIGBUS`. A truncation seen between windows is an error. `SET r2dl.fasta_mmap =
//! false` reads with `read` instead.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use memmap2::{Mmap, MmapOptions};

/// Bytes mapped at a time, unless a line needs more.
const WINDOW: usize = 16 << 20;

/// The mapped window of a file.
pub(crate) struct MappedFile {
    file: Arc<File>,
    /// `None` while nothing is mapped (before the first window, or an empty one).
    map: Option<Mmap>,
    /// Where the window's bytes start in `map` (a window mapped ahead may begin before the byte
    /// the reader asked for).
    skip: usize,
    window: usize,
    /// The next window, being mapped on a helper thread.
    ahead: Option<Ahead>,
}

/// A window mapped ahead of the reader: `len` bytes from file offset `from`.
struct Ahead {
    from: u64,
    len: usize,
    map: JoinHandle<io::Result<Mmap>>,
}

/// Maps and populates `len` (> 0) bytes of `file` from offset `from`.
fn map_window(file: &File, from: u64, len: usize) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and private, and lives in a `MappedFile`, which hands out only
    // borrows of it. Its bytes change only if another process writes the file while it is read
    // (the reader then sees some mix of old and new bytes, as with `read`), and touching them
    // raises SIGBUS only if the file is truncated meanwhile; the module documentation states both.
    unsafe { MmapOptions::new().offset(from).len(len).populate().map(file) }
}

impl MappedFile {
    /// A file, of which nothing is mapped yet.
    pub(crate) fn new(file: File) -> Self {
        Self {
            file: Arc::new(file),
            map: None,
            skip: 0,
            window: WINDOW,
            ahead: None,
        }
    }

    /// Sets the window size (for tests of the window boundaries).
    #[cfg(test)]
    pub(crate) fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().map_or(&[], |map| &map[self.skip..])
    }

    /// Maps the window that starts at file offset `from`, where the caller still needs the
    /// `kept` bytes it had mapped there, so that it holds more than `kept` bytes unless the file
    /// ends first. Returns whether the window reaches the end of the file. After an error
    /// nothing is mapped.
    pub(crate) fn remap(&mut self, from: u64, kept: usize) -> io::Result<bool> {
        let left = self.map.take();
        self.skip = 0;
        let file_len = self.file.metadata()?.len();
        let needed = from + kept as u64;
        if file_len < needed {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file was truncated to {file_len} bytes while being read (at byte {needed})"),
            ));
        }
        while kept >= self.window / 2 {
            self.window *= 2;
        }
        let mut len = self.window_len(from, file_len);
        if len > 0 {
            match self.take_ahead(from, kept, file_len) {
                Some((map, skip)) => {
                    len = map.len() - skip;
                    (self.map, self.skip) = (Some(map), skip);
                }
                None => self.map = Some(map_window(&self.file, from, len)?),
            }
        }
        let end = from + len as u64;
        self.map_ahead(end, file_len, left);
        Ok(end == file_len)
    }

    /// The length of a window from `from` (at most `file_len`): a window, or the rest of the file.
    fn window_len(&self, from: u64, file_len: u64) -> usize {
        usize::try_from(file_len - from).map_or(self.window, |rest| rest.min(self.window))
    }

    /// The window mapped ahead and where `from` is in it, if it holds more than `kept` bytes
    /// from `from` on, or all of the file from `from` on.
    fn take_ahead(&mut self, from: u64, kept: usize, file_len: u64) -> Option<(Mmap, usize)> {
        let ahead = self.ahead.take()?;
        let ahead_end = ahead.from + ahead.len as u64;
        let usable = from >= ahead.from && ahead_end > from + kept as u64;
        if !usable || ahead_end > file_len {
            return None; // not joined: the helper finishes and unmaps it on its own
        }
        let map = ahead.map.join().ok()?.ok()?;
        Some((map, usize::try_from(from - ahead.from).ok()?))
    }

    /// Starts mapping the window after one that ends at `end` on a helper thread (beginning an
    /// eighth of a window before `end`, where a record cut by the boundary likely starts), and
    /// unmaps `left`, the window the reader has left, there too.
    fn map_ahead(&mut self, end: u64, file_len: u64, left: Option<Mmap>) {
        let from = end.saturating_sub((self.window / 8) as u64);
        let len = self.window_len(from, file_len);
        if end >= file_len || len == 0 {
            self.ahead = None;
            return; // `left` is unmapped here
        }
        let file = Arc::clone(&self.file);
        let spawned = thread::Builder::new().name("r2dl-map-ahead".into()).spawn(move || {
            drop(left);
            map_window(&file, from, len)
        });
        // without a thread, the next window is mapped when it is needed
        self.ahead = spawned.ok().map(|map| Ahead { from, len, map });
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A temporary file holding `content`, mapped `window` bytes at a time.
    fn mapped(content: &[u8], window: usize) -> MappedFile {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        MappedFile::new(file).with_window(window)
    }

    #[test]
    fn windows_slide_grow_and_end_at_the_end_of_the_file() {
        let mut map = mapped(b"0123456789", 4);
        assert!(!map.remap(0, 0).unwrap());
        assert_eq!(map.bytes(), b"0123");
        // keeping 3 of 4 bytes doubles the window
        assert!(!map.remap(1, 3).unwrap());
        assert_eq!(map.bytes(), b"12345678");
        assert!(map.remap(7, 1).unwrap());
        assert_eq!(map.bytes(), b"789");
        assert!(map.remap(10, 0).unwrap());
        assert_eq!(map.bytes(), b"");
    }

    #[test]
    fn the_window_mapped_ahead_serves_the_next_remap() {
        let mut map = mapped(b"0123456789abcdefghij", 8);
        assert!(!map.remap(0, 0).unwrap());
        assert_eq!(map.bytes(), b"01234567");
        // mapped ahead: 8 bytes from an eighth of a window before the end, byte 7
        assert_eq!(map.ahead.as_ref().map(|ahead| (ahead.from, ahead.len)), Some((7, 8)));
        assert!(!map.remap(8, 0).unwrap());
        assert_eq!((map.bytes(), map.skip), (&b"89abcde"[..], 1));
        // a window that does not hold enough of what is kept is mapped anew
        assert_eq!(map.ahead.as_ref().map(|ahead| ahead.from), Some(14));
        assert!(map.remap(13, 3).unwrap());
        assert_eq!((map.bytes(), map.skip), (&b"defghij"[..], 0));
        assert!(map.ahead.is_none());
    }

    #[test]
    fn a_file_truncated_between_windows_is_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let mut map = MappedFile::new(file.try_clone().unwrap()).with_window(4);
        map.remap(0, 0).unwrap();
        file.set_len(2).unwrap();
        let err = map.remap(3, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("truncated to 2 bytes"), "{err}");
    }
}
