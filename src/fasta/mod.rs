//! FASTA ⇄ Arrow: a streaming reader (plain, gzip, multi-member gzip, BGZF) with errors that
//! name the file, line and record, and a writer.

mod columns;
mod error;
mod input;
mod line_reader;
mod mapped;
mod reader;
mod scan;
mod schema;
mod value_buffers;
mod writer;

pub use error::{FastaError, FastaErrorKind, Location, count_newlines};
pub use input::{BoxRead, ExpectedLength, GZIP_MAGIC, check_bgzf_end, decompress, open};
pub use reader::{DEFAULT_BATCH_SIZE, FastaReader};
pub use scan::{SCAN_PATH_VARIABLE, ScanPath, check_scan_path};
pub use schema::{DESCRIPTION, ID, SEQUENCE, fasta_schema};
pub(crate) use value_buffers::is_ascii_buffer;
pub use writer::{FastaWriteError, FastaWriter};
