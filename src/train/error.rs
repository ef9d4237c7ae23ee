//! Errors of training and of reading labelled data.

use std::path::{Path, PathBuf};

/// What can go wrong reading labelled data or training a predictor.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A record of the labelled data is unusable.
    #[error("{source_name}: record {record}{}: {message}", id.as_ref().map(|i| format!(" (id {i})")).unwrap_or_default())]
    Record {
        /// The file or query.
        source_name: String,
        /// 1-based record number.
        record: usize,
        /// The record's id, when the source has one.
        id: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The labelled data as a whole is unusable.
    #[error("{source_name}: {message}")]
    Data {
        /// The file or query.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// Reading the data failed.
    #[error("{source_name}: {error}")]
    Query {
        /// The file or query.
        source_name: String,
        /// DataFusion's error.
        error: Box<datafusion::error::DataFusionError>,
    },
    /// A setting is unusable.
    #[error("{0}")]
    Settings(String),
    /// The loss or the weights stopped being numbers: the learning rates are too high for
    /// these data.
    #[error(
        "training diverged at epoch {epoch}, step {step}: the loss or the weights are no longer numbers (loss {loss}); lower --lr and --head-lr"
    )]
    Diverged {
        /// The epoch (1-based).
        epoch: usize,
        /// The step within the epoch (1-based).
        step: usize,
        /// The loss of that step.
        loss: f64,
    },
    /// Training was interrupted (Ctrl-C); it resumes from the last epoch's checkpoint.
    #[error("{}", interrupted_message(dir, *epochs_done))]
    Interrupted {
        /// The output folder holding the checkpoint.
        dir: PathBuf,
        /// Epochs finished (and checkpointed) before the interruption.
        epochs_done: usize,
    },
    /// The checkpoint cannot be resumed.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A predictor file failed.
    #[error(transparent)]
    Predictor(Box<crate::predictor::PredictorError>),
}

impl From<crate::predictor::PredictorError> for TrainError {
    fn from(error: crate::predictor::PredictorError) -> Self {
        TrainError::Predictor(Box::new(error))
    }
}

/// Result with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

fn interrupted_message(dir: &Path, epochs_done: usize) -> String {
    if epochs_done == 0 {
        "interrupted in epoch 1, before any checkpoint; nothing to resume".into()
    } else {
        format!(
            "interrupted after epoch {epochs_done}; `r2dl train … --resume` continues from the checkpoint in {}",
            dir.display()
        )
    }
}
