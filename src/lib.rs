//! r2dl: protein sequences in SQL.
//!
//! FASTA files (plain, gzip, BGZF) become streaming Apache DataFusion tables with the schema
//! `id Utf8 NOT NULL, description Utf8, sequence Utf8 NOT NULL`; Parquet and CSV files with the
//! same columns work through DataFusion's own readers.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::common::Result<()> {
//! let ctx = r2dl::session_context(Default::default())?;
//! let df = ctx.sql("SELECT count(*) AS n FROM 'sample_data/sample.fasta'").await?;
//! let batches = df.collect().await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! # Ok(())
//! # }
//! ```

pub mod datasource;
pub mod fasta;
pub mod model;
pub mod options;
pub mod predictor;
pub mod train;
pub mod udf;

use std::sync::Arc;

use datafusion::catalog::DynamicFileCatalog;
use datafusion::catalog::UrlTableFactory;
use datafusion::common::Result;
use datafusion::datasource::dynamic_file::DynamicListTableFactory;
use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use datasource::{FASTA_EXTENSIONS, FastaFormatFactory, FastaScanFunction, FastaUrlTableFactory};

/// Adds everything r2dl provides to a DataFusion session: the FASTA file format (`STORED AS
/// FASTA`, `COPY … STORED AS FASTA`, extensions `.fasta .fa .faa .fas .fna`), the table
/// function `fasta_scan('path')`, and the model functions (`embed`, and `predict_<name>` for the
/// predictors of `$R2DL_UDFS` and the shipped `udfs/`) run by the default model, which loads on
/// first use ([`udf::register_model_functions`] chooses another); and the `r2dl.*` session
/// options ([`options::R2dlOptions`]).
///
/// File names as tables (`FROM 'x.fasta'`) need a catalog that resolves them: use
/// [`session_context`], or [`enable_file_tables`] on a context of your own.
pub fn register(ctx: &SessionContext) -> Result<()> {
    {
        let state = ctx.state_ref();
        let mut state = state.write();
        options::register_options(state.config_mut().options_mut());
        for extension in FASTA_EXTENSIONS {
            state.register_file_format(Arc::new(FastaFormatFactory::new(extension)), true)?;
            // `CREATE EXTERNAL TABLE … STORED AS FASTA` looks up a table factory by that name
            state
                .table_factories_mut()
                .insert(extension.to_ascii_uppercase(), Arc::new(ListingTableFactory::new()));
        }
    }
    ctx.register_udtf("fasta_scan", Arc::new(FastaScanFunction));
    let catalog = predictor::Catalog::discover(&predictor::catalog_dirs(&[]))
        .map_err(|e| datafusion::common::DataFusionError::External(Box::new(e)))?;
    udf::register_model_functions(ctx, model::ModelSpec::default(), &catalog);
    Ok(())
}

/// Lets queries name files as tables (`FROM 'x.fasta.gz'`, `FROM 'y.parquet'`), with FASTA names
/// handled by r2dl and every other name by DataFusion (like `SessionContext::enable_url_table`).
pub fn enable_file_tables(ctx: SessionContext) -> SessionContext {
    let catalogs = Arc::clone(ctx.state_ref().read().catalog_list());
    let fallback = Arc::new(DynamicListTableFactory::default());
    let factory = Arc::new(FastaUrlTableFactory::new(Arc::clone(&fallback)));
    let catalog_list = Arc::new(DynamicFileCatalog::new(catalogs, factory as Arc<dyn UrlTableFactory>));
    let session_id = ctx.session_id();
    let ctx: SessionContext = ctx
        .into_state_builder()
        .with_session_id(session_id)
        .with_catalog_list(catalog_list)
        .build()
        .into();
    fallback.session_store().with_state(ctx.state_weak_ref());
    ctx
}

/// A session with everything r2dl provides, file names as tables included.
pub fn session_context(config: SessionConfig) -> Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(datasource::LimitedScanBatches))
        .build();
    let ctx = enable_file_tables(SessionContext::new_with_state(state));
    register(&ctx)?;
    Ok(ctx)
}
