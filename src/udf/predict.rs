//! `predict_<name>(sequence)`: a trained predictor from the catalog as a SQL function. Binary
//! predictors return the positive class's probability (Float32), multi-class ones the most
//! probable label (Utf8), regressions the value (Float64), per-residue ones a string of the
//! sequence's length with the most probable class letter of each residue (Utf8); NULL in, NULL
//! out. A per-residue predictor also has `predict_<name>_probabilities(sequence)`: per residue, a
//! struct of each class's probability (`List<Struct<label: Float32, …>>`); a multi-class one
//! `predict_<name>_top(sequence, k)`: the k most probable labels with their probabilities
//! (`List<Struct<label: Utf8, probability: Float32>>`, most probable first).

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float32Array, Float64Array, ListArray, StringArray, StructArray};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::theta_pass::{ThetaModel, theta_model};
use super::{SEQUENCE_TYPES, invalid_residue_policy, model_error, sequences};
use crate::model::ResidueOutputs;
use crate::predictor::{CatalogEntry, Kind, MANIFEST_FILE, Predictions, Predictor, WEIGHTS_FILE, mean_residue_outputs};
use crate::runtime::shared_predictor;
use crate::runtime::{ModelSpec, run_on_compute_pool, shared_model};

/// What a predictor's SQL function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    /// `predict_<name>(sequence)`: the prediction.
    Prediction,
    /// `predict_<name>_probabilities(sequence)` (per-residue): each residue's class probabilities.
    ResidueProbabilities,
    /// `predict_<name>_top(sequence, k)` (multi-class): the k most probable labels.
    Top,
}

/// `predict_<name>(sequence)`, or one of its siblings, for one predictor of the catalog.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PredictFunction {
    name: String,
    dir: PathBuf,
    kind: Kind,
    /// The class labels (names of the probability fields).
    labels: Vec<String>,
    mode: Mode,
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
            labels: entry.manifest.labels.clone(),
            mode: Mode::Prediction,
            spec,
            signature: Signature::uniform(1, SEQUENCE_TYPES.to_vec(), Volatility::Immutable),
        }
    }

    /// The sibling function of catalog entry `entry`, if its kind has one:
    /// `predict_<name>_probabilities(sequence)` of a per-residue predictor (each residue's class
    /// probabilities), `predict_<name>_top(sequence, k)` of a multi-class one (the k most
    /// probable labels with their probabilities).
    pub fn sibling(entry: &CatalogEntry, spec: ModelSpec) -> Option<Self> {
        let name = &entry.manifest.name;
        match entry.manifest.kind {
            Kind::Residue => Some(Self {
                name: format!("predict_{name}_probabilities"),
                mode: Mode::ResidueProbabilities,
                ..Self::new(entry, spec)
            }),
            Kind::Multiclass => {
                let signatures = SEQUENCE_TYPES
                    .iter()
                    .map(|sequence| TypeSignature::Exact(vec![sequence.clone(), DataType::Int64]))
                    .collect();
                Some(Self {
                    name: format!("predict_{name}_top"),
                    mode: Mode::Top,
                    signature: Signature::one_of(signatures, Volatility::Immutable),
                    ..Self::new(entry, spec)
                })
            }
            Kind::Binary | Kind::Regression => None,
        }
    }

    /// The files whose contents decide what this function returns: the base model's weights,
    /// the predictor's manifest and weights, each with a name saying what it is (an ensemble's
    /// manifest pins its further members' manifests, and each of those its weights).
    pub fn weight_files(&self) -> Result<Vec<(String, PathBuf)>> {
        let model = self.spec.resolve_dir().map_err(model_error)?;
        Ok(vec![
            ("base model".into(), model.join("model.safetensors")),
            (
                format!("predictor {} manifest", self.name),
                self.dir.join(MANIFEST_FILE),
            ),
            (format!("predictor {} weights", self.name), self.dir.join(WEIGHTS_FILE)),
        ])
    }

    /// Per-residue predictions of a column: the class letters, or the probabilities.
    fn residues(&self, array: &ArrayRef, policy: crate::model::InvalidResidue) -> Result<ArrayRef> {
        let (predictor, models) = loaded_predictor(&self.dir, &self.spec)?;
        let values = sequences(array)?;
        let predict = |(member, model): (&Predictor, &Arc<ThetaModel>)| {
            run_on_compute_pool(|| member.predict_residues(model.model(), values.iter().copied(), policy))
                .map_err(|e| DataFusionError::External(Box::new(e)))
        };
        let mut parts = predictor.members().zip(&models).map(predict);
        let first = parts
            .next()
            .ok_or_else(|| DataFusionError::Internal("a predictor without members".into()))??;
        let outputs = mean_residue_outputs(first, parts.collect::<Result<Vec<_>>>()?);
        if self.mode == Mode::ResidueProbabilities {
            return residue_probabilities(&self.labels, &outputs);
        }
        Ok(Arc::new(
            outputs
                .rows
                .iter()
                .zip(&values)
                .map(|(row, sequence)| {
                    let (row, sequence) = (row.as_deref()?, (*sequence)?);
                    Some(predictor.residue_classes(sequence, row))
                })
                .collect::<StringArray>(),
        ))
    }
}

