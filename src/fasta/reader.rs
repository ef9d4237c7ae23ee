//! Streaming FASTA → Arrow [`RecordBatch`]es with bounded memory.
//!
//! Sequence bytes go straight from the read buffer into the Arrow value buffer: no per-record
//! `String`, no second pass. Only the projected columns are built.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;

use super::columns::Columns;
use super::error::{FastaError, FastaErrorKind, Location};
use super::line_reader::LineReader;
use super::scan::HeaderLine;
use super::schema::{DESCRIPTION, ID, SEQUENCE, fasta_schema};

/// Default number of records per batch (DataFusion's default `batch_size`).
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// A batch is also closed once its string values reach this many bytes, so that batches of long
/// sequences (whole chromosomes) stay bounded in memory.
const MAX_BATCH_BYTES: usize = 64 << 20;

/// Reads FASTA records from `R` as Arrow record batches.
///
/// Accepts multi-line records, CRLF line ends, blank lines and `;` comment lines. The id is the
/// header up to the first space or tab, the description the rest (NULL when empty), the sequence
/// the concatenated sequence lines without spaces, tabs and line breaks, case preserved.
///
/// ```
/// use r2dl::fasta::FastaReader;
/// let data = b">sp|P1 first protein\nMKV\nLLA\n>P2\nGG\n";
/// let batch = FastaReader::new(&data[..], "example.fasta").next_batch()?.unwrap();
/// assert_eq!(batch.num_rows(), 2);
/// # Ok::<(), r2dl::fasta::FastaError>(())
/// ```
pub struct FastaReader<R> {
    lines: LineReader<R>,
    columns: Columns,
    source: Arc<str>,
    schema: SchemaRef,
    /// Output column order, as indices into [`fasta_schema`].
    projection: Vec<usize>,
    batch_size: usize,
    limit: Option<usize>,
    rows_read: usize,
    /// Byte offset at or after which a header ends this reader's range.
    range_end: Option<u64>,
    /// True while lines before the first header belong to the previous byte range.
    skip_to_header: bool,
    /// Line numbers are known only when reading from the start of the stream.
    lines_known: bool,
    /// Whether `R` decompresses gzip (for classifying its I/O errors).
    compressed: bool,
    /// Stream offset before which sequence lines go through the line-by-line path.
    slow_until: u64,
    /// Whether the fast path stopped at a header line, so that the next line is one.
    header_next: bool,
    /// What the fast path saw of that header line.
    header_line: Option<HeaderLine>,
    done: bool,
}

impl<R: Read> FastaReader<R> {
    /// Reads a whole FASTA stream; `source` names it in errors.
    pub fn new(inner: R, source: impl Into<Arc<str>>) -> Self {
        Self::over(LineReader::new(inner, 0), source.into())
    }

    fn over(lines: LineReader<R>, source: Arc<str>) -> Self {
        Self {
            lines,
            columns: Columns::new([true; 3]),
            source,
            schema: fasta_schema(),
            projection: vec![ID, DESCRIPTION, SEQUENCE],
            batch_size: DEFAULT_BATCH_SIZE,
            limit: None,
            rows_read: 0,
            range_end: None,
            skip_to_header: false,
            lines_known: true,
            compressed: false,
            slow_until: 0,
            header_next: false,
            header_line: None,
            done: false,
        }
    }

    /// Reads only the records whose header line starts in `[start, end)` (end `None`: to the
    /// end of the stream). `inner` must yield the stream from byte `start - 1` (from byte 0 when
    /// `start` is 0): that byte tells whether `start` begins a line.
    pub fn with_range(inner: R, source: impl Into<Arc<str>>, start: u64, end: Option<u64>) -> io::Result<Self> {
        Self::in_range(
            LineReader::new(inner, start.saturating_sub(1)),
            source.into(),
            start,
            end,
        )
    }

    /// `lines` must begin at stream offset `start - 1` (0 when `start` is 0).
    fn in_range(lines: LineReader<R>, source: Arc<str>, start: u64, end: Option<u64>) -> io::Result<Self> {
        let mut reader = Self::over(lines, source);
        reader.range_end = end;
        if start > 0 {
            // Drop the rest of the line that contains byte `start - 1`.
            reader.lines.next_line()?;
            reader.skip_to_header = true;
            reader.lines_known = false;
        }
        Ok(reader)
    }

