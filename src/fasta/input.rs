//! Opening FASTA inputs: plain or gzip (every member of a multi-member file, hence BGZF too),
//! recognised by the gzip magic bytes rather than by the file name.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::error::{FastaError, FastaErrorKind};
use super::reader::FastaReader;

/// A boxed byte source, as the readers in this crate take it.
pub type BoxRead = Box<dyn Read + Send>;

/// The first two bytes of every gzip member (and so of BGZF).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Returns `reader` decompressed when it starts with the gzip magic bytes, and whether it was.
pub fn decompress<R: Read + Send + 'static>(reader: R) -> io::Result<(BoxRead, bool)> {
    let mut buffered = BufReader::with_capacity(1 << 17, reader);
    let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        (Box::new(MultiGzDecoder::new(buffered)), true)
    } else {
        (Box::new(buffered), false)
    })
}

/// Opens a FASTA file, plain or gzip-compressed, for reading as record batches.
///
/// ```no_run
/// for batch in r2dl::fasta::open("proteome.fasta.gz")? {
///     println!("{} records", batch?.num_rows());
/// }
/// # Ok::<(), r2dl::fasta::FastaError>(())
/// ```
pub fn open(path: impl AsRef<Path>) -> Result<FastaReader<BoxRead>, FastaError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    if let Err(message) = super::check_scan_path() {
        return Err(FastaError::in_source(&name, FastaErrorKind::ScanPath(message)));
    }
    let io_error = |e| FastaError::in_source(&name, FastaErrorKind::Io(e));
    let mut file = File::open(path).map_err(io_error)?;
    check_bgzf_end(&mut file).map_err(io_error)?;
    let (input, gzip) = decompress(file).map_err(io_error)?;
    Ok(FastaReader::new(input, name.as_str()).with_compressed(gzip))
}

/// The empty block that ends every complete BGZF file (SAM/BAM specification, 4.1.2).
const BGZF_EOF: [u8; 28] = [
    0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0, 0xff, 0x06, 0, 0x42, 0x43, 0x02, 0, 0x1b, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Fails when `file` (positioned at its start, and left there) is BGZF — gzip whose first
/// member carries the `BC` extra field — but lacks the end-of-file block: a file cut at a block
/// boundary, which would otherwise read as a shorter, valid-looking file.
pub fn check_bgzf_end(file: &mut File) -> io::Result<()> {
    let mut header = [0u8; 14];
    let read = file.read(&mut header)?;
    let is_bgzf =
        read == header.len() && header[..2] == GZIP_MAGIC && header[3] & 0x04 != 0 && header[12..14] == *b"BC";
    let complete = !is_bgzf || {
        let mut tail = [0u8; 28];
        file.seek(SeekFrom::End(-(tail.len() as i64)))
            .and_then(|_| file.read_exact(&mut tail))
            .is_ok_and(|()| tail == BGZF_EOF)
    };
    file.seek(SeekFrom::Start(0))?;
    if complete {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the BGZF file lacks its end-of-file block: it was cut short (an interrupted download or copy?)",
        ))
    }
}

/// A reader of a file that was `expected` bytes long from the read position when the scan was
/// planned: ending sooner is an error (the file shrank while it was read), not a shorter table.
pub struct ExpectedLength<R> {
    inner: R,
    expected: u64,
    read: u64,
}

impl<R> ExpectedLength<R> {
    /// `inner`, which must yield at least `expected` bytes.
    pub fn new(inner: R, expected: u64) -> Self {
        Self {
            inner,
            expected,
            read: 0,
        }
    }
}

impl<R: Read> Read for ExpectedLength<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if n == 0 && !buf.is_empty() && self.read < self.expected {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank while it was read: {} bytes were planned, it ended after {}",
                    self.expected, self.read
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_file_ending_early_is_an_error() {
        let mut data = ExpectedLength::new(&b"abc"[..], 5);
        let mut out = Vec::new();
        let err = data.read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
        let mut exact = ExpectedLength::new(&b"abc"[..], 3);
        assert_eq!(exact.read_to_end(&mut out).unwrap(), 3);
    }

    #[test]
    fn bgzf_without_its_end_block_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // a one-block BGZF member (empty payload), then the end-of-file block
        let path = dir.path().join("x.fa.gz");
        let mut file = File::create(&path).unwrap();
        file.write_all(&BGZF_EOF).unwrap();
        file.write_all(&BGZF_EOF).unwrap();
        drop(file);
        check_bgzf_end(&mut File::open(&path).unwrap()).unwrap();
        std::fs::write(&path, &BGZF_EOF[..27]).unwrap();
        let err = check_bgzf_end(&mut File::open(&path).unwrap()).unwrap_err();
        assert!(err.to_string().contains("end-of-file block"), "{err}");
        // plain gzip and plain text are not BGZF
        let mut plain = BGZF_EOF;
        plain[3] = 0;
        std::fs::write(&path, plain).unwrap();
        check_bgzf_end(&mut File::open(&path).unwrap()).unwrap();
    }
}
