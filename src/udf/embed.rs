//! `embed(sequence)`: the reprogrammed model's mean-pooled vector, `FixedSizeList<Float32, d>`;
//! `embed(sequence, 'name')` with the Θ of predictor `name`.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, FixedSizeListArray, Float32Array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::predict::checked_predictor;
use super::theta_pass::theta_model;
use super::{SEQUENCE_TYPES, invalid_residue_policy, model_error, sequences};
use crate::model::{BertConfig, Embeddings, Readout};
use crate::predictor::{Catalog, MANIFEST_FILE, WEIGHTS_FILE};
use crate::runtime::{ModelSpec, run_on_compute_pool, shared_model};

/// `embed(sequence [, predictor])` → `FixedSizeList<Float32, d>`; NULL in, NULL out.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EmbedFunction {
    spec: ModelSpec,
    /// The catalog's predictors (name, folder), whose Θ the second argument may name.
    predictors: Vec<(String, PathBuf)>,
    signature: Signature,
}

impl EmbedFunction {
    /// `embed` run by the model `spec` names, with the predictors of `catalog`.
    pub fn new(spec: ModelSpec, catalog: &Catalog) -> Self {
        let mut signatures = vec![TypeSignature::Uniform(1, SEQUENCE_TYPES.to_vec())];
        for sequence in SEQUENCE_TYPES {
            for name in SEQUENCE_TYPES {
                signatures.push(TypeSignature::Exact(vec![sequence.clone(), name]));
            }
        }
        Self {
            spec,
            predictors: catalog
                .entries()
                .iter()
                .map(|e| (e.manifest.name.clone(), e.dir.clone()))
                .collect(),
            signature: Signature::one_of(signatures, Volatility::Immutable),
        }
    }

    /// The files whose contents decide what this function returns: the base model's weights, and
    /// the manifest and weights of each predictor whose Θ the second argument may name.
    pub fn weight_files(&self) -> Result<Vec<(String, PathBuf)>> {
        let model = self.spec.resolve_dir().map_err(model_error)?;
        let mut files = vec![("base model".to_string(), model.join("model.safetensors"))];
        for (name, dir) in &self.predictors {
            files.push((format!("predictor {name} manifest"), dir.join(MANIFEST_FILE)));
            files.push((format!("predictor {name} weights"), dir.join(WEIGHTS_FILE)));
        }
        Ok(files)
    }

    /// The vector width, from the model's `config.json` (the weights load on first use).
    fn dim(&self) -> Result<usize> {
        let dir = self.spec.resolve_dir().map_err(model_error)?;
        let config = BertConfig::from_file(&dir.join("config.json")).map_err(model_error)?;
        Ok(config.hidden_size)
    }
}

/// The item field of an embedding: `Float32 NOT NULL`.
fn embedding_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float32, false))
}

/// `FixedSizeList<Float32 NOT NULL, dim>`, the type of a column of embeddings.
pub fn embedding_type(dim: usize) -> DataType {
    DataType::FixedSizeList(embedding_item(), dim as i32)
}

/// A column of embeddings, NULL where a row has none.
pub fn embedding_array(embeddings: Embeddings) -> Result<FixedSizeListArray> {
    let Embeddings { dim, values, valid } = embeddings;
    let nulls = valid.iter().any(|v| !v).then(|| NullBuffer::from(valid));
    let values = Arc::new(Float32Array::from(values));
    Ok(FixedSizeListArray::try_new(
        embedding_item(),
        dim as i32,
        values,
        nulls,
    )?)
}

impl ScalarUDFImpl for EmbedFunction {
    fn name(&self) -> &str {
        "embed"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(embedding_type(self.dim()?))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let policy = invalid_residue_policy(&args.config_options)?;
        let (input, predictor) = match args.args.as_slice() {
            [input] => (input, None),
            [input, ColumnarValue::Scalar(name)] => (input, Some(name)),
            _ => return exec_err!("embed takes the sequence and optionally a predictor's name (a string literal)"),
        };
        let scalar = matches!(input, ColumnarValue::Scalar(_));
        let array = input.to_array(if scalar { 1 } else { args.number_rows })?;
        let embeddings = match predictor {
            None => {
                let sequences = sequences(&array)?;
                let model = shared_model(&self.spec).map_err(model_error)?;
                run_on_compute_pool(|| model.embed(sequences.iter().copied(), policy)).map_err(model_error)?
            }
            Some(name) => {
                let Some(Some(name)) = name.try_as_str() else {
                    return exec_err!("embed's second argument names a predictor; it cannot be NULL");
                };
                let Some((_, dir)) = self.predictors.iter().find(|(n, _)| n == name) else {
                    let known: Vec<&str> = self.predictors.iter().map(|(n, _)| n.as_str()).collect();
                    return exec_err!("no predictor '{name}'; the catalog has: {}", known.join(", "));
                };
                // the last hidden state with the predictor's Θ (an ensemble's first member's),
                // whatever layers its mapping reads
                let predictor = checked_predictor(dir, &self.spec)?;
                let model = theta_model(&self.spec, &predictor.theta, &Readout::last()).map_err(model_error)?;
                Embeddings::clone(&*model.embed(&array, policy)?)
            }
        };
        let result: ArrayRef = Arc::new(embedding_array(embeddings)?);
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?))
        } else {
            Ok(ColumnarValue::Array(result))
        }
    }
}
