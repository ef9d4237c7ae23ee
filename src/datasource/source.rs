//! [`FastaSource`] and its opener: one file (or one byte range of a file) → a stream of batches,
//! parsed on a blocking thread so that DataFusion's async workers never wait on I/O or parsing.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileOpenFuture, FileOpener, FileScanConfig, FileSource};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::stream::{BoxStream, StreamExt};
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, path::Path as ObjectPath};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::fasta::{
    BoxRead, DEFAULT_BATCH_SIZE, ExpectedLength, FastaError, FastaErrorKind, FastaReader, GZIP_MAGIC, check_bgzf_end,
    check_scan_path, count_newlines, decompress,
};

/// Batches in flight between the parsing thread and the consumer of one file stream.
const CHANNEL_DEPTH: usize = 2;

/// The [`FileSource`] of FASTA scans.
#[derive(Clone)]
pub struct FastaSource {
    table_schema: TableSchema,
    projection: SplitProjection,
    batch_size: Option<usize>,
    /// Whether plain local files are read through a memory map (see [`FastaReader::mapped`]).
    mmap: bool,
    metrics: ExecutionPlanMetricsSet,
}

impl FastaSource {
    /// A source over files with the given (FASTA) table schema.
    pub fn new(table_schema: TableSchema) -> Self {
        Self {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            batch_size: None,
            mmap: true,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    /// The same source, reading plain local files through a memory map or not (default: it does).
    pub fn with_mmap(mut self, mmap: bool) -> Self {
        self.mmap = mmap;
        self
    }

    /// Whether plain local files are read through a memory map.
    pub fn mmap(&self) -> bool {
        self.mmap
    }
}

impl FileSource for FastaSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let opener = Arc::new(FastaOpener {
            object_store,
            projection: self.projection.file_indices.clone(),
            batch_size: self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            limit: base_config.limit,
            mmap: self.mmap,
        });
        ProjectionOpener::try_new(self.projection.clone(), opener, self.table_schema.file_schema())
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut source = self.clone();
        source.batch_size = Some(batch_size);
        Arc::new(source)
    }

    fn try_pushdown_projection(&self, projection: &ProjectionExprs) -> Result<Option<Arc<dyn FileSource>>> {
        let mut source = self.clone();
        let merged = self.projection.source.try_merge(projection)?;
        source.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(source)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "fasta"
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }
}

/// Opens one FASTA file or byte range; see [`FastaReader::with_range`] for the range rule.
struct FastaOpener {
    object_store: Arc<dyn ObjectStore>,
    /// Columns of the FASTA schema to build.
    projection: Vec<usize>,
    batch_size: usize,
    limit: Option<usize>,
    mmap: bool,
}

/// What one opener task reads.
struct ScanPlan {
    projection: Vec<usize>,
    batch_size: usize,
    limit: Option<usize>,
    /// `[start, end)` of the byte range, `None` for the whole file.
    range: Option<(u64, u64)>,
    /// The file's size when the scan was planned.
    size: u64,
    mmap: bool,
}

impl FileOpener for FastaOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.object_store);
        let plan = ScanPlan {
            projection: self.projection.clone(),
            batch_size: self.batch_size,
            limit: self.limit,
            range: file
                .range
                .as_ref()
                .map(|r| (r.start.max(0) as u64, r.end.max(0) as u64)),
            size: file.object_meta.size,
            mmap: self.mmap,
        };
        let location = file.object_meta.location.clone();
        Ok(Box::pin(async move {
            let start = plan.range.map_or(0, |(start, _)| start);
            if start > 0 && is_gzip_object(&store, &location).await? {
                // A compressed file cannot be split: the range that starts at 0 reads all of it.
                return Ok(futures::stream::empty().boxed());
            }
            let options = GetOptions {
                range: (start > 0).then(|| GetRange::Offset(start - 1)),
                ..GetOptions::default()
            };
            let result = store.get_opts(&location, options).await?;
            let offset = result.range.start;
            let input = match result.payload {
                GetResultPayload::File(mut file, path) => {
                    file.seek(SeekFrom::Start(offset))?;
                    Input::File { file, path, offset }
                }
                GetResultPayload::Stream(stream) => Input::Stream {
                    name: location.to_string(),
                    stream: Box::new(StreamRead {
                        stream,
                        chunk: Bytes::new(),
                        handle: Handle::current(),
                    }),
                },
            };
            let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
            tokio::task::spawn_blocking(move || scan(input, plan, &tx));
            Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) }).boxed())
        }))
    }
}

