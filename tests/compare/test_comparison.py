"""fastir compare: pairing, statistics, tests (vs scipy / a slow numpy reference), CIs, Holm, CLI, bad input.

Inputs are synthetic per_query.parquet files written in the exact `fastir score --per-query` format
(data_specs/per-query-format.json) by ``write_per_query`` below.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats

from fastir.cli import main
from fastir.compare.comparison import compare
from fastir.compare.inputs import default_names
from fastir.compare.report import summary_grid
from fastir.compare.stats import betainc, holm, paired_t_test, t_two_sided_p
from fastir.core.errors import InputError

KS = (1, 5, 10)


# ----------------------------------------------------------------------------- synthetic inputs


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


def make_run(root, name, langs=("de", "en", "zh"), n=12, seed=0, sparse=False, **kw):
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


def rows_of(path):
    return pq.read_table(Path(path) / "scores" / "per_query.parquet").to_pylist()


def record(cmp, run, setting, metric, level="summary", lang=None):
    (rec,) = [r for r in cmp.records if (r["level"], r["setting"], r["metric"], r["lang"], r["run"])
              == (level, setting, metric, lang, run)]
    return rec


# ----------------------------------------------------------------------------- slow references

MASK = (1 << 64) - 1


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _stream(seed, b):
    state = _mix64((_mix64(seed) + _mix64(b)) & MASK)
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        yield _mix64(state)


def _query_order(rows):
    """Query index as documented: queries sorted by (query_lang, query_id)."""
    pairs = sorted({(r["query_lang"], r["query_id"]) for r in rows})
    return {qid: i for i, (_, qid) in enumerate(pairs)}, pairs


def _signs(seed, b, n):
    draws, out = _stream(seed, b), np.empty(n)
    for base in range(0, n, 64):
        word = next(draws)
        for i in range(min(64, n - base)):
            out[base + i] = -1.0 if (word >> i) & 1 else 1.0
    return out


def _counts(seed, b, pairs):
    draws, out = _stream(seed, b), np.zeros(len(pairs))
    langs = sorted({lang for lang, _ in pairs})
    for lang in langs:
        members = [i for i, (ql, _) in enumerate(pairs) if ql == lang]
        for _ in range(len(members)):
            out[members[int(((next(draws) >> 11) * 2.0**-53) * len(members))]] += 1
    return out


def _paper_aggregate(rows_a, rows_b, setting, column, weights, fixed_den):
    """Mean over the setting's cells of the (weighted) mean over each cell's queries of b - a."""
    qindex, _ = _query_order(rows_a)
    b_by_key = {(r["query_id"], r["setting"], r["cand_lang"]): r[column] for r in rows_b}
    cells = {}
    for r in rows_a:
        if r["setting"] == setting:
            d = (b_by_key[(r["query_id"], r["setting"], r["cand_lang"])] if rows_b is not None else 0) - r[column]
            cells.setdefault((r["query_lang"], r["cand_lang"]), []).append((qindex[r["query_id"]], d))
    means = []
    for members in cells.values():
        w = np.array([weights[q] for q, _ in members])
        d = np.array([x for _, x in members])
        means.append((w * d).sum() / (len(members) if fixed_den else w.sum()))
    return float(np.mean(means))


# ----------------------------------------------------------------------------- statistics


def test_summary_values_follow_the_paper_aggregation(tmp_path):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, shift=0.05)
    cmp = compare([a, b], samples=50, seed=0)
    rows = rows_of(a)
    for setting in ("mono", "cross", "multi"):
        cells = {}
        for r in rows:
            if r["setting"] == setting:
                cells.setdefault((r["query_lang"], r["cand_lang"]), []).append(r["ap"])
        want = np.mean([np.mean(v) for v in cells.values()])
        assert record(cmp, "a", setting, "map")["value"] == pytest.approx(want, rel=1e-12)
        # per language: cross X = mean over Y != X of the X->Y cells
        for lang in ("de", "zh"):
            want_l = np.mean([np.mean(v) for (ql, _), v in cells.items() if ql == lang])
            assert record(cmp, "a", setting, "map", "language", lang)["value"] == pytest.approx(want_l, rel=1e-12)
    rd = {}
    for r in rows:
        if r["setting"] == "multi":
            rd.setdefault(r["query_lang"], []).append(r["rank_distance"])
    assert record(cmp, "a", "multi", "rank_distance")["value"] == pytest.approx(
        np.mean([np.mean(v) for v in rd.values()]), rel=1e-12)
    rec_b = record(cmp, "b", "cross", "recall@10")
    assert rec_b["diff"] == pytest.approx(rec_b["value"] - record(cmp, "a", "cross", "recall@10")["value"])


@pytest.mark.parametrize("sparse", [False, True])
def test_randomization_p_values_match_slow_numpy_reference(tmp_path, sparse):
    langs = ("de", "en", "zh")
    a = make_run(tmp_path, "a", langs=langs, n=30, seed=1, sparse=sparse)
    b = make_run(tmp_path, "b", langs=langs, n=30, seed=2, shift=0.03, sparse=sparse)
    samples, seed = 300, 777
    cmp = compare([a, b], test="randomization", samples=samples, seed=seed)
    ra, rb = rows_of(a), rows_of(b)
    _, pairs = _query_order(ra)
    ones = np.ones(len(pairs))
    for setting in ("mono", "cross", "multi"):
        observed = _paper_aggregate(ra, rb, setting, "ap", ones, fixed_den=True)
        # a paired swap of query q flips the sign of all of q's differences
        flips = [_paper_aggregate(ra, rb, setting, "ap", _signs(seed, i, len(pairs)), fixed_den=True)
                 for i in range(samples)]
        want = (1 + sum(abs(t) >= abs(observed) * (1 - 1e-9) for t in flips)) / (samples + 1)
        got = record(cmp, "b", setting, "map")
        assert got["diff"] == pytest.approx(observed, rel=1e-12)
        assert got["p"] == want


@pytest.mark.parametrize("sparse", [False, True])
def test_bootstrap_interval_matches_slow_numpy_reference(tmp_path, sparse):
    a = make_run(tmp_path, "a", langs=("de", "en", "zh"), n=15, seed=1, sparse=sparse)
    b = make_run(tmp_path, "b", langs=("de", "en", "zh"), n=15, seed=2, sparse=sparse)
    samples, seed = 200, 3
    cmp = compare([a, b], test="bootstrap", samples=samples, seed=seed)
    ra, rb = rows_of(a), rows_of(b)
    _, pairs = _query_order(ra)
    dist = [_paper_aggregate(ra, rb, "cross", "ap", _counts(seed, i, pairs), fixed_den=False)
            for i in range(samples)]
    got = record(cmp, "b", "cross", "map")
    if sparse:  # the X->Y cells of one language differ: nothing to merge, ratio means per cell
        assert len({r["cand_lang"] for r in rows_of(a) if r["setting"] == "cross"}) == 3
        assert sum(1 for r in rows_of(a) if r["setting"] == "cross") == 3 * 2 * 15 - 3 * 5
    np.testing.assert_allclose(got["diff_ci"], np.percentile(dist, [2.5, 97.5]), rtol=1e-10)
    centred = np.asarray(dist) - got["diff"]
    want_p = (1 + np.sum(np.abs(centred) >= abs(got["diff"]) * (1 - 1e-9))) / (samples + 1)
    assert got["p"] == pytest.approx(want_p)


def test_t_test_equals_scipy_ttest_rel(tmp_path):
    # one language: the mono summary is a single cell -> exactly ttest_rel on per-query APs
    a = make_run(tmp_path, "a", langs=("en",), n=60, seed=1)
    b = make_run(tmp_path, "b", langs=("en",), n=60, seed=2, shift=0.02)
    cmp = compare([a, b], test="t", samples=20)
    ap_a = [r["ap"] for r in sorted(rows_of(a), key=lambda r: r["query_id"]) if r["setting"] == "mono"]
    ap_b = [r["ap"] for r in sorted(rows_of(b), key=lambda r: r["query_id"]) if r["setting"] == "mono"]
    want = scipy.stats.ttest_rel(ap_b, ap_a).pvalue
    assert record(cmp, "b", "mono", "map")["p"] == pytest.approx(want, rel=1e-9)
    # several languages of equal size: Mo. (mean of cell means) = mean over all mono rows
    a3 = make_run(tmp_path, "a3", n=25, seed=1)
    b3 = make_run(tmp_path, "b3", n=25, seed=2, shift=0.01)
    cmp3 = compare([a3, b3], test="t", samples=20)
    key = lambda r: (r["query_lang"], r["query_id"], r["cand_lang"])  # noqa: E731
    for setting in ("mono", "multi"):
        xa = [r["recall@10"] for r in sorted(rows_of(a3), key=key) if r["setting"] == setting]
        xb = [r["recall@10"] for r in sorted(rows_of(b3), key=key) if r["setting"] == setting]
        got = record(cmp3, "b3", setting, "recall@10")["p"]
        assert got == pytest.approx(scipy.stats.ttest_rel(xb, xa).pvalue, rel=1e-9)


def test_t_distribution_and_paired_t_against_scipy():
    for t in (0.0, 0.3, 1.7, 4.2, 12.0):
        for df in (1, 3, 29, 1189, 13089):
            assert t_two_sided_p(t, df) == pytest.approx(2 * scipy.stats.t.sf(t, df), rel=1e-9, abs=1e-300)
    for a, b, x in ((2.0, 3.0, 0.4), (0.5, 0.5, 0.9), (50.0, 0.5, 0.97)):
        assert betainc(a, b, x) == pytest.approx(scipy.special.betainc(a, b, x), rel=1e-10)
    rng = np.random.default_rng(0)
    d = rng.normal(0.02, 0.1, 300)
    t, p = paired_t_test(d)
    ref = scipy.stats.ttest_rel(d, np.zeros_like(d))
    assert t == pytest.approx(ref.statistic, rel=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)
    assert paired_t_test(np.zeros(10)) == (0.0, 1.0)


def test_holm_against_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, np.nan, 0.01]), [0.5, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.9, 0.3]), [0.9, 0.6])  # 0.3*2=0.6, then max(0.6, 0.9*1)
    rng = np.random.default_rng(1)
    for _ in range(20):  # the step-down definition, written out
        q = rng.random(7) ** 3
        order = np.argsort(q)
        want = np.empty(7)
        running = 0.0
        for i, j in enumerate(order):
            running = max(running, min(1.0, (7 - i) * q[j]))
            want[j] = running
        np.testing.assert_allclose(holm(q), want)


def test_holm_family_and_markers(tmp_path):
    a = make_run(tmp_path, "a", n=60, seed=1)
    b = make_run(tmp_path, "b", n=60, seed=2, shift=0.08, rd_shift=-4.0)
    c = make_run(tmp_path, "c", n=60, seed=3)
    cmp = compare([a, b, c], samples=500, seed=1)
    summary = [r for r in cmp.records if r["level"] == "summary" and not r["baseline"]]
    np.testing.assert_allclose([r["p_holm"] for r in summary], holm([r["p"] for r in summary]))
    assert record(cmp, "b", "cross", "map")["significant"] and record(cmp, "b", "cross", "map")["better"]
    rd = record(cmp, "b", "multi", "rank_distance")
    assert rd["diff"] < 0 and rd["significant"] and rd["better"]  # lower rank distance is better
    assert not any(r["significant"] for r in summary if r["run"] == "c" and r["metric"] == "map")
    fam = [r for r in cmp.records if r["level"] == "language" and r["setting"] == "mono" and r["metric"] == "map"
           and not r["baseline"]]
    np.testing.assert_allclose([r["p_holm"] for r in fam], holm([r["p"] for r in fam]))


def test_bootstrap_ci_coverage_by_simulation():
    """95% stratified-bootstrap intervals of a macro-average cover the true difference ~95% of the time."""
    from fastir.kernels.resampling import stratified_bootstrap_statistics

    rng = np.random.default_rng(2024)
    n_lang, n = 3, 40
    n_q = n_lang * n
    strata_ptr = np.arange(n_lang + 1) * n
    # cells X->Y for all X, Y: the query effect u_q is shared by all its cells; true Cr. = 0.1, Mo. = 0.05
    cell_q, cell_kind = [], []
    for x in range(n_lang):
        for y in range(n_lang):
            cell_q.append(np.arange(x * n, (x + 1) * n))
            cell_kind.append(x == y)
    cell_ptr = np.concatenate([[0], np.cumsum([len(q) for q in cell_q])])
    row_query = np.concatenate(cell_q)
    mono = [j for j, k in enumerate(cell_kind) if k]
    cross = [j for j, k in enumerate(cell_kind) if not k]
    k_ptr = np.array([0, len(mono), len(mono) + len(cross)])
    k_cell = np.array(mono + cross)
    k_coef = np.array([1 / len(mono)] * len(mono) + [1 / len(cross)] * len(cross))
    covered = np.zeros(2)
    trials = 200
    for t in range(trials):
        u = rng.exponential(0.3, n_q) - 0.3  # skewed, mean-zero query effects
        d = np.concatenate([(0.05 if kind else 0.1) + u[q] + rng.normal(0, 0.2, n)
                            for q, kind in zip(cell_q, cell_kind)])
        dist = stratified_bootstrap_statistics(strata_ptr, np.arange(n_q), cell_ptr, row_query, d, k_ptr, k_cell,
                                               k_coef, n_q, 400, t)
        lo, hi = np.percentile(dist[:, :, 0], [2.5, 97.5], axis=0)
        covered += (lo <= [0.05, 0.1]) & ([0.05, 0.1] <= hi)
    coverage = covered / trials
    print("coverage (Mo., Cr.):", coverage)
    assert np.all((coverage >= 0.90) & (coverage <= 0.99)), coverage


# ----------------------------------------------------------------------------- pairing and names


def test_only_queries_scored_in_every_run_are_paired(tmp_path):
    a = make_run(tmp_path, "a", seed=1)
    rows = synth_rows(["de", "en", "zh"], 12, 2)
    keep = [i for i, q in enumerate(rows["query_id"]) if q != "en-q3"]
    write_per_query(tmp_path / "b" / "scores", {k: [v[i] for i in keep] for k, v in rows.items()})
    cmp = compare([a, tmp_path / "b"], samples=20)
    assert cmp.n_queries == 35
    assert cmp.unpaired_rows == [4, 0]  # en-q3 in a: 1 mono + 2 cross + 1 multi row
    assert cmp.to_json()["paired"]["unpaired_rows"] == {"a": 4, "b": 0}
    mono_en = [r["ap"] for r in rows_of(a) if r["setting"] == "mono" and r["query_lang"] == "en"
               and r["query_id"] != "en-q3"]
    assert record(cmp, "a", "mono", "map", "language", "en")["value"] == pytest.approx(np.mean(mono_en))


def test_default_names_and_scores_dirs(tmp_path):
    p1 = write_per_query(tmp_path / "x" / "run" / "scores", synth_rows(["en"], 3, 1)) / "per_query.parquet"
    p2 = write_per_query(tmp_path / "y" / "run" / "scores", synth_rows(["en"], 3, 2)) / "per_query.parquet"
    p3 = write_per_query(tmp_path / "plain", synth_rows(["en"], 3, 3)) / "per_query.parquet"
    assert default_names([p1, p2, p3]) == ["x/run", "y/run", "plain"]
    same = default_names([p1, p1])  # the same run twice: full paths still clash -> "#2"
    assert same[1] == same[0] + "#2" and same[0].endswith("x/run") and not same[0].startswith("/")
    cmp = compare([tmp_path / "x" / "run" / "scores", tmp_path / "y" / "run", tmp_path / "plain"],
                  baseline="y/run", samples=10)
    assert cmp.names == ["x/run", "y/run", "plain"] and cmp.baseline == 1


def test_same_seed_same_result_and_seed_matters(tmp_path):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, shift=0.02)
    one = compare([a, b], samples=300, seed=5).to_json()
    two = compare([a, b], samples=300, seed=5).to_json()
    three = compare([a, b], samples=300, seed=6).to_json()
    assert one == two
    assert one["results"] != three["results"]


# ----------------------------------------------------------------------------- bad input


@pytest.fixture()
def two_runs(tmp_path):
    return make_run(tmp_path, "a", seed=1), make_run(tmp_path, "b", seed=2)


def _cli_error(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_one_run_only(two_runs, capsys):
    assert "at least two runs" in _cli_error(["compare", str(two_runs[0])], capsys)


def test_missing_per_query_file(tmp_path, two_runs, capsys):
    (tmp_path / "empty" / "scores").mkdir(parents=True)
    err = _cli_error(["compare", str(two_runs[0]), str(tmp_path / "empty")], capsys)
    assert "per_query.parquet" in err and "empty" in err
    assert "no such" in _cli_error(["compare", str(two_runs[0]), str(tmp_path / "nope")], capsys)


def test_different_datasets_refused(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, checksum="other")
    err = _cli_error(["compare", str(a), str(b)], capsys)
    assert "dataset_checksum" in err and "different datasets" in err


def test_different_query_sets_refused(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", langs=("de", "en"), seed=2)
    assert "query set" in _cli_error(["compare", str(a), str(b)], capsys)


@pytest.mark.parametrize("mutate, field", [
    (lambda rows: rows["ap"].__setitem__(3, float("nan")), "ap"),
    (lambda rows: rows["recall@1"].__setitem__(0, 1.5), "recall@1"),
    (lambda rows: rows["setting"].__setitem__(0, "mixed"), "setting"),
    (lambda rows: rows["cand_lang"].__setitem__(0, "zz"), "cand_lang"),  # a mono row with cand != query
    (lambda rows: [rows[k].__setitem__(1, rows[k][0]) for k in rows], "query_id"),  # duplicate row
    (lambda rows: rows["num_relevant"].__setitem__(0, 0), "num_relevant"),
    (lambda rows: rows["rank_distance"].__setitem__(0, 3.0), "rank_distance"),  # a mono row
    (lambda rows: rows["query_lang"].__setitem__(1, "zh"), "query_lang"),  # de-q0 with two languages
])
def test_bad_rows(tmp_path, capsys, mutate, field):
    a = make_run(tmp_path, "a", seed=1)
    rows = synth_rows(["de", "en", "zh"], 12, 2)
    mutate(rows)
    write_per_query(tmp_path / "b" / "scores", rows)
    err = _cli_error(["compare", str(a), str(tmp_path / "b")], capsys)
    assert f": {field}" in err and "per_query.parquet" in err


def test_missing_column_and_metadata(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, ks=(1, 5))
    assert "recall@10" in _cli_error(["compare", str(a), str(b)], capsys)
    c = make_run(tmp_path, "c", seed=3, meta={"format": "something-else"})
    assert "format" in _cli_error(["compare", str(a), str(c)], capsys)
    (tmp_path / "d" / "scores").mkdir(parents=True)
    pq.write_table(pa.table({"query_id": ["x"]}), tmp_path / "d" / "scores" / "per_query.parquet")
    assert "fastir metadata" in _cli_error(["compare", str(a), str(tmp_path / "d")], capsys)
    (tmp_path / "e" / "scores").mkdir(parents=True)
    (tmp_path / "e" / "scores" / "per_query.parquet").write_bytes(b"not parquet")
    assert "cannot read Parquet" in _cli_error(["compare", str(a), str(tmp_path / "e")], capsys)


def test_bad_options(two_runs, capsys, tmp_path):
    a, b = map(str, two_runs)
    assert "--baseline" in _cli_error(["compare", a, b, "--baseline", "zzz"], capsys)
    assert "unknown metric" in _cli_error(["compare", a, b, "--metrics", "ndcg"], capsys)
    assert "--names" in _cli_error(["compare", a, b, "--names", "x,x"], capsys)
    _cli_error(["compare", a, b, "--samples", "0"], capsys)
    _cli_error(["compare", a, b, "--test", "wilcoxon"], capsys)
    with pytest.raises(InputError):
        compare([a, b], test="nope")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    assert "not empty" in _cli_error(["compare", a, b, "--out", str(busy)], capsys)
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]


# ----------------------------------------------------------------------------- CLI end to end


def test_cli_writes_every_format(tmp_path, capsys):
    a = make_run(tmp_path, "hybrid", n=50, seed=1, shift=0.1)
    b = make_run(tmp_path, "xy", n=50, seed=2)
    out = tmp_path / "cmp"
    assert main(["compare", str(b), str(a), "--samples", "400", "--seed", "3", "--out", str(out),
                 "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["baseline"] == "xy" and printed["test"] == "randomization"
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "compare.md", "compare.png", "compare.tex",
                                                     "compare.txt"]
    assert json.loads((out / "compare.json").read_text()) == printed
    _check_plot(out / "compare.png", printed)
    md = (out / "compare.md").read_text()
    assert "| Run | Mo. mAP | Cr. mAP | Mul. mAP | Mo. R@1" in md and "Rank dist." in md and "▲" in md
    tex = (out / "compare.tex").read_text()
    assert "\\begin{tabular}" in tex and "$^{\\uparrow}$" in tex
    txt = (out / "compare.txt").read_text()
    assert "xy (baseline)" in txt and "Cr. mAP by query language" in txt
    for fmt in ("table", "markdown", "latex"):
        assert main(["compare", str(b), str(a), "--samples", "50", "--format", fmt, "--test", "t"]) == 0
        assert "hybrid" in capsys.readouterr().out


def _check_plot(png: Path, doc: dict) -> None:
    """compare.png is the bar plot of the first metric's per-language values of compare.json."""
    from matplotlib.image import imread

    from fastir.compare.render import bar_figure, bar_plot_data
    from fastir.compare.report import PLOT_DPI

    fig = bar_figure(bar_plot_data(doc))
    width, height = fig.get_size_inches() * PLOT_DPI
    assert imread(png).shape[:2] == (round(height), round(width))
    values = {(r["setting"], r["lang"], r["run"]): r["value"] for r in doc["results"]
              if r["level"] == "language" and r["metric"] == doc["metrics"][0]}
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["Mo. mAP", "Cr. mAP", "Mul. mAP"]
    for ax, setting in zip(axes, ("mono", "cross", "multi")):
        bars = [c for c in ax.containers if hasattr(c, "patches")]
        assert len(bars) == len(doc["systems"])
        for b, system in zip(bars, [s["name"] for s in doc["systems"]]):
            np.testing.assert_allclose([p.get_height() for p in b.patches],
                                       [values[(setting, lang, system)] for lang in doc["langs"]])
    marked = sum(r["vs"].get(doc["baseline"], {}).get("significant", False) for r in doc["results"]
                 if r["level"] == "language" and r["metric"] == doc["metrics"][0])
    assert sum(len(ax.texts) for ax in axes) == marked  # a marker per significant bar


