//! Models loaded once per process: which model on which device ([`ModelSpec`]), and the shared
//! loaded models.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::Device;

use super::home::{KnownModel, resolve_model_dir};
use crate::model::{ModelError, ReprogrammedModel, Result};

/// Which model on which device; `dir: None` is `$R2DL_MODEL` or the default model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ModelSpec {
    /// The model folder (`--model`).
    pub dir: Option<PathBuf>,
    /// `cpu` or `cuda:N`; `None` is `$R2DL_DEVICE` or `cpu`.
    pub device: Option<String>,
}

impl ModelSpec {
    /// The model folder this spec names, fetching the default model if needed.
    pub fn resolve_dir(&self) -> Result<PathBuf> {
        resolve_model_dir(self.dir.as_deref())
    }

    /// The device name this spec names.
    pub fn device_name(&self) -> String {
        self.device
            .clone()
            .or_else(|| std::env::var("R2DL_DEVICE").ok().filter(|d| !d.is_empty()))
            .unwrap_or_else(|| "cpu".into())
    }
}

/// `cpu`, `cuda` or `cuda:N` as a candle device (CUDA needs the `cuda` feature).
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match name.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ModelError::Device(name.clone()))?,
        None => return Err(ModelError::Device(name)),
    };
    if !cfg!(feature = "cuda") {
        return Err(ModelError::Device(format!(
            "{name}' needs a build with `--features cuda`; this one has only 'cpu"
        )));
    }
    Ok(Device::new_cuda(ordinal)?)
}

static LOADS: AtomicUsize = AtomicUsize::new(0);

/// How many times this process has loaded model weights (each spec loads once).
pub fn model_loads() -> usize {
    LOADS.load(Ordering::Relaxed)
}

type Shared = Mutex<HashMap<(PathBuf, String), Arc<ReprogrammedModel>>>;

/// The model `spec` names, loaded on first use and shared by every caller after.
pub fn shared_model(spec: &ModelSpec) -> Result<Arc<ReprogrammedModel>> {
    static MODELS: OnceLock<Shared> = OnceLock::new();
    let dir = spec.resolve_dir()?;
    let device_name = spec.device_name();
    let models = MODELS.get_or_init(Default::default);
    // Held while loading, so that concurrent first calls load once.
    let mut models = models.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (dir, device_name);
    if let Some(model) = models.get(&key) {
        return Ok(Arc::clone(model));
    }
    let device = parse_device(&key.1)?;
    // a fetched model is checked against its published checksums
    let known = KnownModel::of_dir(&key.0);
    if let Some(known) = known {
        known.verify_files(&key.0)?;
    }
    let model = ReprogrammedModel::load(&key.0, &device)?;
    if let Some(known) = known.filter(|known| model.weights_sha256() != known.weights_sha256) {
        return Err(ModelError::Checksum {
            path: key.0.join("model.safetensors"),
            expected: known.weights_sha256.into(),
            actual: model.weights_sha256().into(),
        });
    }
    let model = Arc::new(model);
    LOADS.fetch_add(1, Ordering::Relaxed);
    models.insert(key, Arc::clone(&model));
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_or_say_what_is_wrong() {
        assert!(matches!(parse_device("CPU"), Ok(Device::Cpu)));
        for bad in ["gpu", "cuda:x", "cuda0"] {
            assert!(matches!(parse_device(bad), Err(ModelError::Device(_))), "{bad}");
        }
        if !cfg!(feature = "cuda") {
            let message = parse_device("cuda:0").unwrap_err().to_string();
            assert!(message.contains("--features cuda"), "{message}");
        }
    }
}
