//! The Arrow columns of the batch a [`super::FastaReader`] is building: sequence bytes are
//! appended straight into the value buffers, only the projected columns are kept.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, NullBufferBuilder, RecordBatch, RecordBatchOptions, StringArray};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::SchemaRef;

use super::error::FastaErrorKind;
use super::scan::{HeaderLine, is_ascii};
use super::schema::{DESCRIPTION, ID, SEQUENCE};

/// The columns of the batch being built and the state of the record being read.
pub(super) struct Columns {
    pub(super) wanted: [bool; 3],
    pub(super) id: Utf8Column,
    pub(super) description: Utf8Column,
    pub(super) description_nulls: NullBufferBuilder,
    pub(super) sequence: Utf8Column,
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
        if has_lone_cr(header) {
            return Err(FastaErrorKind::LoneCarriageReturn);
        }
        let (header, id_end) = match known {
            // The scan checked the bytes and found the first blank; with none at the start,
            // nothing needs trimming before the id.
            Some(line)
                if line.ascii
                    && line.end == header.len() + 1
                    && header.first().is_some_and(|b| !b.is_ascii_whitespace()) =>
            {
                let id_end = line
                    .blank
                    .map_or_else(|| header.trim_ascii_end().len(), |blank| blank - 1);
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
        if !is_ascii(line) && std::str::from_utf8(line).is_err() {
            return Err(FastaErrorKind::InvalidUtf8("sequence"));
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
            arrays[ID] = Some(self.id.take(None)?);
        }
        if self.wanted[DESCRIPTION] {
            arrays[DESCRIPTION] = Some(self.description.take(self.description_nulls.finish())?);
        }
        if self.wanted[SEQUENCE] {
            arrays[SEQUENCE] = Some(self.sequence.take(None)?);
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

    pub(super) fn take(
        &mut self,
        nulls: Option<datafusion::arrow::buffer::NullBuffer>,
    ) -> Result<ArrayRef, FastaErrorKind> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let values = std::mem::take(&mut self.values);
        let array = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            nulls,
        )
        .map_err(FastaErrorKind::Arrow)?;
        Ok(Arc::new(array))
    }
}

/// Whether a line (without its `\n`) holds a `\r` anywhere but at its end, where CRLF files
/// have one.
fn has_lone_cr(line: &[u8]) -> bool {
    memchr::memchr(b'\r', line).is_some_and(|i| i + 1 < line.len())
}
