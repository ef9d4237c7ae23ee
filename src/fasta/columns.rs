//! The Arrow columns of the batch a [`super::FastaReader`] is building: sequence bytes are
//! appended straight into the value buffers, only the projected columns are kept.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, NullBufferBuilder, RecordBatch, RecordBatchOptions, StringArray};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;

use super::error::FastaErrorKind;
use super::scan::{HeaderLine, is_ascii};
use super::schema::{DESCRIPTION, ID, SEQUENCE};
use super::value_buffers::{ascii_buffer, vector};

/// The columns of the batch being built and the state of the record being read.
pub(super) struct Columns {
    pub(super) wanted: [bool; 3],
    pub(super) id: Utf8Column,
    pub(super) description: Utf8Column,
    pub(super) description_nulls: NullBufferBuilder,
    pub(super) sequence: Utf8Column,
    /// Whether every byte appended to `sequence` in this batch is known to be ASCII.
    pub(super) sequence_ascii: bool,
    pub(super) rows: usize,
    pub(super) in_record: bool,
    /// The id of the record being read, kept even when `id` is not projected (for errors).
    pub(super) current_id: Vec<u8>,
}

impl Columns {
    pub(super) fn new(wanted: [bool; 3]) -> Self {
        Self {
            wanted,
            id: Utf8Column::default(),
            description: Utf8Column::default(),
            description_nulls: NullBufferBuilder::new(0),
            sequence: Utf8Column::default(),
            sequence_ascii: true,
            rows: 0,
            in_record: false,
            current_id: Vec::new(),
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.id.values.len() + self.description.values.len() + self.sequence.values.len()
    }

    /// Starts a record from a header line without its `>`; `known`: what the body scan saw of
    /// that line, if it did.
    pub(super) fn start_record(&mut self, header: &[u8], known: Option<HeaderLine>) -> Result<(), FastaErrorKind> {
        // what the scan saw, if it saw this line: positions count from the `>`
        let known = known.filter(|line| line.end == header.len() + 1);
        let lone_cr = match known {
            // a CR that is not the last byte before the line's end
            Some(line) => line.carriage_return.is_some_and(|cr| cr + 1 < line.end),
            None => has_lone_cr(header),
        };
        if lone_cr {
            return Err(FastaErrorKind::LoneCarriageReturn);
        }
        let (header, id_end) = match known {
            // The scan checked the bytes and found the first blank; with none at the start,
            // nothing needs trimming before the id.
            Some(line) if line.ascii && header.first().is_some_and(|b| !b.is_ascii_whitespace()) => {
                // as below: the id ends at the first blank, or where trailing whitespace begins
                // (say a form feed before the blank), whichever comes first (found by fuzzing)
                let trimmed = header.trim_ascii_end().len();
                let id_end = line.blank.map_or(trimmed, |blank| (blank - 1).min(trimmed));
                (header, id_end)
            }
            _ => {
                let header = header.trim_ascii();
                if !is_ascii(header) && std::str::from_utf8(header).is_err() {
                    return Err(FastaErrorKind::InvalidUtf8("header"));
                }
                (header, memchr::memchr2(b' ', b'\t', header).unwrap_or(header.len()))
            }
        };
        let id = &header[..id_end];
        if id.is_empty() {
            return Err(FastaErrorKind::EmptyId);
        }
        self.current_id.clear();
        self.current_id.extend_from_slice(id);
        self.in_record = true;
        if self.wanted[ID] {
            self.id.push(id, "id")?;
        }
        if self.wanted[DESCRIPTION] {
            let description = header[id_end..].trim_ascii();
            self.description.push(description, "description")?;
            self.description_nulls.append(!description.is_empty());
        }
        Ok(())
    }

    /// Appends one sequence line (without its `\n`), dropping spaces, tabs and CRs.
    pub(super) fn append_sequence(&mut self, line: &[u8]) -> Result<(), FastaErrorKind> {
        if !is_ascii(line) {
            if std::str::from_utf8(line).is_err() {
                return Err(FastaErrorKind::InvalidUtf8("sequence"));
            }
            self.sequence_ascii = false;
        }
        if has_lone_cr(line) {
            return Err(FastaErrorKind::LoneCarriageReturn);
        }
        if self.wanted[SEQUENCE] {
            let values = &mut self.sequence.values;
            if memchr::memchr3(b' ', b'\t', b'\r', line).is_none() {
                values.extend_from_slice(line);
            } else {
                values.extend(line.iter().copied().filter(|b| !matches!(b, b' ' | b'\t' | b'\r')));
            }
        }
        Ok(())
    }

    /// Appends checked sequence lines, `block` (ASCII, nothing unusual, holding `newlines` line
    /// breaks), without their line breaks. FASTA files mostly wrap at one width: when every line
    /// of the block but the last has the first line's width (checked at one byte per line, which
    /// the known count of line breaks makes enough), the lines are copied without searching for
    /// their ends — a search that took a fifth of a `sum(length(sequence))` scan of 60-residue
    /// lines.
    pub(super) fn append_sequence_lines(&mut self, block: &[u8], newlines: u64) {
        let values = &mut self.sequence.values;
        values.reserve(block.len());
        if let (Some(width), Some(last), Some(before_last)) = (
            memchr::memchr(b'\n', block),
            memchr::memrchr(b'\n', block),
            usize::try_from(newlines).ok().and_then(|breaks| breaks.checked_sub(1)),
        ) {
            // do the lines before the last line break all have the first line's width?
            let regular = &block[..before_last.saturating_mul(width + 1).min(block.len())];
            let lines = regular.chunks_exact(width + 1);
            if lines.len() == before_last && regular.len() <= last && lines.clone().all(|line| line[width] == b'\n') {
                // `before_last` line breaks in `regular` and one at `last`, after it: all of them
                match width {
                    // the common widths (UniProt, Ensembl: 60; NCBI: 70, 80) copied as fixed-size
                    // moves rather than a `memcpy` call per line
                    60 => extend_lines::<60>(values, regular),
                    70 => extend_lines::<70>(values, regular),
                    80 => extend_lines::<80>(values, regular),
                    _ => lines.for_each(|line| values.extend_from_slice(&line[..width])),
                }
                values.extend_from_slice(&block[regular.len()..last]);
                values.extend_from_slice(&block[last + 1..]);
                return;
            }
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', block) {
            values.extend_from_slice(&block[start..end]);
            start = end + 1;
        }
        values.extend_from_slice(&block[start..]);
    }

    pub(super) fn finish_record(&mut self) -> Result<(), FastaErrorKind> {
        if self.wanted[SEQUENCE] {
            self.sequence.close_value("sequence")?;
        }
        self.rows += 1;
        self.in_record = false;
        Ok(())
    }

    pub(super) fn take_batch(
        &mut self,
        schema: &SchemaRef,
        projection: &[usize],
    ) -> Result<Option<RecordBatch>, FastaErrorKind> {
        if self.rows == 0 {
            return Ok(None);
        }
        let rows = std::mem::take(&mut self.rows);
        let mut arrays: [Option<ArrayRef>; 3] = [None, None, None];
        if self.wanted[ID] {
            arrays[ID] = Some(self.id.take(None, false)?);
        }
        if self.wanted[DESCRIPTION] {
            arrays[DESCRIPTION] = Some(self.description.take(self.description_nulls.finish(), false)?);
        }
        if self.wanted[SEQUENCE] {
            let ascii = std::mem::replace(&mut self.sequence_ascii, true);
            arrays[SEQUENCE] = Some(self.sequence.take(None, ascii)?);
        }
        let columns = projection
            .iter()
            .map(|&i| arrays[i].clone().expect("every projected column was built"))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)
            .map(Some)
            .map_err(FastaErrorKind::Arrow)
    }
}

