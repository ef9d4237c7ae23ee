//! Errors of predictors: their files, and their fit to the base model.

use std::path::PathBuf;

/// What can go wrong reading, checking or writing a predictor.
#[derive(Debug, thiserror::Error)]
pub enum PredictorError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `manifest.json` is malformed.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The weights file is malformed or does not match the manifest.
    #[error("{}: {message}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The predictor was trained on another base model than the one loaded.
    #[error("{0}")]
    BaseModel(Box<BaseModelMismatch>),
    /// The predictor reads hidden states its base model does not have.
    #[error("predictor '{name}' cannot read its readout_layers from this base model: {message}")]
    Readout {
        /// The predictor's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Two predictors claim one name.
    #[error("two predictors are named '{name}': {} and {}", first.display(), second.display())]
    Duplicate {
        /// The name.
        name: String,
        /// The first folder.
        first: PathBuf,
        /// The second folder.
        second: PathBuf,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// Result with [`PredictorError`].
pub type Result<T, E = PredictorError> = std::result::Result<T, E>;

/// A predictor and a base model that do not belong together.
#[derive(Debug)]
pub struct BaseModelMismatch {
    /// The predictor.
    pub name: String,
    /// The base model it names.
    pub expected_name: String,
    /// Its weights' SHA-256.
    pub expected: String,
    /// The model loaded.
    pub model: PathBuf,
    /// The loaded weights' SHA-256 (or their shape, when that differs).
    pub actual: String,
}

impl std::fmt::Display for BaseModelMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "predictor '{}' was trained on base model {} (weights SHA-256 {}), but the loaded model {} has {}; \
             run it with --model pointing at {}, or retrain it with `r2dl train`",
            self.name,
            self.expected_name,
            self.expected,
            self.model.display(),
            self.actual,
            self.expected_name
        )
    }
}
