//! Printing query results to standard output, streamed batch by batch (but for `table`, which
//! needs every row to size its columns).

use std::io::{self, Write};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::{ArrayWriter, LineDelimitedWriter};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use super::CliError;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

impl OutputFormat {
    /// `table` on a terminal, `csv` when piped.
    pub fn default_for(stdout_is_terminal: bool) -> Self {
        if stdout_is_terminal { Self::Table } else { Self::Csv }
    }
}

/// Writes every batch of `stream` to `out` in `format`.
pub async fn print(
    mut stream: SendableRecordBatchStream,
    format: OutputFormat,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let mut writer = BatchWriter::new(format, out);
    while let Some(batch) = stream.next().await {
        writer.write(&batch?)?;
    }
    writer.finish()
}

/// One result being printed in one format.
enum BatchWriter<'a, W: Write> {
    Table(Vec<RecordBatch>, &'a mut W),
    Csv(Box<csv::Writer<&'a mut W>>),
    Json(ArrayWriter<&'a mut W>),
    Ndjson(LineDelimitedWriter<&'a mut W>),
}

impl<'a, W: Write> BatchWriter<'a, W> {
    fn new(format: OutputFormat, out: &'a mut W) -> Self {
        match format {
            OutputFormat::Table => Self::Table(Vec::new(), out),
            OutputFormat::Csv => Self::Csv(Box::new(csv::WriterBuilder::new().with_header(true).build(out))),
            OutputFormat::Json => Self::Json(ArrayWriter::new(out)),
            OutputFormat::Ndjson => Self::Ndjson(LineDelimitedWriter::new(out)),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), CliError> {
        match self {
            Self::Table(batches, _) => {
                batches.push(batch.clone());
                Ok(())
            }
            Self::Csv(w) => {
                if let Some(field) = batch.schema().fields().iter().find(|f| f.data_type().is_nested()) {
                    return Err(CliError::Usage {
                        message: format!(
                            "column '{}' is a {}, which CSV cannot hold",
                            field.name(),
                            field.data_type()
                        ),
                        hint: "lists and structs print with --format json or ndjson, or go to -o FILE.parquet",
                    });
                }
                w.write(batch).map_err(arrow_output_error)
            }
            Self::Json(w) => w.write(batch).map_err(arrow_output_error),
            Self::Ndjson(w) => w.write(batch).map_err(arrow_output_error),
        }
    }

    fn finish(self) -> Result<(), CliError> {
        match self {
            Self::Table(batches, out) => {
                let table = pretty_format_batches(&batches).map_err(arrow_output_error)?;
                writeln!(out, "{table}").map_err(CliError::Output)
            }
            Self::Csv(w) => w.into_inner().flush().map_err(CliError::Output),
            Self::Json(mut w) => {
                w.finish().map_err(arrow_output_error)?;
                let out = w.into_inner();
                writeln!(out).map_err(CliError::Output)
            }
            Self::Ndjson(mut w) => w.finish().map_err(arrow_output_error),
        }
    }
}

fn arrow_output_error(e: ArrowError) -> CliError {
    match e {
        ArrowError::IoError(_, e) => CliError::Output(e),
        other => CliError::Output(io::Error::other(other)),
    }
}

/// Lines for standard output, for the commands that print text (`info`, `eval`): a reader that
/// has gone away (`r2dl info | head -3`) ends the output quietly, as for `sql`; any other write
/// error is reported by [`Printer::finish`].
pub struct Printer {
    out: io::StdoutLock<'static>,
    failed: Option<io::Error>,
}

impl Printer {
    /// A printer on standard output.
    pub fn new() -> Self {
        Self {
            out: io::stdout().lock(),
            failed: None,
        }
    }

    /// Writes one line (nothing once a write has failed).
    pub fn line(&mut self, line: std::fmt::Arguments) {
        if self.failed.is_none()
            && let Err(e) = writeln!(self.out, "{line}")
        {
            self.failed = Some(e);
        }
    }

    /// Flushes; a closed pipe is not an error.
    pub fn finish(mut self) -> Result<(), CliError> {
        let result = match self.failed.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        };
        match result {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
            _ => Ok(()),
        }
    }
}
