//! How r2dl's parts travel between a Ballista client, its scheduler and its executors.
//!
//! Ballista sends plans as DataFusion protobuf. What DataFusion's own encoding does not know is
//! r2dl's: FASTA tables in logical plans ([`FastaTable`]), FASTA scans in physical plans
//! (`DataSourceExec` over [`FastaSource`]: files, byte ranges, compression, the mmap flag) and
//! the model functions. [`R2dlLogicalCodec`] and [`R2dlPhysicalCodec`] encode those as an
//! r2dl message behind a magic prefix and hand everything else to Ballista's own codecs.
//!
//! A model function travels by name, with the SHA-256 of every file that decides its results
//! (the base model's weights, each predictor's manifest and weights). The receiving process
//! serves the function only if its own files hash the same; otherwise the query fails with an
//! error naming the function, the file and both hashes — never a result from other weights.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::config::ExtensionOptions;
use datafusion::common::parsers::CompressionTypeVariant;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::physical_plan::{FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::from_proto::{parse_protobuf_file_scan_config, parse_table_schema_from_proto};
use datafusion_proto::physical_plan::to_proto::serialize_file_scan_config;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use prost::Message;

use super::ClusterError;
use crate::datasource::{FastaFormat, FastaOptions, FastaSink, FastaSource, FastaTable};
use crate::model::sha256_file;
use crate::udf::{EmbedFunction, PredictFunction};

/// Marks an r2dl message; anything else is Ballista's or DataFusion's.
const MAGIC: &[u8] = b"r2dl\x01";

/// The r2dl messages (protobuf, like the plans around them).
mod wire {
    /// One r2dl message.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(oneof = "Kind", tags = "1, 2, 3")]
        pub kind: Option<Kind>,
    }

    /// What the message holds (one decoded at a time, so the size of the largest is no cost).
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        FastaScan(FastaScan),
        #[prost(message, tag = "2")]
        FastaTable(FastaTable),
        #[prost(message, tag = "3")]
        Function(Function),
    }

    /// A FASTA scan: DataFusion's file scan configuration (files, byte ranges, projection,
    /// limit, batch size) and what it leaves out.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FastaScan {
        #[prost(message, optional, tag = "1")]
        pub base_conf: Option<datafusion_proto::protobuf::FileScanExecConf>,
        /// DataFusion's name of the compression (`GZIP`, `UNCOMPRESSED`…).
        #[prost(string, tag = "2")]
        pub compression: String,
        #[prost(bool, tag = "3")]
        pub mmap: bool,
    }

    /// A FASTA table: its paths and format options.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FastaTable {
        #[prost(string, repeated, tag = "1")]
        pub paths: Vec<String>,
        #[prost(string, tag = "2")]
        pub extension: String,
        #[prost(string, tag = "3")]
        pub file_extension: String,
        #[prost(message, repeated, tag = "4")]
        pub options: Vec<Setting>,
    }

    /// One option, as a key and its text.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Setting {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A model function: the hash of each file that decides its results.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(message, repeated, tag = "1")]
        pub files: Vec<WeightFile>,
    }

    /// One file of a model function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WeightFile {
        /// What the file is ("base model", "predictor predict_amp weights").
        #[prost(string, tag = "1")]
        pub role: String,
        #[prost(string, tag = "2")]
        pub sha256: String,
    }
}

/// Writes `kind` as an r2dl message.
fn encode(kind: wire::Kind, buf: &mut Vec<u8>) {
    buf.extend_from_slice(MAGIC);
    wire::Node { kind: Some(kind) }
        .encode(buf)
        .unwrap_or_else(|_| unreachable!("a Vec grows"));
}

/// The r2dl message in `buf`, `None` when `buf` is not one.
fn decode(buf: &[u8]) -> Result<Option<wire::Kind>> {
    let Some(body) = buf.strip_prefix(MAGIC) else {
        return Ok(None);
    };
    let node = wire::Node::decode(body).map_err(|e| ClusterError::Message(e.to_string()))?;
    match node.kind {
        Some(kind) => Ok(Some(kind)),
        None => Err(ClusterError::Message("an r2dl message with nothing in it".into()).into()),
    }
}

/// The files that decide a model function's results; `None` for other functions.
fn weight_files(udf: &ScalarUDF) -> Option<Result<Vec<(String, PathBuf)>>> {
    let inner: &dyn Any = udf.inner().as_ref();
    if let Some(function) = inner.downcast_ref::<PredictFunction>() {
        return Some(function.weight_files());
    }
    inner.downcast_ref::<EmbedFunction>().map(EmbedFunction::weight_files)
}

