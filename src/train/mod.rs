//! Training predictors the R2DL way: only Θ (sparse, by OMP over the English word embeddings)
//! and the output mapping learn; the English encoder stays frozen.

mod adam;
mod data;
mod error;
mod evaluate;
mod residue;
mod rng;
mod trainer;

pub use adam::Adam;
pub use data::{DataSource, LabelledRows, infer_kind, infer_kind_of, positive_label, read_labelled, stratified_split};
pub use error::{Result, TrainError};
pub use evaluate::evaluate;
pub use rng::Rng;
pub use trainer::{Datasets, Progress, TrainSpec, ValidationScore, train};