/// The fields of one residue's probabilities: one `Float32` per class label.
fn residue_fields(labels: &[String]) -> Fields {
    labels
        .iter()
        .map(|label| Field::new(label, DataType::Float32, false))
        .collect()
}

/// The item field of `predict_<name>_probabilities`' lists.
fn residue_item(labels: &[String]) -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Struct(residue_fields(labels)), false))
}

/// The fields of one `predict_<name>_top` entry: a label and its probability.
fn top_fields() -> Fields {
    Fields::from(vec![
        Field::new("label", DataType::Utf8, false),
        Field::new("probability", DataType::Float32, false),
    ])
}

/// The item field of `predict_<name>_top`'s lists.
fn top_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Struct(top_fields()), false))
}

/// The `k` most probable labels of each row with their probabilities, most probable first (ties
/// in label order), as a column of `List<Struct<label, probability>>`; NULL where a row has no
/// prediction.
fn top_labels(labels: &[String], predictions: &Predictions, k: usize) -> Result<ArrayRef> {
    let (mut names, mut probabilities, mut offsets) = (Vec::new(), Vec::new(), vec![0i32]);
    let rows = predictions
        .values
        .chunks_exact(predictions.width)
        .zip(&predictions.valid);
    for (p, &valid) in rows {
        if valid {
            let mut order: Vec<usize> = (0..p.len()).collect();
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
            for &class in order.iter().take(k) {
                names.push(labels[class].as_str());
                probabilities.push(p[class]);
            }
        }
        offsets.push(
            i32::try_from(names.len())
                .map_err(|_| DataFusionError::Execution("more labels in one batch than a list column holds".into()))?,
        );
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(Float32Array::from(probabilities)),
    ];
    Ok(Arc::new(ListArray::try_new(
        top_item(),
        OffsetBuffer::new(offsets.into()),
        Arc::new(StructArray::try_new(top_fields(), columns, None)?),
        Some(NullBuffer::from(predictions.valid.clone())),
    )?))
}

/// The type of `predict_<name>_probabilities`: a list with a struct of the class probabilities
/// per residue.
fn residue_probabilities_type(labels: &[String]) -> DataType {
    DataType::List(residue_item(labels))
}

/// Per-residue probabilities as a column of [`residue_probabilities_type`].
fn residue_probabilities(labels: &[String], outputs: &ResidueOutputs) -> Result<ArrayRef> {
    let classes = labels.len();
    let mut columns: Vec<Vec<f32>> = vec![Vec::new(); classes];
    let mut offsets = vec![0i32];
    for row in &outputs.rows {
        for residue in row.as_deref().unwrap_or_default().chunks_exact(classes) {
            columns.iter_mut().zip(residue).for_each(|(column, &p)| column.push(p));
        }
        let residues = columns.first().map_or(0, Vec::len);
        offsets.push(
            i32::try_from(residues).map_err(|_| {
                DataFusionError::Execution("more residues in one batch than a list column holds".into())
            })?,
        );
    }
    let columns: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(Float32Array::from(c)) as ArrayRef)
        .collect();
    let structs = StructArray::try_new(residue_fields(labels), columns, None)?;
    let nulls = NullBuffer::from(outputs.rows.iter().map(Option::is_some).collect::<Vec<_>>());
    Ok(Arc::new(ListArray::try_new(
        residue_item(labels),
        OffsetBuffer::new(offsets.into()),
        Arc::new(structs),
        Some(nulls),
    )?))
}

