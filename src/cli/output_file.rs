//! Output files written whole or not at all: results go to a hidden temporary file beside the
//! destination, renamed into place only when the whole result is written. A failure, an
//! interruption (the job is dropped) or an error midway leaves the destination as it was — a
//! user's earlier file, or an input the statement reads, is never truncated. A signal that ends
//! the process removes every unfinished file first ([`remove_partial_files`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::CliError;

/// A destination and the temporary file its result is written to.
#[derive(Debug)]
pub struct OutputFile {
    destination: PathBuf,
    partial: PathBuf,
    committed: bool,
}

impl OutputFile {
    /// Creates the temporary file beside `destination` (`.NAME.r2dl-partial-PID.EXT`, keeping
    /// the extension that names the format), checking that the destination can be written.
    pub fn create(destination: &Path) -> Result<(Self, File), CliError> {
        let error = |source: io::Error| CliError::Write {
            path: destination.to_path_buf(),
            source,
        };
        if destination.is_dir() {
            return Err(error(io::Error::new(io::ErrorKind::IsADirectory, "it is a directory")));
        }
        let name = destination
            .file_name()
            .ok_or_else(|| error(io::Error::new(io::ErrorKind::InvalidInput, "not a file name")))?
            .to_string_lossy();
        let extension = destination
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let partial_name = format!(".{name}.r2dl-partial-{}{extension}", std::process::id());
        let partial = destination.with_file_name(partial_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(error)?;
        partials().push(partial.clone());
        let output = Self {
            destination: destination.to_path_buf(),
            partial,
            committed: false,
        };
        Ok((output, file))
    }

    /// Where the result is being written.
    pub fn partial(&self) -> &Path {
        &self.partial
    }

    /// Moves the finished result into place.
    pub fn commit(mut self) -> Result<(), CliError> {
        // held while renaming, so that a signal removes the file either before or not at all
        let mut partials = partials();
        std::fs::rename(&self.partial, &self.destination).map_err(|source| CliError::Write {
            path: self.destination.clone(),
            source,
        })?;
        partials.retain(|p| *p != self.partial);
        self.committed = true;
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.committed {
            let mut partials = partials();
            // Best effort: the file may not exist (a writer that failed before creating it).
            let _ = std::fs::remove_file(&self.partial);
            partials.retain(|p| *p != self.partial);
        }
    }
}

/// The unfinished output files of this process.
fn partials() -> MutexGuard<'static, Vec<PathBuf>> {
    static PARTIALS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    PARTIALS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes every unfinished output file, for a process about to end on a signal; the files
/// stay locked out of [`OutputFile::commit`] until the process has ended.
pub fn remove_partial_files() {
    let partials = partials();
    for path in partials.iter() {
        let _ = std::fs::remove_file(path);
    }
    std::mem::forget(partials);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_changes_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let destination = dir.path().join("out.csv");
        std::fs::write(&destination, "old").unwrap();
        let (output, _) = OutputFile::create(&destination).unwrap();
        std::fs::write(output.partial(), "half").unwrap();
        drop(output);
        assert_eq!(std::fs::read_to_string(&destination).unwrap(), "old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the partial file is gone"
        );

        let (output, _) = OutputFile::create(&destination).unwrap();
        assert!(output.partial().to_string_lossy().ends_with(".csv"));
        std::fs::write(output.partial(), "new").unwrap();
        output.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&destination).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unwritable_destinations_name_the_path_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        for (destination, reason) in [
            (dir.path().to_path_buf(), "directory"),
            (file.join("under.csv"), "Not a directory"),
        ] {
            let message = OutputFile::create(&destination).unwrap_err().to_string();
            assert!(message.contains(&*destination.to_string_lossy()), "{message}");
            assert!(message.contains(reason), "{message}");
        }
    }
}