/// Appends the lines of `lines` (each `W` bytes and a line break) to `values`, without the breaks.
fn extend_lines<const W: usize>(values: &mut Vec<u8>, lines: &[u8]) {
    let lines = lines.chunks_exact(W + 1);
    let bytes = lines.len() * W;
    values.reserve(bytes);
    let start = values.len();
    let spare = &mut values.spare_capacity_mut()[..bytes];
    for (to, line) in spare.chunks_exact_mut(W).zip(lines) {
        for (to, &byte) in to.iter_mut().zip(&line[..W]) {
            to.write(byte);
        }
    }
    // SAFETY: the loop wrote all `bytes` bytes after `start` (`spare` holds `lines.len()` chunks
    // of `W`, one per line).
    unsafe { values.set_len(start + bytes) };
}

/// Offsets and values of one Utf8 column under construction.
pub(super) struct Utf8Column {
    pub(super) offsets: Vec<i32>,
    pub(super) values: Vec<u8>,
}

impl Default for Utf8Column {
    fn default() -> Self {
        Self {
            offsets: vec![0],
            values: Vec::new(),
        }
    }
}

impl Utf8Column {
    pub(super) fn push(&mut self, value: &[u8], column: &'static str) -> Result<(), FastaErrorKind> {
        self.values.extend_from_slice(value);
        self.close_value(column)
    }

