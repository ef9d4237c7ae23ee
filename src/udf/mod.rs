//! SQL functions over the model: `embed(sequence [, predictor])` and `predict_<name>(sequence)`
//! for every predictor of the catalog.

mod embed;
mod predict;
mod theta_pass;

use crate::options::invalid_residue_policy;
pub use embed::EmbedFunction;
pub use predict::{PredictFunction, prediction_array, prediction_type};
pub use theta_pass::{ThetaModel, theta_model, theta_passes};

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

use crate::model::{ModelError, ModelSpec};
use crate::predictor::Catalog;

/// Registers the model functions, run by the model `spec` names (loaded on first use): `embed`,
/// and `predict_<name>` for each predictor of `catalog` (whose weights load on first use); and
/// the `r2dl.*` session options.
pub fn register_model_functions(ctx: &SessionContext, spec: ModelSpec, catalog: &Catalog) {
    {
        let state = ctx.state_ref();
        crate::options::register_options(state.write().config_mut().options_mut());
    }
    for entry in catalog.entries() {
        ctx.register_udf(ScalarUDF::from(PredictFunction::new(entry, spec.clone())));
        if let Some(sibling) = PredictFunction::sibling(entry, spec.clone()) {
            ctx.register_udf(ScalarUDF::from(sibling));
        }
    }
    ctx.register_udf(ScalarUDF::from(EmbedFunction::new(spec, catalog)));
}

/// Whether `name` is one of r2dl's model functions (`embed`, `predict_*`).
pub fn is_model_function(name: &str) -> bool {
    name == "embed" || name.starts_with("predict_")
}

/// The string types a sequence column may have.
pub(crate) const SEQUENCE_TYPES: [DataType; 3] = [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View];

/// The values of a string column of any of [`SEQUENCE_TYPES`].
pub(crate) fn sequences(array: &ArrayRef) -> Result<Vec<Option<&str>>> {
    if let Some(a) = array.as_string_opt::<i32>() {
        Ok(a.iter().collect())
    } else if let Some(a) = array.as_string_opt::<i64>() {
        Ok(a.iter().collect())
    } else if let Some(a) = array.as_string_view_opt() {
        Ok(a.iter().collect())
    } else {
        exec_err!("sequences must be strings, not {}", array.data_type())
    }
}

/// A model error as DataFusion carries it.
pub(crate) fn model_error(error: ModelError) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}
