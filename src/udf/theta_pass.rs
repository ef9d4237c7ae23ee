//! One encoder pass per Θ and batch. Every SQL function that runs the base model with the same Θ
//! (`predict_<name>` and `embed(sequence, '<name>')` of one predictor, or predictors sharing a
//! Θ) shares one [`ThetaModel`], which remembers its last batch: several calls on the same column
//! of a batch run the encoder once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef};

use crate::model::{Embeddings, InvalidResidue, Readout, ReprogrammedModel, Result, Theta};
use crate::runtime::{ModelSpec, shared_model};

/// The base model with one Θ, and the embeddings of the last batch it saw.
#[derive(Debug)]
pub struct ThetaModel {
    model: ReprogrammedModel,
    last: Mutex<Option<(ArrayRef, InvalidResidue, Arc<Embeddings>)>>,
}

impl ThetaModel {
    /// The embeddings of a column of sequences; the same column (equal values) as the last call
    /// is not encoded again.
    pub fn embed(&self, sequences: &ArrayRef, policy: InvalidResidue) -> datafusion::common::Result<Arc<Embeddings>> {
        // held while encoding, so that a second function on the same batch waits for the first
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((array, cached_policy, embeddings)) = last.as_ref()
            && *cached_policy == policy
            && array.len() == sequences.len()
            && array.as_ref() == sequences.as_ref()
        {
            return Ok(Arc::clone(embeddings));
        }
        let values = super::sequences(sequences)?;
        PASSES.fetch_add(1, Ordering::Relaxed);
        let embeddings = crate::runtime::run_on_compute_pool(|| self.model.embed(values.iter().copied(), policy))
            .map_err(super::model_error)?;
        let embeddings = Arc::new(embeddings);
        *last = Some((Arc::clone(sequences), policy, Arc::clone(&embeddings)));
        Ok(embeddings)
    }

    /// The model.
    pub fn model(&self) -> &ReprogrammedModel {
        &self.model
    }
}

static PASSES: AtomicUsize = AtomicUsize::new(0);

/// How many batches [`ThetaModel`]s of this process have encoded (cache hits excluded).
pub fn theta_passes() -> usize {
    PASSES.load(Ordering::Relaxed)
}

type Shared = Mutex<HashMap<ModelSpec, Vec<((Theta, Readout), Arc<ThetaModel>)>>>;

/// The model `spec` names with `theta` and `readout`, made once per process and shared by equal
/// Θs read the same way.
pub fn theta_model(spec: &ModelSpec, theta: &Theta, readout: &Readout) -> Result<Arc<ThetaModel>> {
    static MODELS: OnceLock<Shared> = OnceLock::new();
    let base = shared_model(spec)?;
    let mut models = MODELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let same_spec = models.entry(spec.clone()).or_default();
    if let Some((_, model)) = same_spec.iter().find(|((t, r), _)| t == theta && r == readout) {
        return Ok(Arc::clone(model));
    }
    let model = Arc::new(ThetaModel {
        model: base.with_theta(theta)?.with_readout(readout.clone()),
        last: Mutex::new(None),
    });
    same_spec.push(((theta.clone(), readout.clone()), Arc::clone(&model)));
    Ok(model)
}