/// The SHA-256 of `path`, computed once per file version (size and modification time).
fn cached_sha256(path: &Path) -> Result<String, ClusterError> {
    type Key = (PathBuf, u64, Option<SystemTime>);
    static HASHES: OnceLock<Mutex<HashMap<Key, String>>> = OnceLock::new();
    let meta = std::fs::metadata(path).map_err(|source| ClusterError::WeightFile {
        path: path.to_path_buf(),
        source,
    })?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    let hashes = HASHES.get_or_init(Default::default);
    if let Some(hash) = hashes.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(hash.clone());
    }
    let hash = sha256_file(path).map_err(|e| ClusterError::WeightFile {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    hashes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, hash.clone());
    Ok(hash)
}

/// The hashes of a model function's files, in the order the function lists them.
fn fingerprint(files: Vec<(String, PathBuf)>) -> Result<wire::Function, ClusterError> {
    let files = files
        .into_iter()
        .map(|(role, path)| {
            Ok(wire::WeightFile {
                role,
                sha256: cached_sha256(&path)?,
            })
        })
        .collect::<Result<_, ClusterError>>()?;
    Ok(wire::Function { files })
}

/// This process's model functions, served to plans from other processes only where their
/// weights hash the same.
#[derive(Debug, Clone, Default)]
struct Functions {
    by_name: HashMap<String, Arc<ScalarUDF>>,
}

impl Functions {
    fn new(functions: &[Arc<ScalarUDF>]) -> Self {
        let by_name = functions
            .iter()
            .filter(|f| weight_files(f).is_some())
            .map(|f| (f.name().to_string(), Arc::clone(f)))
            .collect();
        Self { by_name }
    }

