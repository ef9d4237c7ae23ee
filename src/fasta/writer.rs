//! Arrow → FASTA: `>id description` headers and sequences wrapped at a fixed width.

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;

/// Why a batch cannot be written as FASTA.
#[derive(Debug, thiserror::Error)]
pub enum FastaWriteError {
    /// The batch lacks a required column.
    #[error("FASTA output needs a column named '{0}' (columns: id, sequence and optionally description)")]
    MissingColumn(&'static str),
    /// A column that is not a string (and cannot be cast to one).
    #[error("FASTA output column '{column}' must be a string, found {data_type}")]
    NotAString {
        /// The column.
        column: &'static str,
        /// Its type.
        data_type: DataType,
    },
    /// A NULL id or sequence.
    #[error("FASTA output: {column} is NULL in row {row} of a batch (record '{id}')")]
    Null {
        /// The column.
        column: &'static str,
        /// Row within the batch.
        row: usize,
        /// The record's id, or `?` when the id itself is NULL.
        id: String,
    },
    /// A value that would not read back as written.
    #[error("FASTA output: record '{id}': {problem}")]
    Unwritable {
        /// The record's id.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An Arrow failure while casting.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
}

/// Writes batches with `id`, `sequence` and optional `description` columns as FASTA.
///
/// ```
/// use r2dl::fasta::{FastaReader, FastaWriter};
/// let batch = FastaReader::new(&b">P1 a protein\nMKVLA\n"[..], "in").next_batch()?.unwrap();
/// let mut out = Vec::new();
/// FastaWriter::new(3).write_batch(&batch, &mut out)?;
/// assert_eq!(out, b">P1 a protein\nMKV\nLA\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FastaWriter {
    line_width: usize,
}

impl Default for FastaWriter {
    /// Sequences wrapped at 60 residues, as UniProt writes them.
    fn default() -> Self {
        Self::new(60)
    }
}

impl FastaWriter {
    /// A writer that wraps sequence lines at `line_width` (at least 1) characters.
    pub fn new(line_width: usize) -> Self {
        Self {
            line_width: line_width.max(1),
        }
    }

    /// Appends the batch's records to `out`.
    pub fn write_batch(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), FastaWriteError> {
        let ids = string_column(batch, "id")?.ok_or(FastaWriteError::MissingColumn("id"))?;
        let sequences = string_column(batch, "sequence")?.ok_or(FastaWriteError::MissingColumn("sequence"))?;
        let descriptions = string_column(batch, "description")?;
        for row in 0..batch.num_rows() {
            let null = |column| FastaWriteError::Null {
                column,
                row,
                id: if ids.is_null(row) {
                    "?".into()
                } else {
                    ids.value(row).into()
                },
            };
            if ids.is_null(row) {
                return Err(null("id"));
            }
            if sequences.is_null(row) {
                return Err(null("sequence"));
            }
            let id = ids.value(row);
            let unwritable = |problem| FastaWriteError::Unwritable { id: id.into(), problem };
            if id.is_empty() {
                return Err(unwritable("the id is empty"));
            }
            if id.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(unwritable("the id contains whitespace, which would end it on reading"));
            }
            out.push(b'>');
            out.extend_from_slice(id.as_bytes());
            if let Some(description) = descriptions.as_ref().filter(|d| d.is_valid(row)) {
                let description = description.value(row);
                if description.contains(['\n', '\r']) {
                    return Err(unwritable("the description contains a line break"));
                }
                if !description.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(description.as_bytes());
                }
            }
            out.push(b'\n');
            let sequence = sequences.value(row).as_bytes();
            if sequence.contains(&b'\n') || sequence.first() == Some(&b'>') {
                return Err(unwritable("the sequence contains a line break or starts with '>'"));
            }
            for chunk in sequence.chunks(self.line_width) {
                out.extend_from_slice(chunk);
                out.push(b'\n');
            }
        }
        Ok(())
    }
}

/// The named column as Utf8, or `None` when the batch has no such column.
fn string_column(batch: &RecordBatch, name: &'static str) -> Result<Option<StringArray>, FastaWriteError> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    match column.data_type() {
        DataType::Utf8 => Ok(Some(column.as_string::<i32>().clone())),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            let cast = cast(column, &DataType::Utf8)?;
            Ok(Some(cast.as_string::<i32>().clone()))
        }
        other => Err(FastaWriteError::NotAString {
            column: name,
            data_type: other.clone(),
        }),
    }
}
