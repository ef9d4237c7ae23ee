//! The catalog: predictor folders found at start-up (manifests only; weights load on first use).

use std::path::{Path, PathBuf};

use super::MANIFEST_FILE;
use super::error::{PredictorError, Result};
use super::manifest::Manifest;

/// Folders searched for predictors, first match of a name wins: `extra` (`--udfs`), then
/// `$R2DL_UDFS` (`:`-separated), then `udfs/` beside the executable (an installed r2dl), then
/// `udfs/` in the working directory (a clone of the repository). Folders that do not exist are
/// skipped by [`Catalog::discover`].
pub fn catalog_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = extra.to_vec();
    if let Some(env) = std::env::var_os("R2DL_UDFS") {
        dirs.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join(UDFS_DIR));
    }
    dirs.push(PathBuf::from(UDFS_DIR));
    dirs
}

/// The folder name predictors are looked up under, beside the executable and in the working
/// directory.
pub const UDFS_DIR: &str = "udfs";

/// One predictor of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// Its folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// A predictor folder that cannot be served: its function fails with `error`, naming the
/// folder, while every other function works.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenEntry {
    /// The function's name part (`predict_<name>`): the folder's name, or the manifest's.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Why it cannot be served.
    pub error: String,
}

/// The predictors found, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
    broken: Vec<BrokenEntry>,
}

impl Catalog {
    /// Reads the manifests under `dirs`: a folder holding `manifest.json` is a predictor itself,
    /// any other folder is searched one level down. Folders that do not exist are skipped; a
    /// name found again in a later folder is shadowed by the first. A folder that cannot be
    /// served (an unreadable manifest, a name two folders of one search folder claim) becomes a
    /// [`BrokenEntry`]: only its own function fails.
    pub fn discover(dirs: &[PathBuf]) -> Result<Self> {
        let mut entries: Vec<CatalogEntry> = Vec::new();
        let mut broken: Vec<BrokenEntry> = Vec::new();
        for dir in dirs {
            let mut found = Vec::new();
            if dir.join(MANIFEST_FILE).is_file() {
                found.push(dir.clone());
            } else if dir.is_dir() {
                let listing = std::fs::read_dir(dir).map_err(|source| PredictorError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let mut subdirs: Vec<PathBuf> = listing
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join(MANIFEST_FILE).is_file())
                    .collect();
                subdirs.sort();
                found.extend(subdirs);
            }
            let before = entries.len();
            for predictor_dir in found {
                let manifest = match Manifest::read(&predictor_dir.join(MANIFEST_FILE)) {
                    Ok(manifest) => manifest,
                    Err(error) => {
                        let name = predictor_dir.file_name().map(|n| n.to_string_lossy().to_lowercase());
                        broken.push(BrokenEntry {
                            name: name.unwrap_or_default(),
                            dir: predictor_dir,
                            error: error.to_string(),
                        });
                        continue;
                    }
                };
                let same_name = |e: &&CatalogEntry| e.manifest.name == manifest.name;
                if let Some(position) = entries[before..].iter().position(|e| same_name(&e)) {
                    let first = entries.remove(before + position);
                    broken.push(BrokenEntry {
                        error: PredictorError::Duplicate {
                            name: manifest.name.clone(),
                            first: first.dir,
                            second: predictor_dir.clone(),
                        }
                        .to_string(),
                        name: manifest.name,
                        dir: predictor_dir,
                    });
                    continue;
                }
                if entries.iter().any(|e| same_name(&e)) || broken.iter().any(|b| b.name == manifest.name) {
                    continue;
                }
                entries.push(CatalogEntry {
                    dir: predictor_dir,
                    manifest,
                });
            }
        }
        // a broken folder shadowed by a working predictor of the same name is not served
        broken.retain(|b| !entries.iter().any(|e| e.manifest.name == b.name));
        Ok(Self { entries, broken })
    }

    /// The folders found that cannot be served.
    pub fn broken(&self) -> &[BrokenEntry] {
        &self.broken
    }

    /// The predictors, in search order.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The predictor called `name`.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.manifest.name == name)
    }
}
