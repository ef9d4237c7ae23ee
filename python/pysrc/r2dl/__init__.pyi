"""Type stubs for r2dl (see ``__init__.py`` for the documentation)."""

import os
from collections.abc import Iterable
from typing import Any

import datafusion
import numpy as np

PathLike = str | os.PathLike[str]

class R2dlError(ValueError):
    """Bad input (the message names the file, line and record, or the residue and row), a missing
    model or predictor, an unknown function."""

class ScalarFunction:
    """One of r2dl's SQL functions, exported through DataFusion's FFI."""
    @property
    def name(self) -> str: ...
    def __datafusion_scalar_udf__(self) -> object: ...

class FastaScan:
    """The ``fasta_scan('path')`` table function, exported through DataFusion's FFI."""
    def __init__(self) -> None: ...
    def __datafusion_table_function__(self, session: Any) -> object: ...

class FastaTable:
    """A FASTA file, folder or glob as a table provider (DataFusion's FFI)."""
    def __init__(self, location: str) -> None: ...
    def __datafusion_table_provider__(self, session: Any) -> object: ...

class Options:
    """r2dl's session options, for ``datafusion.SessionConfig().with_extension``."""
    def __init__(self, invalid_residue: str | None = None, fasta_mmap: bool | None = None) -> None: ...
    def __datafusion_extension_options__(self) -> object: ...

def functions(
    *, model: PathLike | None = None, udfs: PathLike | Iterable[PathLike] | None = None, device: str | None = None
) -> list[ScalarFunction]: ...
def config(options: Options | None = None, **settings: str) -> datafusion.SessionConfig: ...
def register(
    ctx: datafusion.SessionContext,
    *,
    model: PathLike | None = None,
    udfs: PathLike | Iterable[PathLike] | None = None,
    device: str | None = None,
) -> None: ...
def fasta_table(path: PathLike) -> FastaTable: ...
def read_fasta(ctx: datafusion.SessionContext, path: PathLike) -> datafusion.DataFrame: ...
def fetch_model() -> str: ...
def embed(
    sequences: Any, *, model: PathLike | None = None, device: str | None = None, invalid_residue: str | None = None
) -> np.ndarray: ...
def predict(
    name: str,
    sequences: Any,
    *,
    model: PathLike | None = None,
    udfs: PathLike | Iterable[PathLike] | None = None,
    device: str | None = None,
    invalid_residue: str | None = None,
) -> np.ndarray: ...