/// Where a scan's bytes come from.
enum Input {
    /// A local file, positioned at `offset`, the first byte to read.
    File {
        file: File,
        path: std::path::PathBuf,
        offset: u64,
    },
    /// Any other object store.
    Stream { name: String, stream: BoxRead },
}

impl Input {
    /// The input's name in messages.
    fn name(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::Stream { name, .. } => name.clone(),
        }
    }
}

/// The batches of one file or range.
type Batches = Box<dyn Iterator<Item = Result<RecordBatch, FastaError>>>;

/// Parses one file or range, sending batches until done, failed or no longer wanted.
fn scan(input: Input, plan: ScanPlan, tx: &mpsc::Sender<Result<RecordBatch>>) {
    let local_path = match &input {
        Input::File { path, .. } => Some(path.clone()),
        Input::Stream { .. } => None,
    };
    let resolve = |e: FastaError| match &local_path {
        Some(path) => e.resolve_line(|offset| count_newlines(File::open(path)?, offset)),
        None => e,
    };
    let batches = match open_reader(input, &plan) {
        Ok(batches) => batches,
        Err(e) => {
            let _ = tx.blocking_send(Err(DataFusionError::External(Box::new(e))));
            return;
        }
    };
    for batch in batches {
        let batch = batch.map_err(|e| DataFusionError::External(Box::new(resolve(e))));
        let failed = batch.is_err();
        if tx.blocking_send(batch).is_err() || failed {
            return;
        }
    }
}

fn open_reader(input: Input, plan: &ScanPlan) -> Result<Batches, FastaError> {
    if let Err(message) = check_scan_path() {
        return Err(FastaError::in_source(&input.name(), FastaErrorKind::ScanPath(message)));
    }
    let (name, read): (String, BoxRead) = match input {
        Input::File { mut file, path, offset } => {
            let name = path.display().to_string();
            let at = |e| io_error(&name, e);
            if offset == 0 {
                check_bgzf_end(&mut file).map_err(at)?;
            }
            if plan.mmap && is_plain_regular_file(&file, plan.range).map_err(at)? {
                let (start, end) = plan.range.map_or((0, None), |(start, end)| (start, Some(end)));
                let reader = FastaReader::mapped(file, name.as_str(), start, end).map_err(at)?;
                return Ok(Box::new(configure(reader, plan)));
            }
            let expected = plan.size.saturating_sub(offset);
            (name, Box::new(ExpectedLength::new(file, expected)))
        }
        Input::Stream { name, stream } => (name, stream),
    };
    let at = |e| io_error(&name, e);
    let reader = match plan.range {
        Some((start, end)) if start > 0 => {
            FastaReader::with_range(read, name.as_str(), start, Some(end)).map_err(at)?
        }
        range => {
            let (read, gzip) = decompress(read).map_err(at)?;
            // Byte ranges refer to the file on disk, which for gzip is not the text parsed.
            let end = range.map(|(_, end)| end).filter(|_| !gzip);
            FastaReader::with_range(read, name.as_str(), 0, end)
                .map_err(at)?
                .with_compressed(gzip)
        }
    };
    Ok(Box::new(configure(reader, plan)))
}

/// Whether `file` (positioned where `range` starts) is a regular file that is not gzip: the kind
/// [`FastaReader::mapped`] reads. Ranges that start past 0 are never gzip (see the opener).
fn is_plain_regular_file(file: &File, range: Option<(u64, u64)>) -> io::Result<bool> {
    if !file.metadata()?.is_file() {
        return Ok(false);
    }
    if range.is_some_and(|(start, _)| start > 0) {
        return Ok(true);
    }
    let mut magic = Vec::with_capacity(2);
    let mut reader = file;
    reader.take(2).read_to_end(&mut magic)?;
    reader.seek(SeekFrom::Start(0))?;
    Ok(magic != GZIP_MAGIC)
}

fn configure<R: Read>(reader: FastaReader<R>, plan: &ScanPlan) -> FastaReader<R> {
    reader
        .with_projection(plan.projection.clone())
        .with_batch_size(plan.batch_size)
        .with_limit(plan.limit)
}

fn io_error(name: &str, e: io::Error) -> FastaError {
    FastaError::in_source(name, FastaErrorKind::Io(e))
}

async fn is_gzip_object(store: &Arc<dyn ObjectStore>, location: &ObjectPath) -> Result<bool> {
    let head = store.get_range(location, 0..2).await?;
    Ok(head.as_ref() == GZIP_MAGIC)
}

/// A blocking [`Read`] over an object-store byte stream (for stores other than local files).
struct StreamRead {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    handle: Handle,
}

impl Read for StreamRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
