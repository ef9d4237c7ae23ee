"""r2dl: protein language-model inference in SQL, inside datafusion-python.

r2dl's SQL functions (``embed``, ``predict_<name>``), its ``fasta_scan`` table function and
FASTA files as tables, added to a :class:`datafusion.SessionContext` through DataFusion's FFI::

    import datafusion, r2dl
    ctx = datafusion.SessionContext(r2dl.config())
    r2dl.register(ctx)
    ctx.sql("SELECT id, predict_toxicity(sequence) AS tox "
            "FROM fasta_scan('sample_data/sample.fasta')").to_pandas()

and the same functions without SQL: :func:`embed` and :func:`predict`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import datafusion
import numpy as np
import pyarrow as pa

from ._r2dl import FastaScan, FastaTable, Options, R2dlError, ScalarFunction
from ._r2dl import call as _call
from ._r2dl import fetch_model as _fetch_model
from ._r2dl import functions as _functions

__all__ = [
    "Options",
    "R2dlError",
    "config",
    "embed",
    "fasta_table",
    "fetch_model",
    "functions",
    "predict",
    "read_fasta",
    "register",
]

_DATAFUSION_MAJOR = 55
if int(datafusion.__version__.split(".")[0]) != _DATAFUSION_MAJOR:
    # DataFusion's FFI has no version check: a mismatch would crash, not fail.
    msg = (
        f"r2dl is built for datafusion {_DATAFUSION_MAJOR}.x, but datafusion "
        f"{datafusion.__version__} is installed; pip install 'datafusion>={_DATAFUSION_MAJOR},<{_DATAFUSION_MAJOR + 1}'"
    )
    raise ImportError(msg)

PathLike = str | os.PathLike[str]


def _paths(udfs: PathLike | Iterable[PathLike] | None) -> list[str]:
    if udfs is None:
        return []
    if isinstance(udfs, (str, os.PathLike)):
        return [os.fspath(udfs)]
    return [os.fspath(u) for u in udfs]


def _bundled() -> str | None:
    """The predictors installed with the package (``udfs/`` inside it), if any."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "udfs")
    return here if os.path.isdir(here) else None


def _model(model: PathLike | None) -> str | None:
    return None if model is None else os.fspath(model)


def functions(
    *, model: PathLike | None = None, udfs: PathLike | Iterable[PathLike] | None = None, device: str | None = None
) -> list[ScalarFunction]:
    """The model functions the CLI's session has: ``embed`` and each ``predict_<name>``.

    Predictors are searched in ``udfs``, ``$R2DL_UDFS``, ``udfs/`` in the working directory,
    then the catalog installed with this package; the first folder holding a name wins.
    """
    return _functions(_model(model), _paths(udfs), device, _bundled())


def config(options: Options | None = None, **settings: str) -> datafusion.SessionConfig:
    """A :class:`datafusion.SessionConfig` holding r2dl's ``r2dl.*`` options.

    ``settings`` are other options (``{"datafusion.execution.batch_size": "1024"}`` style keys
    need the dict form: ``config(None, **{"datafusion.execution.batch_size": "1024"})``).
    After ``SessionContext(config())``, ``SET r2dl.invalid_residue = 'null'`` works in SQL.
    """
    session = datafusion.SessionConfig(dict(settings) or None)
    return session.with_extension(options if options is not None else Options())


def register(
    ctx: datafusion.SessionContext,
    *,
    model: PathLike | None = None,
    udfs: PathLike | Iterable[PathLike] | None = None,
    device: str | None = None,
) -> None:
    """Adds to ``ctx`` what the CLI's session has: ``embed``, every ``predict_<name>``, ``fasta_scan``.

    ``model`` is a model folder (default: ``$R2DL_MODEL`` or the default model, fetched on first
    use), ``udfs`` predictor folders searched before ``$R2DL_UDFS`` and the defaults, ``device``
    ``cpu`` or ``cuda:N``. Files named in SQL (``FROM 'x.fasta'``) are not reachable through
    the FFI: use ``fasta_scan('x.fasta')``, :func:`read_fasta` or :func:`fasta_table`.
    """
    for function in functions(model=model, udfs=udfs, device=device):
        ctx.register_udf(datafusion.ScalarUDF(function.name, function))
    ctx.register_udtf(datafusion.udtf(FastaScan(), "fasta_scan"))


