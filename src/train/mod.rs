//! Training predictors the R2DL way: only Θ (sparse, by OMP over the English word embeddings)
//! and the output mapping learn; the English encoder stays frozen.

mod adam;
mod checkpoint;
mod cholesky;
mod data;
mod dictionary;
mod ensemble;
mod error;
mod evaluate;
mod novelty;
mod objective;
mod residue;
mod ridge;
mod rng;
mod task;
mod trainer;

pub use adam::Adam;
pub use data::{
    DataSource, LabelledRows, grouped_split, infer_kind, infer_kind_of, positive_label, read_labelled, stratified_split,
};
pub use dictionary::Dictionary;
pub use ensemble::{MAX_ENSEMBLE, train_ensemble};
pub use error::{Result, TrainError};
pub use evaluate::{evaluate, evaluate_subsets};
pub use novelty::{KmerIndex, NOVEL_BELOW, NOVELTY_K, homology_groups};
pub use objective::ValidationScore;
pub use rng::{Rng, Stream};
pub use trainer::{DEFAULT_RIDGE_FOLDS, Datasets, Progress, TrainSpec, train};