/// A predictor's weights and, for each member of it (one unless it is an ensemble), the model
/// with that member's Θ and readout, all loaded once per process; the predictor checked against
/// the base model.
pub(crate) fn loaded_predictor(
    dir: &std::path::Path,
    spec: &ModelSpec,
) -> Result<(Arc<Predictor>, Vec<Arc<ThetaModel>>)> {
    let predictor = checked_predictor(dir, spec)?;
    let models = predictor
        .members()
        .map(|member| theta_model(spec, &member.theta, &member.readout()).map_err(model_error))
        .collect::<Result<_>>()?;
    Ok((predictor, models))
}

/// The predictions of `predictor`'s members (run by `models`, one per member) for a column of
/// sequences, averaged.
fn averaged_predictions(
    predictor: &Predictor,
    models: &[Arc<ThetaModel>],
    array: &ArrayRef,
    policy: crate::model::InvalidResidue,
) -> Result<Predictions> {
    let mut parts = predictor.members().zip(models).map(|(member, model)| {
        if member.pools_outputs() {
            // the mapping reads each residue: no shared pooled embeddings to reuse
            let values = sequences(array)?;
            return run_on_compute_pool(|| member.predict(model.model(), values.iter().copied(), policy))
                .map_err(|e| DataFusionError::External(Box::new(e)));
        }
        Ok(member.outputs(&*model.embed(array, policy)?))
    });
    let first = parts
        .next()
        .ok_or_else(|| DataFusionError::Internal("a predictor without members".into()))??;
    Ok(Predictions::mean(first, parts.collect::<Result<Vec<_>>>()?))
}

/// A predictor's weights, loaded once per process and checked against the base model.
pub(crate) fn checked_predictor(dir: &std::path::Path, spec: &ModelSpec) -> Result<Arc<Predictor>> {
    let external = |e: crate::predictor::PredictorError| DataFusionError::External(Box::new(e));
    let predictor = shared_predictor(dir).map_err(external)?;
    let base = shared_model(spec).map_err(model_error)?;
    predictor.check_base_model(&base).map_err(external)?;
    Ok(predictor)
}

/// The SQL type of a predictor's results.
pub fn prediction_type(kind: Kind) -> DataType {
    match kind {
        Kind::Binary => DataType::Float32,
        Kind::Multiclass | Kind::Residue => DataType::Utf8,
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
        // per-residue predictions are not pooled ones: `PredictFunction` makes their column
        Kind::Multiclass | Kind::Residue => Arc::new(
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
        Ok(match self.mode {
            Mode::Prediction => prediction_type(self.kind),
            Mode::ResidueProbabilities => residue_probabilities_type(&self.labels),
            Mode::Top => DataType::List(top_item()),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let policy = invalid_residue_policy(&args.config_options)?;
        let (input, k) = match (self.mode, args.args.as_slice()) {
            (Mode::Top, [input, k]) => {
                let k = match k {
                    ColumnarValue::Scalar(ScalarValue::Int64(Some(k))) if *k > 0 => *k as usize,
                    _ => {
                        return exec_err!(
                            "{}(sequence, k): k must be a positive whole number, the same for every row",
                            self.name
                        );
                    }
                };
                (input, k)
            }
            (Mode::Top, _) => return exec_err!("{} takes two arguments, the sequence and k", self.name),
            (_, [input]) => (input, 0),
            _ => return exec_err!("{} takes one argument, the sequence", self.name),
        };
        let scalar = matches!(input, ColumnarValue::Scalar(_));
        let array = input.to_array(if scalar { 1 } else { args.number_rows })?;
        let result = if self.kind == Kind::Residue {
            self.residues(&array, policy)?
        } else {
            let (predictor, models) = loaded_predictor(&self.dir, &self.spec)?;
            let predictions = averaged_predictions(&predictor, &models, &array, policy)?;
            match self.mode {
                Mode::Top => top_labels(&self.labels, &predictions, k)?,
                _ => prediction_array(&predictor, &predictions),
            }
        };
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?))
        } else {
            Ok(ColumnarValue::Array(result))
        }
    }
}
