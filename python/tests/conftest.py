"""Fixtures: the checkout's sample data, the CLI built from the same checkout, sessions."""

from __future__ import annotations

import os
import pathlib
import subprocess

import datafusion
import pyarrow.parquet as pq
import pytest

import r2dl

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "sample.fasta"


@pytest.fixture(scope="session")
def sample() -> str:
    return str(SAMPLE)


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The r2dl CLI of this checkout: $R2DL_BIN, or the debug build `cargo test` leaves."""
    explicit = os.environ.get("R2DL_BIN")
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = pathlib.Path(explicit) if explicit else target / "debug" / "r2dl"
    if not path.is_file():
        pytest.fail(f"the r2dl CLI is not at {path}: run `cargo build` (or set R2DL_BIN)")
    return path


@pytest.fixture(scope="session")
def run_cli(cli: pathlib.Path, tmp_path_factory: pytest.TempPathFactory):
    """Runs `r2dl sql QUERY -o out.parquet` in the checkout and returns the table."""

    def run(query: str):
        out = tmp_path_factory.mktemp("cli") / "out.parquet"
        subprocess.run([str(cli), "sql", query, "-o", str(out)], cwd=ROOT, check=True)
        return pq.read_table(out)

    return run


@pytest.fixture
def ctx() -> datafusion.SessionContext:
    """A datafusion-python session with r2dl's options, functions and fasta_scan."""
    session = datafusion.SessionContext(r2dl.config())
    r2dl.register(session)
    return session