    /// Encodes a model function's fingerprint; other functions are left to the caller.
    fn encode(&self, udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<bool> {
        let Some(files) = weight_files(udf) else {
            return Ok(false);
        };
        encode(wire::Kind::Function(fingerprint(files?)?), buf);
        Ok(true)
    }

    /// The function a plan names: this process's, if `buf` is r2dl's message about it (and
    /// the weights agree), else whatever `other` (Ballista's codec) makes of it.
    fn decode_udf(
        &self,
        name: &str,
        buf: &[u8],
        other: impl FnOnce() -> Result<Arc<ScalarUDF>>,
    ) -> Result<Arc<ScalarUDF>> {
        match decode(buf)? {
            Some(wire::Kind::Function(sent)) => self.decode(name, &sent),
            Some(_) => {
                Err(ClusterError::Message(format!("function {name} came with a message of another kind")).into())
            }
            None => other(),
        }
    }

    /// This process's function `name`, if its weights are those `sent` describes.
    fn decode(&self, name: &str, sent: &wire::Function) -> Result<Arc<ScalarUDF>> {
        let Some(udf) = self.by_name.get(name) else {
            let mut served: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            served.sort_unstable();
            return Err(ClusterError::MissingFunction {
                function: name.to_string(),
                served: served.join(", "),
            }
            .into());
        };
        let files = weight_files(udf).unwrap_or_else(|| Ok(Vec::new()))?;
        let here = fingerprint(files.clone())?;
        if here.files.len() != sent.files.len() {
            return Err(ClusterError::WeightsDiffer {
                function: name.to_string(),
                detail: format!(
                    "the sender's depends on {} files ({}), this process's on {} ({})",
                    sent.files.len(),
                    roles(&sent.files),
                    here.files.len(),
                    roles(&here.files)
                ),
            }
            .into());
        }
        for ((mine, theirs), (_, path)) in here.files.iter().zip(&sent.files).zip(&files) {
            if mine != theirs {
                return Err(ClusterError::WeightsDiffer {
                    function: name.to_string(),
                    detail: format!(
                        "{} is {} here ({}), {} at the sender ({})",
                        mine.role,
                        short(&mine.sha256),
                        path.display(),
                        short(&theirs.sha256),
                        theirs.role
                    ),
                }
                .into());
            }
        }
        Ok(Arc::clone(udf))
    }
}

fn roles(files: &[wire::WeightFile]) -> String {
    files.iter().map(|f| f.role.as_str()).collect::<Vec<_>>().join(", ")
}

/// The first 12 hex digits of a hash, as errors show it.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// The logical plan codec: FASTA tables and model functions, everything else by Ballista's.
#[derive(Debug, Default)]
pub struct R2dlLogicalCodec {
    functions: Functions,
    ballista: BallistaLogicalExtensionCodec,
}

impl R2dlLogicalCodec {
    /// A codec serving `functions` (those of [`crate::R2dl::functions`]) to incoming plans.
    pub fn new(functions: &[Arc<ScalarUDF>]) -> Self {
        Self {
            functions: Functions::new(functions),
            ballista: BallistaLogicalExtensionCodec::default(),
        }
    }
}

impl LogicalExtensionCodec for R2dlLogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match decode(buf)? {
            Some(wire::Kind::FastaTable(table)) => decode_fasta_table(&table, schema),
            Some(_) => Err(ClusterError::Message(format!("table {table_ref} is not a FASTA table message")).into()),
            None => self.ballista.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<FastaTable>() {
            Some(table) => {
                encode(wire::Kind::FastaTable(encode_fasta_table(table)?), buf);
                Ok(())
            }
            None => self.ballista.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.functions
            .decode_udf(name, buf, || self.ballista.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.functions.encode(node, buf)? {
            return Ok(());
        }
        self.ballista.try_encode_udf(node, buf)
    }
}

/// A [`FastaTable`] as a message: its paths and format options.
fn encode_fasta_table(table: &FastaTable) -> Result<wire::FastaTable> {
    let listing = table.listing();
    let options = listing.options();
    if !options.table_partition_cols.is_empty() {
        return Err(ClusterError::Unsupported("partitioned FASTA tables (PARTITIONED BY)".into()).into());
    }
    let format = table.format()?;
    let settings = format
        .options()
        .entries()
        .into_iter()
        .filter_map(|entry| entry.value.map(|value| wire::Setting { key: entry.key, value }))
        .collect();
    Ok(wire::FastaTable {
        paths: listing.table_paths().iter().map(|p| p.as_str().to_string()).collect(),
        extension: datafusion::datasource::file_format::FileFormat::get_ext(format),
        file_extension: options.file_extension.clone(),
        options: settings,
    })
}

/// The table a [`wire::FastaTable`] describes, with the schema the plan gives it.
fn decode_fasta_table(table: &wire::FastaTable, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let settings = table.options.iter().map(|s| (s.key.clone(), s.value.clone())).collect();
    let format = FastaFormat::new(&table.extension).with_options(FastaOptions::from_key_values(&settings)?);
    let paths = table
        .paths
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(&table.file_extension);
    let config = ListingTableConfig::new_with_multi_paths(paths)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(FastaTable::new(Arc::new(ListingTable::try_new(config)?))))
}

/// The physical plan codec: FASTA scans and model functions, everything else by Ballista's.
#[derive(Debug, Default)]
pub struct R2dlPhysicalCodec {
    functions: Functions,
    ballista: BallistaPhysicalExtensionCodec,
}

impl R2dlPhysicalCodec {
    /// A codec serving `functions` (those of [`crate::R2dl::functions`]) to incoming plans.
    pub fn new(functions: &[Arc<ScalarUDF>]) -> Self {
        Self {
            functions: Functions::new(functions),
            ballista: BallistaPhysicalExtensionCodec::default(),
        }
    }
}

/// The file scan configuration of `plan`, if it is a scan over [`FastaSource`].
fn fasta_scan(plan: &dyn ExecutionPlan) -> Option<(&FileScanConfig, &FastaSource)> {
    let scan = plan.downcast_ref::<DataSourceExec>()?;
    let config = scan.data_source().downcast_ref::<FileScanConfig>()?;
    let source: &dyn Any = config.file_source().as_ref();
    Some((config, source.downcast_ref::<FastaSource>()?))
}

impl PhysicalExtensionCodec for R2dlPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let scan = match decode(buf)? {
            Some(wire::Kind::FastaScan(scan)) => scan,
            Some(_) => return Err(ClusterError::Message("a plan node of an unknown r2dl kind".into()).into()),
            None => return self.ballista.try_decode(buf, inputs, ctx, proto_converter),
        };
        let Some(conf) = scan.base_conf.as_ref() else {
            return Err(ClusterError::Message("a FASTA scan without its file scan configuration".into()).into());
        };
        let source = FastaSource::new(parse_table_schema_from_proto(conf)?).with_mmap(scan.mmap);
        let decode_ctx = PhysicalPlanDecodeContext::new(ctx, self);
        let config = parse_protobuf_file_scan_config(conf, &decode_ctx, proto_converter, Arc::new(source))?;
        let compression: CompressionTypeVariant = scan.compression.parse()?;
        let config = FileScanConfigBuilder::from(config)
            .with_file_compression_type(compression.into())
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(sink) = node.downcast_ref::<DataSinkExec>()
            && (sink.sink() as &dyn Any).downcast_ref::<FastaSink>().is_some()
        {
            return Err(ClusterError::Unsupported(
                "writing FASTA (COPY … STORED AS FASTA, -o x.fasta); write Parquet or CSV there, or run without --cluster"
                    .into(),
            )
            .into());
        }
        let Some((config, source)) = fasta_scan(node.as_ref()) else {
            return self.ballista.try_encode(node, buf, proto_converter);
        };
        let scan = wire::FastaScan {
            base_conf: Some(serialize_file_scan_config(config, self, proto_converter)?),
            compression: config.file_compression_type.get_variant().to_string(),
            mmap: source.mmap(),
        };
        encode(wire::Kind::FastaScan(scan), buf);
        Ok(())
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.functions
            .decode_udf(name, buf, || self.ballista.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if self.functions.encode(node, buf)? {
            return Ok(());
        }
        self.ballista.try_encode_udf(node, buf)
    }
}

