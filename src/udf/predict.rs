//! `predict_<name>(sequence)`: a trained predictor from the catalog as a SQL function. Binary
//! predictors return the positive class's probability (Float32), multi-class ones the most
//! probable label (Utf8), regressions the value (Float64); NULL in, NULL out.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float32Array, Float64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::theta_pass::{ThetaModel, theta_model};
use super::{SEQUENCE_TYPES, invalid_residue_policy};
use crate::model::{ModelSpec, shared_model};
use crate::predictor::catalog::shared_predictor;
use crate::predictor::{CatalogEntry, Kind, Predictions, Predictor};

/// `predict_<name>(sequence)` for one predictor of the catalog.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PredictFunction {
    name: String,
    dir: PathBuf,
    kind: Kind,
    spec: ModelSpec,
    signature: Signature,
}

impl PredictFunction {
    /// The function of catalog entry `entry`, run by the model `spec` names.
    pub fn new(entry: &CatalogEntry, spec: ModelSpec) -> Self {
        Self {
            name: format!("predict_{}", entry.manifest.name),
            dir: entry.dir.clone(),
            kind: entry.manifest.kind,
            spec,
            signature: Signature::uniform(1, SEQUENCE_TYPES.to_vec(), Volatility::Immutable),
        }
    }
}

/// A predictor's weights and the model with its Θ, both loaded once per process; the predictor
/// checked against the base model.
pub(crate) fn loaded_predictor(dir: &std::path::Path, spec: &ModelSpec) -> Result<(Arc<Predictor>, Arc<ThetaModel>)> {
    let external = |e: crate::predictor::PredictorError| DataFusionError::External(Box::new(e));
    let predictor = shared_predictor(dir).map_err(external)?;
    let base = shared_model(spec).map_err(super::model_error)?;
    predictor.check_base_model(&base).map_err(external)?;
    let model = theta_model(spec, &predictor.theta).map_err(super::model_error)?;
    Ok((predictor, model))
}

/// The SQL type of a predictor's results.
pub fn prediction_type(kind: Kind) -> DataType {
    match kind {
        Kind::Binary => DataType::Float32,
        Kind::Multiclass => DataType::Utf8,
        Kind::Regression => DataType::Float64,
    }
}

/// Predictions as an Arrow column of [`prediction_type`].
pub fn prediction_array(predictor: &Predictor, predictions: &Predictions) -> ArrayRef {
    let rows = predictions
        .values
        .chunks_exact(predictions.width)
        .zip(&predictions.valid);
    let manifest = &predictor.manifest;
    match manifest.kind {
        Kind::Binary => {
            let positive = manifest.positive_index().unwrap_or(1);
            Arc::new(rows.map(|(p, &ok)| ok.then_some(p[positive])).collect::<Float32Array>())
        }
        Kind::Multiclass => Arc::new(
            rows.map(|(p, &ok)| {
                ok.then(|| {
                    let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
                    manifest.labels[best].as_str()
                })
            })
            .collect::<StringArray>(),
        ),
        Kind::Regression => Arc::new(
            rows.map(|(p, &ok)| ok.then_some(f64::from(p[0])))
                .collect::<Float64Array>(),
        ),
    }
}

impl ScalarUDFImpl for PredictFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(prediction_type(self.kind))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let policy = invalid_residue_policy(&args.config_options)?;
        let [input] = args.args.as_slice() else {
            return exec_err!("{} takes one argument, the sequence", self.name);
        };
        let scalar = matches!(input, ColumnarValue::Scalar(_));
        let array = input.to_array(if scalar { 1 } else { args.number_rows })?;
        let (predictor, model) = loaded_predictor(&self.dir, &self.spec)?;
        let embeddings = model.embed(&array, policy)?;
        let result = prediction_array(&predictor, &predictor.outputs(&embeddings));
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?))
        } else {
            Ok(ColumnarValue::Array(result))
        }
    }
}