def test_flat_paired_randomization_test_matches_reference():
    from fastir.compare.comparison import paired_randomization_test

    rng = np.random.default_rng(8)
    a = rng.random(90)
    b = a + rng.normal(0.03, 0.1, 90)
    d = b - a
    flips = [np.mean(_signs(11, i, 90) * d) for i in range(500)]
    want = (1 + sum(abs(t) >= abs(d.mean()) * (1 - 1e-9) for t in flips)) / 501
    assert paired_randomization_test(a, b, 500, 11) == want


def test_tiny_cells_missed_by_some_resamples(tmp_path):
    # like MLQA-R: only one de query has a relevant zh candidate; many resamples draw no query of that
    # cell (NaN), those resamples are left out of its interval instead of poisoning it
    def rows_for(seed):
        rows = synth_rows(["de", "zh"], 20, seed)
        keep = [i for i, (q, s, y) in enumerate(zip(rows["query_id"], rows["setting"], rows["cand_lang"]))
                if not (s == "cross" and y == "zh" and q != "de-q0")]
        return {k: [v[i] for i in keep] for k, v in rows.items()}

    write_per_query(tmp_path / "a", rows_for(1))
    write_per_query(tmp_path / "b", rows_for(2))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cmp = compare([tmp_path / "a", tmp_path / "b"], test="bootstrap", samples=300, seed=0)
    rec = record(cmp, "b", "cross", "map", "language", "de")
    assert None not in rec["ci"] and rec["ci"][0] <= rec["value"] <= rec["ci"][1]
    assert 0 < rec["p"] <= 1


