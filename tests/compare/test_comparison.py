"""fastir.compare.comparison: pairing, statistics, tests (vs scipy / a slow numpy reference), CIs, Holm.

Inputs are synthetic per_query.parquet files written in the exact `fastir score --per-query` format
(data_specs/per-query-format.json) by ``write_per_query`` (tests/compare/conftest.py). Holm and the t
distribution: test_stats.py; inputs and names: test_inputs.py; the command's bad input: tests/cli/test_compare.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.stats

from fastir.cli import main
from fastir.compare.comparison import compare
from fastir.compare.report import summary_grid
from fastir.compare.stats import holm
from tests.compare.conftest import ref_counts, ref_signs, synth_rows, write_per_query
from tests.compare.conftest import scores_run as make_run

# ----------------------------------------------------------------------------- synthetic inputs


def rows_of(path):
    return pq.read_table(Path(path) / "scores" / "per_query.parquet").to_pylist()


def record(cmp, run, setting, metric, level="summary", lang=None):
    (rec,) = [r for r in cmp.records if (r["level"], r["setting"], r["metric"], r["lang"], r["run"])
              == (level, setting, metric, lang, run)]
    return rec


# ----------------------------------------------------------------------------- slow references

def _query_order(rows):
    """Query index as documented: queries sorted by (query_lang, query_id)."""
    pairs = sorted({(r["query_lang"], r["query_id"]) for r in rows})
    return {qid: i for i, (_, qid) in enumerate(pairs)}, pairs


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
        flips = [_paper_aggregate(ra, rb, setting, "ap", ref_signs(seed, i, len(pairs)), fixed_den=True)
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
    dist = [_paper_aggregate(ra, rb, "cross", "ap", ref_counts(seed, i, pairs), fixed_den=False)
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


def test_same_seed_same_result_and_seed_matters(tmp_path):
    a = make_run(tmp_path, "a", seed=1)
    b = make_run(tmp_path, "b", seed=2, shift=0.02)
    one = compare([a, b], samples=300, seed=5).to_json()
    two = compare([a, b], samples=300, seed=5).to_json()
    three = compare([a, b], samples=300, seed=6).to_json()
    assert one == two
    assert one["results"] != three["results"]


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
