"""Bad input raises Python exceptions with the CLI's messages; nothing crashes."""

from __future__ import annotations

import numpy as np
import pytest

import r2dl


def test_bad_residue_names_it(ctx):
    with pytest.raises(r2dl.R2dlError) as caught:
        r2dl.embed(["MKTAYIAK", "MKT4YIAK"])
    assert isinstance(caught.value, ValueError)
    assert "'4'" in str(caught.value)
    with pytest.raises(Exception, match="'4'"):
        ctx.sql("SELECT embed('MKT4YIAK')").collect()


def test_invalid_residue_policy_from_python_and_sql(ctx):
    matrix = r2dl.embed(["MKTAYIAK", "MKT4YIAK", None], invalid_residue="null")
    assert not np.isnan(matrix[0]).any()
    assert np.isnan(matrix[1]).all() and np.isnan(matrix[2]).all()
    ctx.sql("SET r2dl.invalid_residue = 'null'").collect()
    got = ctx.sql("SELECT predict_toxicity('MKT4YIAK') AS p").to_pandas()
    assert got["p"].isna().all()
    with pytest.raises(r2dl.R2dlError, match="'maybe'"):
        r2dl.Options(invalid_residue="maybe")


def test_malformed_fasta_names_file_and_line(ctx, tmp_path):
    bad = tmp_path / "bad.fasta"
    bad.write_text("MKTAYIAK\n>x\nMKT\n")
    with pytest.raises(Exception) as caught:
        ctx.sql(f"SELECT count(*) FROM fasta_scan('{bad}')").collect()
    assert f"{bad}:1" in str(caught.value)


def test_missing_file_and_unknown_function():
    with pytest.raises(r2dl.R2dlError, match="no-such.fasta"):
        r2dl.fasta_table("no-such.fasta")
    with pytest.raises(r2dl.R2dlError, match="no r2dl function named 'predict_nothing'.*predict_toxicity"):
        r2dl.predict("nothing", ["MKT"])
    with pytest.raises(TypeError):
        r2dl.embed("MKTAYIAK")
    with pytest.raises(TypeError):
        r2dl.embed([1, 2, 3])


def test_empty_input():
    assert r2dl.embed([]).shape == (0, 384)
    assert r2dl.predict("toxicity", []).shape == (0,)


def test_bad_option_values_raise_naming_them(ctx, sample):
    # refused at SET or at the first query that reads it, never silently ignored
    with pytest.raises(Exception, match="fasta_mmap"):
        ctx.sql("SET r2dl.fasta_mmap = 'maybe'").collect()
        ctx.sql(f"SELECT count(*) FROM fasta_scan('{sample}')").collect()
    with pytest.raises(Exception, match="'maybe'"):
        ctx.sql("SET r2dl.invalid_residue = 'maybe'").collect()
        ctx.sql("SELECT embed('MKT')").collect()