    /// Records per batch (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Build only these columns of [`fasta_schema`], in this order.
    ///
    /// # Panics
    /// If an index is not a column of [`fasta_schema`] (0, 1 or 2).
    pub fn with_projection(mut self, projection: Vec<usize>) -> Self {
        let mut wanted = [false; 3];
        for &i in &projection {
            wanted[i] = true;
        }
        self.columns = Columns::new(wanted);
        self.schema = Arc::new(
            fasta_schema()
                .project(&projection)
                .expect("projection indices are within the FASTA schema"),
        );
        self.projection = projection;
        self
    }

    /// Stop after this many records.
    pub fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }

    /// Declares that `R` decompresses gzip, so that its data errors are reported as such.
    pub fn with_compressed(mut self, compressed: bool) -> Self {
        self.compressed = compressed;
        self
    }

    /// The schema of the batches this reader returns.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The next batch, or `None` once the input (or the range, or the limit) is exhausted.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, FastaError> {
        while !self.done {
            if self.columns.in_record
                && !std::mem::take(&mut self.header_next)
                && self.sequence_block().map_err(|e| self.io_error(e))?
            {
                continue;
            }
            let Some((start, end)) = self.lines.next_line().map_err(|e| self.io_error(e))? else {
                self.finish_record()?;
                self.done = true;
                break;
            };
            let line = &self.lines.buf()[start..end];
            match line.first() {
                Some(b'>') => {
                    if self.range_end.is_some_and(|end| self.lines.line_offset() >= end) {
                        self.finish_record()?;
                        self.done = true;
                        break;
                    }
                    self.skip_to_header = false;
                    self.finish_record()?;
                    if self.limit.is_some_and(|limit| self.rows_read >= limit) {
                        self.done = true;
                        break;
                    }
                    if self.columns.rows >= self.batch_size || self.columns.bytes() >= MAX_BATCH_BYTES {
                        self.lines.unread();
                        break;
                    }
                    let line = &self.lines.buf()[start..end];
                    let known = self.header_line.take();
                    if let Err(kind) = self.columns.start_record(&line[1..], known) {
                        return Err(self.error(kind));
                    }
                }
                Some(b';') => {}
                _ if self.columns.in_record => {
                    if let Err(kind) = self.columns.append_sequence(line) {
                        return Err(self.error(kind));
                    }
                }
                _ if self.skip_to_header || line.trim_ascii().is_empty() => {}
                _ => {
                    let found = String::from_utf8_lossy(&line[..line.len().min(40)]).into_owned();
                    return Err(self.error(FastaErrorKind::MissingHeader { found }));
                }
            }
        }
        self.columns
            .take_batch(&self.schema, &self.projection)
            .map_err(|kind| self.error(kind))
    }

    /// The fast path for the sequence lines up to the next header: checked for anything
    /// unusual (non-ASCII, spaces, tabs, CR, `;`) in one vectorised pass, then copied segment by
    /// segment. Returns whether it consumed anything; blocks with unusual bytes go through the
    /// line-by-line path instead, which reports errors with their exact line.
    fn sequence_block(&mut self) -> io::Result<bool> {
        let position = self.lines.position();
        if position < self.slow_until {
            return Ok(false);
        }
        let wanted = self.columns.wanted[SEQUENCE];
        let (block, scan) = self.lines.peek_block(wanted)?;
        if block.is_empty() {
            return Ok(false);
        }
        if !scan.ascii || (wanted && scan.unusual) {
            self.slow_until = position + block.len() as u64;
            return Ok(false);
        }
        // the last line of the stream may lack its line break
        let lines = scan.newlines + u64::from(block.last() != Some(&b'\n'));
        if wanted {
            self.columns.append_sequence_lines(block, scan.newlines);
        }
        let len = block.len();
        self.header_next = scan.header;
        self.header_line = scan.header_line;
        self.lines
            .consume(len, lines, scan.header_line.map(|line| len + line.end));
        Ok(true)
    }

    fn finish_record(&mut self) -> Result<(), FastaError> {
        if self.columns.in_record {
            self.columns.finish_record().map_err(|kind| self.error(kind))?;
            self.rows_read += 1;
        }
        Ok(())
    }

    fn io_error(&self, e: io::Error) -> FastaError {
        let corrupt = matches!(
            e.kind(),
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
        );
        // The failure is in the data after the last complete line.
        let mut error = self.error(if self.compressed && corrupt {
            FastaErrorKind::Gzip(e)
        } else {
            FastaErrorKind::Io(e)
        });
        error.location.line = error.location.line.map(|line| line + 1);
        error
    }

    fn error(&self, kind: FastaErrorKind) -> FastaError {
        let record = self
            .columns
            .in_record
            .then(|| String::from_utf8_lossy(&self.columns.current_id).into_owned());
        FastaError {
            location: Location {
                source: Arc::clone(&self.source),
                line: self.lines_known.then(|| self.lines.lines()),
                offset: self.lines.line_offset(),
                record,
            },
            kind,
        }
    }
}