    /// Ends the value whose bytes were appended to `values` since the last offset.
    pub(super) fn close_value(&mut self, column: &'static str) -> Result<(), FastaErrorKind> {
        let end = i32::try_from(self.values.len()).map_err(|_| FastaErrorKind::ValueTooLong {
            column,
            max: i32::MAX as usize,
        })?;
        self.offsets.push(end);
        Ok(())
    }

    /// The column's values as an array, leaving an empty column to build the next batch in.
    /// `ascii`: every value byte is known to be ASCII, which its buffer then records (see
    /// [`ascii_buffer`]).
    pub(super) fn take(
        &mut self,
        nulls: Option<datafusion::arrow::buffer::NullBuffer>,
        ascii: bool,
    ) -> Result<ArrayRef, FastaErrorKind> {
        // the next batch is likely as large as this one: no regrowth from empty
        let (rows, bytes) = (self.offsets.len(), self.values.len());
        let offsets = std::mem::replace(&mut self.offsets, Vec::with_capacity(rows));
        let values = std::mem::replace(&mut self.values, vector(bytes));
        self.offsets.push(0);
        let len = offsets.len() - 1;
        if nulls.as_ref().is_some_and(|nulls| nulls.len() != len) {
            return Err(FastaErrorKind::Arrow(ArrowError::InvalidArgumentError(format!(
                "{len} values but {} null flags",
                nulls.as_ref().map_or(0, |nulls| nulls.len())
            ))));
        }
        #[cfg(test)]
        assert!(
            std::str::from_utf8(&values).is_ok(),
            "the reader appends only checked UTF-8"
        );
        #[cfg(test)]
        assert!(offsets.is_sorted() && offsets.last().is_some_and(|&end| end as usize <= values.len()));
        // SAFETY: every run of bytes appended was checked first (the body scan found it ASCII, or
        // the line or header passed `from_utf8`, and only ASCII bytes were dropped from it), so the
        // buffer is UTF-8 and each offset, the buffer's length at some moment, falls on a
        // character boundary; the offsets start at 0, never decrease (`close_value` pushes the
        // growing length, which fits an i32) and stay within the buffer; `nulls`, when given, has
        // one flag per value.
        // Arrow's own check (`try_new`) would read every byte again: 5 % of a
        // `sum(length(sequence))` scan.
        let array = unsafe {
            StringArray::new_unchecked(
                OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)),
                if ascii {
                    ascii_buffer(values)
                } else {
                    Buffer::from_vec(values)
                },
                nulls,
            )
        };
        Ok(Arc::new(array))
    }
}

/// Whether a line (without its `\n`) holds a `\r` anywhere but at its end, where CRLF files
/// have one.
fn has_lone_cr(line: &[u8]) -> bool {
    memchr::memchr(b'\r', line).is_some_and(|i| i + 1 < line.len())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Blocks of lines of one width, with perhaps one line of another width (often the last)
    /// and perhaps no final line break.
    fn blocks() -> impl Strategy<Value = Vec<u8>> {
        // the widths copied by fixed-size moves, and others
        let widths = prop_oneof![0usize..90, Just(60), Just(70), Just(80)];
        (0usize..40, widths, any::<u8>(), 0usize..90, any::<bool>()).prop_map(
            |(lines, width, odd_line, odd_width, open_end)| {
                let mut block = Vec::new();
                for i in 0..lines {
                    let width = if i == usize::from(odd_line) % 50 {
                        odd_width
                    } else {
                        width
                    };
                    block.extend((0..width).map(|j| b"ACDEFGHIKLMNPQRSTVWY"[(i + j) % 20]));
                    block.push(b'\n');
                }
                if open_end {
                    block.extend_from_slice(b"MKV");
                }
                block
            },
        )
    }

    proptest! {
        #[test]
        fn sequence_lines_lose_only_their_line_breaks(block in blocks()) {
            let mut columns = Columns::new([false, false, true]);
            columns.sequence.values.extend_from_slice(b"PRE");
            let newlines = block.iter().filter(|&&b| b == b'\n').count() as u64;
            columns.append_sequence_lines(&block, newlines);
            let want: Vec<u8> = b"PRE".iter().chain(&block).copied().filter(|&b| b != b'\n').collect();
            prop_assert_eq!(columns.sequence.values, want);
        }
    }
}
