//! One FASTA table over a file, a directory or a glob: the provider behind `FROM 'x.fasta'`,
//! `fasta_scan('path')` and `CREATE EXTERNAL TABLE … STORED AS FASTA`.

use std::any::Any;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{Constraints, DataFusionError, Result, Statistics, internal_err, plan_err};
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{CreateExternalTable, Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::file_format::{FASTA_EXTENSIONS, FastaFormat};
use crate::fasta::fasta_schema;

/// Whether a file name ends in a FASTA extension, optionally followed by `.gz` or `.bgz`.
pub fn is_fasta_name(name: &str) -> bool {
    extension_of(name, &FASTA_EXTENSIONS, &[".gz", ".bgz"]).is_some()
}

/// Which of `extensions` the (case-insensitive) file name ends in, optionally followed by one
/// of the `compressions` suffixes.
pub(super) fn extension_of<'e>(name: &str, extensions: &[&'e str], compressions: &[&str]) -> Option<&'e str> {
    let name = name.to_ascii_lowercase();
    let stem = compressions
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    extensions
        .iter()
        .find(|ext| stem.strip_suffix(**ext).is_some_and(|rest| rest.ends_with('.')))
        .copied()
}

fn is_gzip_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".gz") || name.ends_with(".bgz")
}

/// A FASTA table over `location`: a file (any name), a glob, a URL of a registered object store,
/// or a local directory (its files with FASTA names, see [`is_fasta_name`]).
pub fn fasta_table(location: &str) -> Result<Arc<dyn TableProvider>> {
    let local = !location.contains("://");
    let paths = if local && Path::new(location).is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(location)? {
            let path = entry?.path();
            if path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(is_fasta_name) {
                files.push(path);
            }
        }
        if files.is_empty() {
            let extensions = FASTA_EXTENSIONS.join(", .");
            return plan_err!("no FASTA files (.{extensions}, optionally .gz) in directory '{location}'");
        }
        files.sort();
        files
            .iter()
            .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
            .collect::<Result<Vec<_>>>()?
    } else {
        if local && !location.contains(['*', '?', '[']) {
            match std::fs::metadata(location) {
                Err(_) => return plan_err!("no such file: '{location}'"),
                Ok(meta) if !meta.is_file() => {
                    return plan_err!(
                        "'{location}' is not a regular file (a pipe, socket or device): tables are read from files, \
                         in byte ranges and possibly more than once; save the stream to a file first"
                    );
                }
                Ok(_) => {}
            }
        }
        vec![ListingTableUrl::parse(location)?]
    };
    // Gzip is detected from the content; naming it here keeps DataFusion from splitting the
    // compressed file into byte ranges.
    let compression = if paths.iter().all(|p| is_gzip_name(p.as_str())) {
        FileCompressionType::GZIP
    } else {
        FileCompressionType::UNCOMPRESSED
    };
    let format = FastaFormat::new("fasta").with_compression(compression);
    let options = ListingOptions::new(Arc::new(format)).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(paths)
        .with_listing_options(options)
        .with_schema(fasta_schema());
    Ok(Arc::new(FastaTable::new(Arc::new(ListingTable::try_new(config)?))))
}

/// A FASTA table: a [`ListingTable`] whose format is [`FastaFormat`], under a type of its own so
/// that a plan carrying it can be sent to another process (DataFusion's plan serialisation knows
/// only its own file formats; r2dl's cluster codec knows this type). It reads, plans and writes
/// exactly as the listing table it holds.
#[derive(Debug)]
pub struct FastaTable {
    listing: Arc<ListingTable>,
}

impl FastaTable {
    /// Wraps `listing`, a listing table over FASTA files.
    pub fn new(listing: Arc<ListingTable>) -> Self {
        Self { listing }
    }

    /// The listing table: its paths and options.
    pub fn listing(&self) -> &ListingTable {
        &self.listing
    }

    /// The [`FastaFormat`] the table reads with.
    pub fn format(&self) -> Result<&FastaFormat> {
        match self.listing.options().format.as_ref().downcast_ref::<FastaFormat>() {
            Some(format) => Ok(format),
            None => internal_err!("a FASTA table whose format is not FASTA"),
        }
    }
}

#[async_trait]
impl TableProvider for FastaTable {
    fn schema(&self) -> SchemaRef {
        self.listing.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.listing.constraints()
    }

    fn table_type(&self) -> TableType {
        self.listing.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.listing.get_table_definition()
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.listing.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.listing.get_column_default(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.listing.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: datafusion::catalog::ScanArgs<'a>,
    ) -> Result<datafusion::catalog::ScanResult> {
        self.listing.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.listing.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.listing.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.listing.insert_into(state, input, insert_op).await
    }
}

/// `CREATE EXTERNAL TABLE … STORED AS FASTA`: DataFusion's listing-table factory, its table held
/// as a [`FastaTable`].
#[derive(Debug, Default)]
pub struct FastaTableFactory {
    listing: ListingTableFactory,
}

#[async_trait]
impl TableProviderFactory for FastaTableFactory {
    async fn create(&self, state: &dyn Session, cmd: &CreateExternalTable) -> Result<Arc<dyn TableProvider>> {
        let table: Arc<dyn Any + Send + Sync> = self.listing.create(state, cmd).await?;
        match table.downcast::<ListingTable>() {
            Ok(listing) => Ok(Arc::new(FastaTable::new(listing))),
            Err(_) => Err(DataFusionError::Internal(
                "DataFusion's listing-table factory made something other than a listing table".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_fasta_names() {
        for name in ["a.fasta", "b.FA", "x/y.faa.gz", "p.fna.bgz", "q.fas"] {
            assert!(is_fasta_name(name), "{name}");
        }
        for name in ["a.fastq", "fasta", "a.parquet", "a.csv.gz", "afa", "x.gz"] {
            assert!(!is_fasta_name(name), "{name}");
        }
    }
}