def fasta_table(path: PathLike) -> FastaTable:
    """A FASTA file (plain, gzip or BGZF), a folder of them or a glob, as a table provider
    for ``ctx.register_table(name, ...)``. Columns: ``id``, ``description``, ``sequence``."""
    return FastaTable(os.fspath(path))


def read_fasta(ctx: datafusion.SessionContext, path: PathLike) -> datafusion.DataFrame:
    """A FASTA file as a DataFrame of ``ctx``."""
    return ctx.read_table(fasta_table(path))


def fetch_model() -> str:
    """Fetches the default model (all-MiniLM-L6-v2) as the CLI does and returns its folder."""
    return os.fspath(_fetch_model())


class _ArrowResult:
    """Arrow capsules from r2dl, for ``pyarrow.array``."""

    def __init__(self, capsules: tuple[Any, Any]) -> None:
        self._capsules = capsules

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]:
        return self._capsules


def _sequence_array(sequences: Any) -> pa.Array:
    if isinstance(sequences, pa.ChunkedArray):
        sequences = sequences.combine_chunks()
    elif hasattr(sequences, "to_arrow") and not isinstance(sequences, pa.Array):
        sequences = sequences.to_arrow()  # polars
        if isinstance(sequences, pa.ChunkedArray):
            sequences = sequences.combine_chunks()
    if isinstance(sequences, str):
        msg = "sequences must be a sequence of strings, not one string"
        raise TypeError(msg)
    array = sequences if isinstance(sequences, pa.Array) else pa.array(sequences, from_pandas=True)
    if pa.types.is_null(array.type):
        array = array.cast(pa.string())
    if not (
        pa.types.is_string(array.type) or pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type)
    ):
        msg = f"sequences must be strings, not {array.type}"
        raise TypeError(msg)
    return array


def _run(function: str, sequences: Any, model: Any, udfs: Any, device: Any, invalid_residue: Any) -> pa.Array:
    capsules = _call(
        function, _sequence_array(sequences), _model(model), _paths(udfs), device, _bundled(), invalid_residue
    )
    return pa.array(_ArrowResult(capsules))


def embed(
    sequences: Any,
    *,
    model: PathLike | None = None,
    device: str | None = None,
    invalid_residue: str | None = None,
) -> np.ndarray:
    """Embeddings of ``sequences`` (a list, pyarrow array, pandas or polars Series of strings)
    as a float32 array of shape (n, d); a missing (None) sequence gives a row of NaN.

    Runs off the Python thread; Ctrl-C stops it. Bad input raises :class:`R2dlError`
    (a ``ValueError``) naming the residue and row. ``invalid_residue``: 'error' (default),
    'null' (a NaN row) or 'unknown' (read as X).
    """
    result = _run("embed", sequences, model, None, device, invalid_residue)
    width = result.type.list_size
    values = result.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if result.null_count == 0:
        return values.reshape(len(result), width)
    matrix = np.full((len(result), width), np.nan, dtype=np.float32)
    valid = result.is_valid().to_numpy(zero_copy_only=False)
    matrix[valid] = values.reshape(-1, width)
    return matrix


def predict(
    name: str,
    sequences: Any,
    *,
    model: PathLike | None = None,
    udfs: PathLike | Iterable[PathLike] | None = None,
    device: str | None = None,
    invalid_residue: str | None = None,
) -> np.ndarray:
    """``predict_<name>`` over ``sequences`` (a list, pyarrow array, pandas or polars Series):
    probabilities (binary), values (regression) or labels (multi-class, per-residue), one per
    sequence; a missing sequence gives NaN (numbers) or None (labels).
    """
    function = name if name.startswith("predict_") else f"predict_{name}"
    result = _run(function, sequences, model, udfs, device, invalid_residue)
    if pa.types.is_floating(result.type):
        return result.to_numpy(zero_copy_only=False).astype(
            np.float64 if pa.types.is_float64(result.type) else np.float32, copy=False
        )
    return np.asarray(result.to_pylist(), dtype=object)
