//! Predictors loaded once per process, by folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::predictor::{Predictor, Result};

/// The predictor in `dir`, loaded once per process.
pub fn shared_predictor(dir: &Path) -> Result<Arc<Predictor>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Predictor>>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(predictor) = loaded.get(dir) {
        return Ok(Arc::clone(predictor));
    }
    let predictor = Arc::new(Predictor::load(dir)?);
    loaded.insert(dir.to_path_buf(), Arc::clone(&predictor));
    Ok(predictor)
}
