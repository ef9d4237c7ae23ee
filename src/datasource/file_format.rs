//! [`FastaFormat`]: FASTA as a DataFusion file format (`STORED AS FASTA`, listing tables, `COPY`).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{GetExt, Result, Statistics, not_impl_err};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder, FileSinkConfig, FileSource};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr_common::sort_expr::LexRequirement;
use datafusion::physical_plan::ExecutionPlan;
use object_store::{ObjectMeta, ObjectStore};

use super::options::FastaOptions;
use super::sink::FastaSink;
use super::source::FastaSource;
use crate::fasta::fasta_schema;
use crate::options::fasta_mmap;

/// File extensions read as FASTA (each also with `.gz` or `.bgz`).
pub const FASTA_EXTENSIONS: [&str; 5] = ["fasta", "fa", "faa", "fas", "fna"];

/// Creates [`FastaFormat`]s; one factory is registered per extension in [`FASTA_EXTENSIONS`].
#[derive(Debug)]
pub struct FastaFormatFactory {
    extension: String,
}

impl FastaFormatFactory {
    /// A factory for files named `*.{extension}` (and `STORED AS {extension}`).
    pub fn new(extension: impl Into<String>) -> Self {
        Self {
            extension: extension.into(),
        }
    }
}

impl FileFormatFactory for FastaFormatFactory {
    fn create(&self, _state: &dyn Session, options: &HashMap<String, String>) -> Result<Arc<dyn FileFormat>> {
        let options = FastaOptions::from_key_values(options)?;
        Ok(Arc::new(FastaFormat::new(&self.extension).with_options(options)))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(FastaFormat::new(&self.extension))
    }
}

impl GetExt for FastaFormatFactory {
    fn get_ext(&self) -> String {
        self.extension.clone()
    }
}

/// FASTA files as a table of `id, description, sequence`; see [`crate::fasta::FastaReader`].
///
/// Gzip input is recognised by its content, so the `compression` setting matters only for
/// which files a directory listing picks (`*.fasta` or `*.fasta.gz`) and for output.
#[derive(Debug, Clone)]
pub struct FastaFormat {
    extension: String,
    options: FastaOptions,
}

impl FastaFormat {
    /// A format for files named `*.{extension}` with the default [`FastaOptions`] (uncompressed,
    /// written at 60 residues a line).
    pub fn new(extension: &str) -> Self {
        Self {
            extension: extension.to_string(),
            options: FastaOptions::default(),
        }
    }

    /// The same format with `options`.
    pub fn with_options(mut self, options: FastaOptions) -> Self {
        self.options = options;
        self
    }

    /// The same format with another compression type.
    pub fn with_compression(mut self, compression: FileCompressionType) -> Self {
        self.options.compression = compression.into();
        self
    }

    /// The format's options.
    pub fn options(&self) -> &FastaOptions {
        &self.options
    }

    fn compression(&self) -> FileCompressionType {
        self.options.compression.into()
    }
}

#[async_trait]
impl FileFormat for FastaFormat {
    fn get_ext(&self) -> String {
        self.extension.clone()
    }

    fn get_ext_with_compression(&self, compression: &FileCompressionType) -> Result<String> {
        Ok(format!("{}{}", self.extension, compression.get_ext()))
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        Some(self.compression())
    }

    async fn infer_schema(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        _objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        Ok(fasta_schema())
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        _object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(Statistics::new_unknown(&table_schema))
    }

    async fn create_physical_plan(&self, state: &dyn Session, conf: FileScanConfig) -> Result<Arc<dyn ExecutionPlan>> {
        let mut builder = FileScanConfigBuilder::from(conf.clone()).with_file_compression_type(self.compression());
        let source: &dyn Any = conf.file_source().as_ref();
        if let Some(source) = source.downcast_ref::<FastaSource>() {
            let mmap = fasta_mmap(state.config_options())?;
            builder = builder.with_source(Arc::new(source.clone().with_mmap(mmap)));
        }
        let conf = builder.build();
        Ok(DataSourceExec::from_data_source(conf))
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        _state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if conf.insert_op != InsertOp::Append {
            return not_impl_err!("only appending is supported for FASTA output, not {}", conf.insert_op);
        }
        let sink = Arc::new(FastaSink::new(conf, self.options.line_width, self.compression()));
        Ok(Arc::new(DataSinkExec::new(input, sink, order_requirements)))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(FastaSource::new(table_schema))
    }
}
