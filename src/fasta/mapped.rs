//! A window of a local file mapped read-only into memory, slid forward as the reader moves: the
//! FASTA reader's input for plain local files, which spares the copy out of the page cache that
//! `read` makes (on a page-cached file, that copy is most of a count's time).
//!
//! Memory stays bounded: only one window (16 MiB unless a single line is longer) is mapped at a
//! time. The cost of mapping is the usual one: if another process truncates the file while a
//! window of it is being read, the process receives `SIGBUS`. A truncation seen between windows
//! is an error. `SET r2dl.fasta_mmap = false` reads with `read` instead.

use std::fs::File;
use std::io;

use memmap2::{Mmap, MmapOptions};

/// Bytes mapped at a time, unless a line needs more.
const WINDOW: usize = 16 << 20;

/// The mapped window of a file.
pub(crate) struct MappedFile {
    file: File,
    /// `None` while nothing is mapped (before the first window, or an empty one).
    map: Option<Mmap>,
    window: usize,
}

impl MappedFile {
    /// A file, of which nothing is mapped yet.
    pub(crate) fn new(file: File) -> Self {
        Self {
            file,
            map: None,
            window: WINDOW,
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
        self.map.as_deref().unwrap_or_default()
    }

    /// Maps the window that starts at file offset `from`, where the caller still needs the
    /// `kept` bytes it had mapped there, so that it holds more than `kept` bytes unless the file
    /// ends first. Returns whether the window reaches the end of the file. After an error
    /// nothing is mapped.
    pub(crate) fn remap(&mut self, from: u64, kept: usize) -> io::Result<bool> {
        self.map = None; // one window at a time
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
        let len = usize::try_from(file_len - from).map_or(self.window, |rest| rest.min(self.window));
        if len > 0 {
            // SAFETY: the map is read-only and private, and lives in `self`, which hands out only
            // borrows of it. Its bytes change only if another process writes the file while it is
            // read (the reader then sees some mix of old and new bytes, as with `read`), and
            // touching them raises SIGBUS only if the file is truncated meanwhile; the module
            // documentation states both.
            let map = unsafe { MmapOptions::new().offset(from).len(len).populate().map(&self.file)? };
            self.map = Some(map);
        }
        Ok(from + len as u64 == file_len)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn windows_slide_grow_and_end_at_the_end_of_the_file() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let mut map = MappedFile::new(file).with_window(4);
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
