"""r2dl inside a datafusion-python SessionContext: the same answers as the CLI."""

from __future__ import annotations

import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pytest
from datafusion import col

import r2dl

FIRST = "SELECT id, sequence FROM fasta_scan('{}') WHERE length(sequence) <= 60 ORDER BY id LIMIT 40"


def records_in(path: str) -> int:
    with open(path) as f:
        return sum(line.startswith(">") for line in f)


def test_count_through_fasta_scan(ctx, sample):
    got = ctx.sql(f"SELECT count(*) AS n FROM fasta_scan('{sample}')").to_pandas()
    assert got["n"].tolist() == [records_in(sample)]


def test_fasta_table_and_read_fasta(ctx, sample):
    ctx.register_table("proteins", r2dl.fasta_table(sample))
    by_table = ctx.sql("SELECT id, sequence FROM proteins ORDER BY id").to_arrow_table()
    by_frame = r2dl.read_fasta(ctx, sample).select("id", "sequence").sort(col("id")).to_arrow_table()
    assert by_table.num_rows == records_in(sample)
    assert by_table.equals(by_frame)
    assert by_table.column_names == ["id", "sequence"]


def test_predict_and_embed_equal_the_cli(ctx, sample, run_cli):
    query = (
        "SELECT id, predict_toxicity(sequence) AS tox, predict_amp(sequence) AS amp, embed(sequence) AS e "
        f"FROM fasta_scan('{sample}') WHERE length(sequence) <= 60 ORDER BY id LIMIT 40"
    )
    ours = ctx.sql(query).to_arrow_table()
    cli = run_cli(query.replace(f"fasta_scan('{sample}')", "'sample_data/sample.fasta'"))
    assert ours.num_rows == 40
    assert ours.column("id").to_pylist() == cli.column("id").to_pylist()
    for column in ("tox", "amp"):
        assert ours.column(column).to_pylist() == cli.column(column).to_pylist()
    np.testing.assert_array_equal(
        np.array(ours.column("e").to_pylist(), dtype=np.float32), np.array(cli.column("e").to_pylist(), dtype=np.float32)
    )


def test_functions_without_sql_equal_sql(ctx, sample):
    rows = ctx.sql(FIRST.format(sample)).to_pandas()
    sequences = rows["sequence"]
    matrix = r2dl.embed(sequences)
    assert matrix.shape == (len(rows), 384) and matrix.dtype == np.float32
    by_sql = ctx.sql(
        f"SELECT embed(sequence) AS e, predict_toxicity(sequence) AS tox FROM ({FIRST.format(sample)})"
    ).to_pandas()
    np.testing.assert_array_equal(matrix, np.stack(by_sql["e"].to_numpy()).astype(np.float32))
    tox = r2dl.predict("toxicity", sequences.tolist())
    np.testing.assert_array_equal(tox, by_sql["tox"].to_numpy())
    # every input type gives the same answer: list, pyarrow, pandas, polars
    polars = pytest.importorskip("polars")
    np.testing.assert_array_equal(r2dl.predict("predict_toxicity", pa.array(sequences)), tox)
    np.testing.assert_array_equal(r2dl.predict("toxicity", polars.Series(sequences.tolist())), tox)


def test_round_trips_to_pandas_and_polars(ctx, sample):
    polars = pytest.importorskip("polars")
    query = f"SELECT id, length(sequence) AS len, predict_amp(sequence) AS amp FROM ({FIRST.format(sample)}) ORDER BY id"
    frame = ctx.sql(query)
    pandas_rows = frame.to_pandas()
    polars_rows = frame.to_polars()
    assert pandas_rows["id"].tolist() == polars_rows["id"].to_list()
    assert pandas_rows["amp"].tolist() == polars_rows["amp"].to_list()
    assert all(0.0 <= p <= 1.0 for p in pandas_rows["amp"])
    # grouping the predictions in pandas, as a user would
    grouped = pandas_rows.assign(amp_like=pandas_rows["amp"] > 0.5).groupby("amp_like")["len"].count()
    assert grouped.sum() == len(pandas_rows)


def test_multiclass_and_per_residue_labels(sample):
    sequences = ["MKTAYIAKQRQISFVKSHFSRQ", "GIGKFLHSAKKFGKAFVGEIMNS"]
    folds = r2dl.predict("remote_homology", sequences)
    states = r2dl.predict("secondary_structure", sequences)
    assert folds.dtype == object and all(isinstance(f, str) for f in folds)
    assert [len(s) for s in states] == [len(s) for s in sequences]
    assert set("".join(states)) <= set("HEC")


SHARED_TOXICITY = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "toxicity" / "test.csv"


@pytest.mark.skipif(not SHARED_TOXICITY.is_file(), reason="the shared data (../shared/data) is not beside this checkout")
def test_toxicity_test_split_equals_the_cli(ctx, run_cli):
    """All 1,071 peptides of the toxicity test split: SQL through the FFI and r2dl.predict give the
    CLI's values bit for bit."""
    query = "SELECT id, sequence, predict_toxicity(sequence) AS tox FROM {} ORDER BY id"
    ctx.register_csv("toxicity", str(SHARED_TOXICITY))
    ours = ctx.sql(query.format("toxicity")).to_arrow_table()
    cli = run_cli(query.format(f"'{SHARED_TOXICITY}'"))
    assert ours.num_rows == cli.num_rows == 1071
    assert ours.column("id").to_pylist() == cli.column("id").to_pylist()
    assert ours.column("tox").to_pylist() == cli.column("tox").to_pylist()
    # r2dl.predict over the file's rows in the file's order (the order the CLI's batch had)
    rows = pa.csv.read_csv(SHARED_TOXICITY)
    by_call = dict(zip(rows.column("id").to_pylist(), r2dl.predict("toxicity", rows.column("sequence")).tolist()))
    assert [by_call[i] for i in cli.column("id").to_pylist()] == cli.column("tox").to_pylist()


def test_readme_example_runs(monkeypatch, capsys):
    """The README's "From Python" example, as a user pastes it (from the checkout's root)."""
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(pathlib.Path(__file__).resolve().parents[2])
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "toxic" in printed and "count" in printed