impl FastaReader<File> {
    /// [`Self::with_range`] for a local, uncompressed file, read through a memory map instead
    /// of `read` calls: no copy out of the page cache; 16 MiB windows, the next one mapped on a
    /// helper thread while the reader reads the current one. If another process truncates the
    /// file while a window of it is read, the process receives `SIGBUS`; use
    /// [`Self::with_range`] where that matters.
    pub fn mapped(file: File, source: impl Into<Arc<str>>, start: u64, end: Option<u64>) -> io::Result<Self> {
        Self::in_range(
            LineReader::mapped(file, start.saturating_sub(1)),
            source.into(),
            start,
            end,
        )
    }
}

impl<R: Read> Iterator for FastaReader<R> {
    type Item = Result<RecordBatch, FastaError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};

    use super::*;

    /// (id, description, sequence) of every row of every batch.
    fn rows(batches: &[RecordBatch]) -> Vec<(String, Option<String>, String)> {
        let mut out = Vec::new();
        for batch in batches {
            let (ids, descriptions, sequences) = (
                batch.column(0).as_string::<i32>(),
                batch.column(1).as_string::<i32>(),
                batch.column(2).as_string::<i32>(),
            );
            for i in 0..batch.num_rows() {
                let description = descriptions.is_valid(i).then(|| descriptions.value(i).to_string());
                out.push((ids.value(i).to_string(), description, sequences.value(i).to_string()));
            }
        }
        out
    }

    fn read_all(data: &[u8]) -> Result<Vec<RecordBatch>, FastaError> {
        FastaReader::new(data, "test.fasta").collect()
    }

    fn row(id: &str, description: Option<&str>, sequence: &str) -> (String, Option<String>, String) {
        (id.into(), description.map(Into::into), sequence.into())
    }

    /// Found by the `fasta_reader` fuzz target: a header whose id is followed by a form feed and
    /// tabs only. Read whole, the body scan saw the header line and the id kept the form feed;
    /// read from the header's byte range, the header was trimmed first and the id lost it.
    #[test]
    fn an_id_before_trailing_whitespace_is_the_same_read_whole_or_in_ranges() {
        let data = b">P1\nMK\n>P\x01\0\0\0\0\0\0\x0c\t\t\n \x04\nMKV\n";
        let whole = rows(&read_all(data).unwrap());
        assert_eq!(whole[1].0, "P\u{1}\0\0\0\0\0\0");
        let mut parts = Vec::new();
        for (start, end) in [(0u64, 6u64), (6, 8), (8, data.len() as u64)] {
            let from = start.saturating_sub(1) as usize;
            let reader = FastaReader::with_range(&data[from..], "test.fasta", start, Some(end)).unwrap();
            parts.extend(rows(&reader.collect::<Result<Vec<_>, _>>().unwrap()));
        }
        assert_eq!(parts, whole);
    }

    #[test]
    fn parses_multiline_records_with_crlf_comments_and_blank_lines() {
        let data = b";c\r\n\r\n>sp|P1|X first  protein \r\nMKV\r\n\r\nlla\r\n;inner\r\n>P2\r\nG G\r\n>P3 empty\n";
        let got = rows(&read_all(data).unwrap());
        assert_eq!(
            got,
            vec![
                row("sp|P1|X", Some("first  protein"), "MKVlla"),
                row("P2", None, "GG"),
                row("P3", Some("empty"), ""),
            ]
        );
    }

    #[test]
    fn empty_inputs_have_no_rows() {
        assert!(read_all(b"").unwrap().is_empty());
        assert!(read_all(b"\n\n;only a comment\n").unwrap().is_empty());
    }

    #[test]
    fn batch_size_limit_and_projection_are_honoured() {
        let data: Vec<u8> = (0..10)
            .flat_map(|i| format!(">r{i} d\nAC\nGT\n").into_bytes())
            .collect();
        let batches: Vec<_> = FastaReader::new(&data[..], "t")
            .with_batch_size(3)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert_eq!(rows(&batches)[9], row("r9", Some("d"), "ACGT"));

        assert!(
            FastaReader::new(&data[..], "t")
                .with_limit(Some(0))
                .next_batch()
                .unwrap()
                .is_none()
        );
        let limited: Vec<_> = FastaReader::new(&data[..], "t")
            .with_batch_size(4)
            .with_limit(Some(5))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(limited.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);

        let batch = FastaReader::new(&data[..], "t")
            .with_projection(vec![SEQUENCE, ID])
            .next_batch()
            .unwrap()
            .unwrap();
        assert_eq!(batch.schema().field(0).name(), "sequence");
        assert_eq!(batch.column(1).as_string::<i32>().value(2), "r2");

        let counted = FastaReader::new(&data[..], "t")
            .with_projection(vec![])
            .next_batch()
            .unwrap()
            .unwrap();
        assert_eq!((counted.num_columns(), counted.num_rows()), (0, 10));
    }

    #[test]
    fn errors_name_source_line_and_record() {
        let err = read_all(b">P1\nMK\n>P2 x\nMK\xffV\n").unwrap_err();
        assert!(matches!(err.kind, FastaErrorKind::InvalidUtf8("sequence")));
        assert_eq!(
            err.to_string(),
            "test.fasta:4 (record 'P2'): invalid UTF-8 in a sequence line"
        );

        let err = read_all(b"\nMKV\n>P1\n").unwrap_err();
        assert_eq!(err.location.line, Some(2));
        assert!(matches!(err.kind, FastaErrorKind::MissingHeader { .. }));

        let err = read_all(b">P1\nMK\n>\t\nMKV\n").unwrap_err();
        assert!(matches!(err.kind, FastaErrorKind::EmptyId));
        assert_eq!(err.location.line, Some(3));
        // a CR inside a header line the body scan described; one before the line break is a
        // CRLF line end
        let err = read_all(b">P1\nMK\n>P2\rx\nMKV\n").unwrap_err();
        assert!(matches!(err.kind, FastaErrorKind::LoneCarriageReturn));
        assert_eq!(err.location.line, Some(3));
        let batches = read_all(b">P1\nMK\n>P2 x\r\nMKV\n").unwrap();
        assert_eq!(rows(&batches), vec![row("P1", None, "MK"), row("P2", Some("x"), "MKV")]);
    }

    /// The rows of `data` in `[start, end)` read through a map of `window` bytes at a time.
    fn mapped_rows(
        data: &[u8],
        window: usize,
        start: u64,
        end: Option<u64>,
    ) -> Result<Vec<(String, Option<String>, String)>, FastaError> {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, data).unwrap();
        let lines = LineReader::<File>::mapped(file, start.saturating_sub(1)).with_capacity(window);
        let reader = FastaReader::in_range(lines, "t".into(), start, end).unwrap();
        Ok(rows(&reader.collect::<Result<Vec<_>, _>>()?))
    }

    #[test]
    fn mapped_files_read_like_streams_across_window_boundaries() {
        let data =
            b";c\r\n\r\n>sp|P1|X first  protein \r\nMKV\r\n\r\nlla\r\n;inner\r\n>P2\r\nG G\r\n>P3 empty\n>P4\nAC\nGT";
        let whole = rows(&read_all(data).unwrap());
        assert_eq!(whole.len(), 4);
        for window in [1, 2, 3, 7, 64, 1 << 20] {
            assert_eq!(mapped_rows(data, window, 0, None).unwrap(), whole, "window {window}");
            for split in 1..data.len() as u64 {
                let mut got = mapped_rows(data, window, 0, Some(split)).unwrap();
                got.extend(mapped_rows(data, window, split, None).unwrap());
                assert_eq!(got, whole, "window {window}, split at {split}");
            }
        }
        assert!(mapped_rows(b"", 4, 0, None).unwrap().is_empty());
        let err = mapped_rows(b">P1\nMK\n>P2 x\nMK\xffV\n", 3, 0, None).unwrap_err();
        assert_eq!(err.to_string(), "t:4 (record 'P2'): invalid UTF-8 in a sequence line");
    }

    #[test]
    fn byte_ranges_partition_the_records() {
        let data = b">a 1\nAAAA\nAA\n>b\nCC\n>c 3\nGGGG\n>d\nTT";
        let whole = rows(&read_all(data).unwrap());
        for split in 0..=data.len() as u64 {
            let first = FastaReader::with_range(&data[..], "t", 0, Some(split)).unwrap();
            let skip = split.saturating_sub(1) as usize;
            let second = FastaReader::with_range(&data[skip..], "t", split, None).unwrap();
            let mut got = rows(&first.collect::<Result<Vec<_>, _>>().unwrap());
            got.extend(rows(&second.collect::<Result<Vec<_>, _>>().unwrap()));
            assert_eq!(got, whole, "split at {split}");
        }
    }
}