impl From<ClusterError> for DataFusionError {
    fn from(error: ClusterError) -> Self {
        DataFusionError::External(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionConfig;
    use datafusion_proto::physical_plan::AsExecutionPlan;
    use datafusion_proto::protobuf::PhysicalPlanNode;

    use super::*;
    use crate::R2dl;

    fn functions(udfs: PathBuf) -> Vec<Arc<ScalarUDF>> {
        R2dl::new().with_udf_dirs([udfs]).functions().expect("functions")
    }

    /// The physical plan of `sql` in a session of r2dl's, through the codec and back, as text.
    async fn round_trip(sql: &str) -> (String, String) {
        let r2dl = R2dl::new().with_udf_dirs([PathBuf::from("udfs")]);
        let ctx = r2dl
            .session_context(SessionConfig::new().with_target_partitions(3))
            .expect("session");
        ctx.sql("SET datafusion.optimizer.repartition_file_min_size = 0")
            .await
            .expect("set");
        let plan = ctx
            .sql(sql)
            .await
            .expect("plans")
            .create_physical_plan()
            .await
            .expect("physical");
        let codec = R2dlPhysicalCodec::new(&r2dl.functions().expect("functions"));
        let node = PhysicalPlanNode::try_from_physical_plan(Arc::clone(&plan), &codec).expect("encodes");
        let decoded = node.try_into_physical_plan(&ctx.task_ctx(), &codec).expect("decodes");
        let text = |p: &Arc<dyn ExecutionPlan>| displayable(p.as_ref()).indent(true).to_string();
        (text(&plan), text(&decoded))
    }

    #[tokio::test]
    async fn fasta_scans_survive_the_codec_with_ranges_and_compression() {
        for sql in [
            "SELECT id, length(sequence) FROM 'sample_data/sample.fasta' WHERE length(sequence) > 30 LIMIT 7",
            "SELECT count(*) FROM 'tests/data/valid/multi_member.fasta.gz'",
        ] {
            let (before, after) = round_trip(sql).await;
            assert!(before.contains("file_type=fasta"), "{before}");
            assert_eq!(before, after, "{sql}");
        }
    }

    #[test]
    fn model_functions_carry_their_weights_and_differing_weights_fail() {
        let shipped = functions(PathBuf::from("udfs"));
        let sender = Functions::new(&shipped);
        let toxicity = shipped
            .iter()
            .find(|f| f.name() == "predict_toxicity")
            .expect("shipped");
        let mut buf = Vec::new();
        assert!(sender.encode(toxicity, &mut buf).expect("encodes"));
        let Some(wire::Kind::Function(sent)) = decode(&buf).expect("an r2dl message") else {
            panic!("a function message");
        };
        assert_eq!(sent.files.len(), 3, "{sent:?}");
        // the same files: served
        assert_eq!(
            sender.decode("predict_toxicity", &sent).expect("same weights").name(),
            "predict_toxicity"
        );

        // a copy of the predictor whose manifest differs by one byte: refused, naming the file
        let dir = tempfile::tempdir().expect("temp dir");
        let copy = dir.path().join("toxicity");
        std::fs::create_dir(&copy).expect("mkdir");
        for file in ["manifest.json", "predictor.safetensors"] {
            std::fs::copy(PathBuf::from("udfs/toxicity").join(file), copy.join(file)).expect("copy");
        }
        let manifest = copy.join("manifest.json");
        let mut text = std::fs::read_to_string(&manifest).expect("manifest");
        text.push('\n');
        std::fs::write(&manifest, text).expect("write");
        let receiver = Functions::new(&functions(dir.path().to_path_buf()));
        let error = receiver
            .decode("predict_toxicity", &sent)
            .expect_err("other weights")
            .to_string();
        assert!(error.contains("predict_toxicity manifest"), "{error}");

        // a function the receiver does not serve
        let error = receiver
            .decode("predict_nothing", &sent)
            .expect_err("unknown")
            .to_string();
        assert!(error.contains("serves no function predict_nothing"), "{error}");

        // other functions are not r2dl's to encode
        let upper = datafusion::functions::string::upper();
        assert!(!sender.encode(&upper, &mut Vec::new()).expect("not ours"));
    }

    #[test]
    fn messages_without_the_prefix_are_not_ours_and_damaged_ones_are_errors() {
        assert!(decode(b"\x0a\x02hi").expect("not ours").is_none());
        let mut damaged = MAGIC.to_vec();
        damaged.extend_from_slice(&[0x0a, 0xff]);
        assert!(decode(&damaged).is_err());
    }
}
