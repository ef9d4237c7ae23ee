//! DataFusion glue: the FASTA file format, file names as tables, `fasta_scan()`.

mod format;
mod limited_scan;
mod scan_function;
mod sink;
mod source;
mod table;
mod url_table;

pub use format::{FASTA_EXTENSIONS, FastaFormat, FastaFormatFactory};
pub use limited_scan::LimitedScanBatches;
pub use scan_function::FastaScanFunction;
pub use sink::{FastaSerializer, FastaSink};
pub use source::FastaSource;
pub use table::{fasta_table, is_fasta_name};
pub use url_table::FastaUrlTableFactory;
