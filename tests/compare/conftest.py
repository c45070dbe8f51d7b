"""Shared by the tests of fastir compare (tests/compare/, tests/cli/test_compare.py): synthetic
per_query.parquet files in the exact `fastir score --per-query` format (data_specs/per-query-format.json),
and plain-Python re-implementations of the resampling kernels' random streams (the slow references).

Imported as ``from tests.compare.conftest import ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# ----------------------------------------------------------------------------- synthetic inputs

KS = (1, 5, 10)


def synth_rows(langs, n, seed, shift=0.0, rd_shift=0.0, ks=KS, noise=None):
    """Rows of a parallel dataset: every query of language X has one relevant candidate per language.

    Metric values share a per-query base (so paired runs are correlated) plus run-specific noise.
    """
    base_rng = np.random.default_rng(1000 + len(langs) * 7 + n)  # shared across runs: the "queries"
    rng = np.random.default_rng(seed)
    rows = {c: [] for c in ["query_id", "query_lang", "cand_lang", "setting", "num_relevant", "ap", "rr",
                            "rank_distance", *[f"recall@{k}" for k in ks]]}
    for x in langs:
        for i in range(n):
            ease = base_rng.beta(4, 2)
            cells = [("mono", x)] + [("cross", y) for y in langs if y != x] + [("multi", "all")]
            for setting, y in cells:
                ap = float(np.clip(ease + shift + rng.normal(0, noise if noise is not None else 0.1), 0, 1))
                rows["query_id"].append(f"{x}-q{i}")
                rows["query_lang"].append(x)
                rows["cand_lang"].append(y)
                rows["setting"].append(setting)
                rows["num_relevant"].append(len(langs) if setting == "multi" else 1)
                rows["ap"].append(ap)
                rows["rr"].append(ap)
                for k in ks:
                    rows[f"recall@{k}"].append(float(rng.random() < ap))
                multi = setting == "multi" and len(langs) >= 2
                rows["rank_distance"].append(float(rng.gamma(2, 5) + rd_shift) if multi else float("nan"))
    return rows


def write_per_query(scores_dir, rows, *, checksum="sha-test", ks=KS, meta=None, drop_columns=()):
    """Write per_query.parquet + summary.json exactly as `fastir score --per-query` does (data_specs/per-query-format.json)."""
    scores_dir = Path(scores_dir)
    scores_dir.mkdir(parents=True, exist_ok=True)
    cols = {
        "query_id": pa.array(rows["query_id"], pa.string()),
        "query_lang": pa.array(rows["query_lang"], pa.string()),
        "cand_lang": pa.array(rows["cand_lang"], pa.string()),
        "setting": pa.array(rows["setting"], pa.string()),
        "num_relevant": pa.array(rows["num_relevant"], pa.int32()),
        "ap": pa.array(rows["ap"], pa.float64()),
        "rr": pa.array(rows["rr"], pa.float64()),
        **{f"recall@{k}": pa.array(rows[f"recall@{k}"], pa.float64()) for k in ks},
        "rank_distance": pa.array(rows["rank_distance"], pa.float64()),
    }
    for c in drop_columns:
        cols.pop(c)
    info = {"format": "fastir-per-query/1", "dataset": "synthetic", "dataset_checksum": checksum,
            "model": "synthetic-model", "run": str(scores_dir.parent), "ks": list(ks)}
    info.update(meta or {})
    table = pa.table(cols).replace_schema_metadata({b"fastir": json.dumps(info).encode()})
    pq.write_table(table, scores_dir / "per_query.parquet")
    (scores_dir / "summary.json").write_text(json.dumps({"format": "fastir-scores/1", "dataset_checksum": checksum,
                                                         "ks": list(ks)}))
    return scores_dir


def scores_run(root, name, langs=("de", "en", "zh"), n=12, seed=0, sparse=False, **kw):
    """A run dir ROOT/NAME with NAME/scores/per_query.parquet.

    ``sparse``: like MLQA-R, some queries have no relevant candidate in some languages, so the X->Y
    cells of one query language hold different queries (every third query lacks one cross row).
    """
    write_kw = {k: kw.pop(k) for k in ("checksum", "ks", "meta", "drop_columns") if k in kw}
    rows = synth_rows(list(langs), n, seed, ks=write_kw.get("ks", KS), **kw)
    if sparse:
        keep = [i for i, (q, s, y) in enumerate(zip(rows["query_id"], rows["setting"], rows["cand_lang"]))
                if not (s == "cross" and int(q.split("q")[1]) % 3 == 0 and y == langs[-1 if q[:2] != langs[-1] else 0])]
        rows = {k: [v[i] for i in keep] for k, v in rows.items()}
    write_per_query(Path(root) / name / "scores", rows, **write_kw)
    return Path(root) / name


# ----------------------------------------------------------------------------- slow references

MASK = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def stream(seed, b):
    state = mix64((mix64(seed) + mix64(b)) & MASK)
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        yield mix64(state)


def ref_signs(seed, b, n):
    """The signs of sign-flip resample ``b``: one bit per query of the stream's words."""
    draws, out = stream(seed, b), np.empty(n)
    for base in range(0, n, 64):
        word = next(draws)
        for i in range(min(64, n - base)):
            out[base + i] = -1.0 if (word >> i) & 1 else 1.0
    return out


def ref_counts(seed, b, pairs):
    """Draw counts of bootstrap resample ``b``: queries drawn with replacement within each language."""
    draws, out = stream(seed, b), np.zeros(len(pairs))
    langs = sorted({lang for lang, _ in pairs})
    for lang in langs:
        members = [i for i, (ql, _) in enumerate(pairs) if ql == lang]
        for _ in range(len(members)):
            out[members[int(((next(draws) >> 11) * 2.0**-53) * len(members))]] += 1
    return out
