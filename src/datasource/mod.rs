//! DataFusion glue: the FASTA file format, file names as tables, `fasta_scan()`.

mod file_format;
mod limited_scan;
mod options;
mod scan_function;
mod sink;
mod source;
mod table;
mod url_table;

pub use file_format::{FASTA_EXTENSIONS, FastaFormat, FastaFormatFactory};
pub use limited_scan::LimitedScanBatches;
pub use options::FastaOptions;
pub use scan_function::FastaScanFunction;
pub use sink::{FastaSerializer, FastaSink};
pub use source::FastaSource;
pub use table::{FastaTable, FastaTableFactory, fasta_table, is_fasta_name};
pub use url_table::FastaUrlTableFactory;
