//! Opening FASTA inputs: plain or gzip (every member of a multi-member file, hence BGZF too),
//! recognised by the gzip magic bytes rather than by the file name.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::error::{FastaError, FastaErrorKind, Location};
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
    let io_error = |e| FastaError {
        location: Location {
            source: name.as_str().into(),
            line: None,
            offset: 0,
            record: None,
        },
        kind: FastaErrorKind::Io(e),
    };
    let file = File::open(path).map_err(io_error)?;
    let (input, gzip) = decompress(file).map_err(io_error)?;
    Ok(FastaReader::new(input, name.as_str()).with_compressed(gzip))
}