def test_failed_compare_leaves_no_output(tmp_path, capsys):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, checksum="other")
    out = tmp_path / "never"
    assert main(["compare", str(a), str(b), "--out", str(out)]) == 2
    assert not out.exists()


def test_worse_run_gets_down_marker_and_names(tmp_path, capsys):
    a = make_run(tmp_path, "a", n=60, seed=1)
    b = make_run(tmp_path, "b", n=60, seed=2, shift=-0.1)
    assert main(["compare", str(a), str(b), "--names", "base,worse", "--baseline", "base", "--samples", "300",
                 "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| worse |" in md and "▼" in md and "▲" not in md.split("### Summary")[1].split("###")[0].replace(
        "▲/▼", "")


def test_metrics_all_carries_every_registry_metric_the_runs_hold(tmp_path):
    a = make_run(tmp_path, "a", seed=1, ks=(1, 5, 10))
    b = make_run(tmp_path, "b", seed=2, ks=(1, 10))  # recall@5 only in a: not common, left out
    cmp = compare([a, b], metrics=["all"], samples=50)
    assert cmp.metrics == ["map", "mrr", "recall@1", "recall@10", "rank_distance"]
    assert {r["metric"] for r in cmp.records} == set(cmp.metrics)
    labels = summary_grid(cmp, ci=False)[0]
    assert "Mo. MRR" in labels and "Mul. R@10" in labels and labels[-1] == "Rank dist."
