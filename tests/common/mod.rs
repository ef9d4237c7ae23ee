//! Running the `r2dl` binary as a user does, for the end-to-end tests.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `r2dl ARGS` in the repository root with stdout piped (so the default format is CSV).
pub fn r2dl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r2dl"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("r2dl runs")
}

/// The standard output of `r2dl ARGS`, which must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = r2dl(args);
    assert!(
        out.status.success(),
        "r2dl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
