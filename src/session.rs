//! The composition root: the one place that says what r2dl adds to a DataFusion session.
//!
//! [`R2dl`] holds the choices (which model runs the functions, where predictors are found) and
//! adds to a [`SessionStateBuilder`]: the FASTA file format and its `STORED AS` factories, the
//! table function `fasta_scan`, the `r2dl.*` options, the model functions (`embed`,
//! `predict_<name>`), the physical rule that stops scans early under a `LIMIT`, and the query
//! planner that runs model queries as one partition (on a cluster: as byte ranges spread over
//! the executors). The CLI, the tests and embedders all build
//! their sessions here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::catalog::TableFunction;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::datasource::{
    FASTA_EXTENSIONS, FastaFormatFactory, FastaScanFunction, FastaTableFactory, LimitedScanBatches,
};
use crate::predictor::{Catalog, PredictorError, catalog_dirs};
use crate::runtime::ModelSpec;
use crate::udf::{BrokenPredictorFunction, EmbedFunction, LengthFunction, ModelQueryPlanner, PredictFunction};

/// What r2dl adds to a session, and with which model and predictors.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> datafusion::common::Result<()> {
/// use datafusion::prelude::SessionConfig;
///
/// let ctx = r2dl::R2dl::new().session_context(SessionConfig::new())?;
/// let batches = ctx.sql("SELECT count(*) FROM 'sample_data/sample.fasta'").await?.collect().await?;
/// assert_eq!(batches[0].num_rows(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct R2dl {
    model: ModelSpec,
    udf_dirs: Vec<PathBuf>,
    catalog: Option<Catalog>,
    distributed: bool,
}

impl R2dl {
    /// The default model (loaded on first use) and the predictors found by [`catalog_dirs`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the model functions with the model `model` names.
    pub fn with_model(mut self, model: ModelSpec) -> Self {
        self.model = model;
        self
    }

    /// Searches `dirs` for predictors before `$R2DL_UDFS` and the default places (see
    /// [`catalog_dirs`]).
    pub fn with_udf_dirs(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> Self {
        self.udf_dirs.extend(dirs);
        self
    }

    /// Serves exactly the predictors of `catalog`, with no search.
    pub fn with_catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Plans model queries for a cluster (`true`) rather than for one process (the default):
    /// see [`ModelQueryPlanner::distributed`].
    pub fn distributed(mut self, distributed: bool) -> Self {
        self.distributed = distributed;
        self
    }

    /// The model that runs the functions.
    pub fn model(&self) -> &ModelSpec {
        &self.model
    }

    /// The predictors served: the catalog given, or those found under the search folders
    /// (manifests only; weights load on a function's first use).
    pub fn catalog(&self) -> Result<Catalog, PredictorError> {
        match &self.catalog {
            Some(catalog) => Ok(catalog.clone()),
            None => Catalog::discover(&catalog_dirs(&self.udf_dirs)),
        }
    }

    /// The model functions: `predict_<name>` (and `predict_<name>_probabilities` where a
    /// predictor has classes) for each predictor of the catalog, and `embed`.
    pub fn functions(&self) -> Result<Vec<Arc<ScalarUDF>>> {
        let catalog = self.catalog().map_err(|e| DataFusionError::External(Box::new(e)))?;
        let mut functions = Vec::new();
        for entry in catalog.entries() {
            functions.push(Arc::new(ScalarUDF::from(PredictFunction::new(
                entry,
                self.model.clone(),
            ))));
            if let Some(sibling) = PredictFunction::sibling(entry, self.model.clone()) {
                functions.push(Arc::new(ScalarUDF::from(sibling)));
            }
        }
        for entry in catalog.broken() {
            functions.push(Arc::new(ScalarUDF::from(BrokenPredictorFunction::new(entry))));
        }
        functions.push(Arc::new(ScalarUDF::from(EmbedFunction::new(
            self.model.clone(),
            &catalog,
        ))));
        Ok(functions)
    }

    /// Adds everything r2dl provides to `builder` (which should already hold DataFusion's
    /// defaults, as [`SessionStateBuilder::with_default_features`] gives): the FASTA format
    /// (`STORED AS FASTA`, `COPY … STORED AS FASTA`, extensions `.fasta .fa .faa .fas .fna`),
    /// `fasta_scan('path')`, the `r2dl.*` options, the model functions, `length` (DataFusion's,
    /// reading a scan's residues from their offsets: [`LengthFunction`]), the scan-limit rule and
    /// the one-partition planner for model queries (wrapping any planner already set).
    pub fn configure(&self, mut builder: SessionStateBuilder) -> Result<SessionStateBuilder> {
        let config = builder.config().get_or_insert_with(SessionConfig::new);
        crate::options::register_options(config.options_mut());

        let formats = builder.file_formats().get_or_insert_with(Vec::new);
        for extension in FASTA_EXTENSIONS {
            formats.push(Arc::new(FastaFormatFactory::new(extension)));
        }
        // `CREATE EXTERNAL TABLE … STORED AS FASTA` looks up a table factory by that name
        let tables = builder.table_factories().get_or_insert_with(HashMap::new);
        for extension in FASTA_EXTENSIONS {
            tables.insert(extension.to_ascii_uppercase(), Arc::new(FastaTableFactory::default()));
        }
        builder.table_functions().get_or_insert_with(HashMap::new).insert(
            "fasta_scan".into(),
            Arc::new(TableFunction::new("fasta_scan".into(), Arc::new(FastaScanFunction))),
        );

        let mut functions = self.functions()?;
        // in place of DataFusion's `length`: the same, without re-reading a scan's residues
        functions.push(Arc::new(ScalarUDF::from(LengthFunction::default())));
        builder
            .scalar_functions()
            .get_or_insert_with(Vec::new)
            .extend(functions);

        let inner = builder.query_planner().take();
        let planner = if self.distributed {
            ModelQueryPlanner::distributed(inner)
        } else {
            ModelQueryPlanner::new(inner)
        };
        Ok(builder
            .with_physical_optimizer_rule(Arc::new(LimitedScanBatches))
            .with_query_planner(Arc::new(planner)))
    }

    /// A session with DataFusion's defaults, everything r2dl provides, and file names as tables
    /// (`FROM 'x.fasta.gz'`, `FROM 'y.parquet'`).
    pub fn session_context(&self, config: SessionConfig) -> Result<SessionContext> {
        let builder = SessionStateBuilder::new().with_config(config).with_default_features();
        let ctx = SessionContext::new_with_state(self.configure(builder)?.build());
        Ok(crate::enable_file_tables(ctx))
    }
}
