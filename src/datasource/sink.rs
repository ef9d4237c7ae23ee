//! `COPY … TO 'out.fasta'` and `INSERT INTO` a FASTA table: DataFusion's file-writing machinery
//! with a FASTA serializer.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::write::BatchSerializer;
use datafusion::datasource::file_format::write::demux::DemuxedStreamReceiver;
use datafusion::datasource::file_format::write::orchestration::spawn_writer_tasks_and_join;
use datafusion::datasource::physical_plan::{FileSink, FileSinkConfig};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use object_store::ObjectStore;

use crate::fasta::FastaWriter;

/// Serialises batches (columns `id`, `sequence`, optional `description`) as FASTA text.
#[derive(Debug, Default)]
pub struct FastaSerializer {
    writer: FastaWriter,
}

impl FastaSerializer {
    /// A serialiser wrapping sequences at `line_width`.
    pub fn new(line_width: usize) -> Self {
        Self {
            writer: FastaWriter::new(line_width),
        }
    }
}

impl BatchSerializer for FastaSerializer {
    fn serialize(&self, batch: RecordBatch, _initial: bool) -> Result<Bytes> {
        let mut out = Vec::with_capacity(batch.get_array_memory_size() + 64 * batch.num_rows());
        self.writer
            .write_batch(&batch, &mut out)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Bytes::from(out))
    }
}

/// The [`DataSink`] of FASTA output.
pub struct FastaSink {
    config: FileSinkConfig,
    line_width: usize,
    compression: FileCompressionType,
}

impl FastaSink {
    /// A sink writing with `config`, wrapping sequences at `line_width`.
    pub fn new(config: FileSinkConfig, line_width: usize, compression: FileCompressionType) -> Self {
        Self {
            config,
            line_width,
            compression,
        }
    }
}

impl fmt::Debug for FastaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastaSink")
            .field("line_width", &self.line_width)
            .finish()
    }
}

impl DisplayAs for FastaSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FastaSink(file={})", self.config.original_url)
    }
}

#[async_trait]
impl FileSink for FastaSink {
    fn config(&self) -> &FileSinkConfig {
        &self.config
    }

    async fn spawn_writer_tasks_and_join(
        &self,
        context: &Arc<TaskContext>,
        demux_task: SpawnedTask<Result<()>>,
        file_stream_rx: DemuxedStreamReceiver,
        object_store: Arc<dyn ObjectStore>,
    ) -> Result<u64> {
        let serializer = Arc::new(FastaSerializer::new(self.line_width));
        spawn_writer_tasks_and_join(
            context,
            serializer,
            self.compression,
            None,
            object_store,
            demux_task,
            file_stream_rx,
        )
        .await
    }
}

#[async_trait]
impl DataSink for FastaSink {
    fn schema(&self) -> &SchemaRef {
        self.config.output_schema()
    }

    async fn write_all(&self, data: SendableRecordBatchStream, context: &Arc<TaskContext>) -> Result<u64> {
        FileSink::write_all(self, data, context).await
    }
}
