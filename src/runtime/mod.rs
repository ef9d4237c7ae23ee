//! Process state: where models live (the default model, fetched once), models and predictors
//! loaded once and shared by every session, query and partition, and the compute pool that model
//! work runs on.

mod home;
mod models;
mod pool;
mod predictors;

pub use home::{
    DEFAULT_MODEL_NAME, DEFAULT_MODEL_PACKAGE, DEFAULT_MODEL_SHA256, KNOWN_MODELS, KnownModel, MINILM, MPNET,
    default_model_dir, fetch_default_model, r2dl_home, resolve_model_dir,
};
pub use models::{ModelSpec, model_loads, parse_device, shared_model};
pub use pool::run_on_compute_pool;
pub use predictors::shared_predictor;
