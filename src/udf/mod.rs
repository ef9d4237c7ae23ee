//! SQL functions over the model: `embed(sequence [, predictor])` and `predict_<name>(sequence)`
//! for every predictor of the catalog.

mod broken;
mod embed;
mod length;
mod planner;
mod predict;
mod theta_pass;

use crate::options::invalid_residue_policy;
pub use broken::BrokenPredictorFunction;
pub use embed::EmbedFunction;
pub use length::LengthFunction;
pub use planner::{ModelQueryPlanner, calls_model};
pub use predict::{PredictFunction, prediction_array, prediction_type};
pub use theta_pass::{ThetaModel, theta_model, theta_passes};

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, exec_err};

use crate::model::ModelError;

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

/// A model error as DataFusion carries it; a bad residue gets the session option that gets
/// past it.
pub(crate) fn model_error(error: ModelError) -> DataFusionError {
    if matches!(error, ModelError::InvalidResidue { .. }) {
        return DataFusionError::Execution(format!(
            "{error}; SET r2dl.invalid_residue = 'null' or 'unknown' to skip such sequences or read such residues as X"
        ));
    }
    DataFusionError::External(Box::new(error))
}
