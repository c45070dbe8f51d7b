"""``fastir experiment`` end to end on the CPU: tiny BERT, synthetic train table, synthetic LAReQA dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastir.cli import main


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Reference AP: (1/R) sum_k k / rank_k (continuous scores: no ties)."""
    order = np.argsort(-scores, kind="stable")
    ranks = np.flatnonzero(np.isin(order, relevant)) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def _lareqa_dir(root: Path, make_train_rows) -> Path:
    """A LAReQA-format dir ({lang}.json, SQuAD style): one paragraph per xling_id and language, whose
    first sentence is the answer and second a distractor; the question is the train table's query."""
    root.mkdir()
    rows = make_train_rows(seed=7)
    rng = np.random.default_rng(7)
    for lang in ("aa", "bb", "cc"):
        paragraphs = []
        for r in (r for r in rows if r["lang"] == lang):
            # distinct distractors: identical texts would tie exactly (fastir score counts ties against the gold)
            answer = r["passage"]
            distractor = " ".join([lang, *(f"f{x}" for x in rng.integers(0, 30, size=6))])
            context = f"{answer} {distractor}"
            paragraphs.append({
                "context": context,
                "sentence_breaks": [[0, len(answer)], [len(answer) + 1, len(context)]],
                "qas": [{"id": r["xling_id"], "question": r["query"], "answers": [{"answer_start": 0, "text": answer}]}],
            })
        (root / f"{lang}.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    return root


def _argv(table, model, out, lareqa, *extra):
    return ["experiment", "--data", table, "--model", model, "--out", str(out), "--eval", str(lareqa),
            "--batch-size", "16", "--lr", "2e-3", "--pooling", "mean", "--device", "cpu", "--no-progress",
            "--max-length", "12", "--allow-overlap", "--samples", "200", "--store", "fp32", *extra]


@pytest.fixture(scope="module")
def experiment(train_tiny_bert, train_table_arrow, tmp_path_factory):
    """One small experiment shared by the tests below (the last one adds a seed to it): x-x-mono and
    hybrid from seeds 0 and 1 plus base, 8 steps, held-out curve and checkpoints every 4 steps."""
    from tests.conftest import make_train_rows

    root = tmp_path_factory.mktemp("experiment")
    lareqa = _lareqa_dir(root / "synth-lareqa", make_train_rows)  # shares the training ids: --allow-overlap
    out = root / "exp"
    argv = _argv(train_table_arrow, train_tiny_bert, out, lareqa, "--strategies", "x-x-mono,hybrid", "--seeds", "0,1",
                 "--include-base", "--baselines", "x-x-mono,base", "--steps", "8", "--eval-every", "4",
                 "--save-steps", "4", "--alpha-mode", "exact")
    assert main(argv) == 0
    return out, lareqa, argv


@pytest.mark.slow
def test_experiment_seeds_layout_and_results(experiment, capsys):
    import pyarrow.parquet as pq

    from fastir.data.train_table import open_train_table
    from fastir.runs.rundir import read_run

    out, lareqa, _ = experiment
    results = json.loads((out / "results.json").read_text())
    assert results["format"] == "fastir-experiment/2"
    assert results["names"] == ["base", "x-x-mono@0", "hybrid@0", "x-x-mono@1", "hybrid@1"]
    assert results["overlap"] == {"allowed": True, "datasets": {"synth-lareqa": {
        "train_rows": 144, "rows": 144, "by_key": {"xling_id": 144, "query": 0, "passage": 0, "negative": 0}}}}
    s = results["settings"]
    assert s["seeds"] == [0, 1] and s["baselines"] == ["x-x-mono", "base"] and s["heldout"] == str(lareqa)
    assert s["eval_every"] == 4 and s["train"]["steps"] == 8 and s["eval_max_length"] == 64
    langs = set(open_train_table(s["data"][0]).table.column("lang").to_pylist())
    assert s["train_langs"] == sorted(langs) and len(langs) > 1
    assert set(results["compare_s"]) == {"synth-lareqa"}
    for name, run in results["runs"].items():
        root = out / run["dir"]
        assert root == (out / "base" if name == "base" else out / run["strategy"] / f"seed-{run['seed']}")
        # evaluation embeds at the model's own length (64 positions), not training's --max-length 12
        assert read_run(root / "runs" / "synth-lareqa").meta["max_length"] == 64
        columns = pq.read_schema(root / "scores" / "synth-lareqa" / "per_query.parquet").names
        assert {"ap", "rr", "recall@1", "recall@10", "rank_distance"} <= set(columns)
        row = run["results"]["synth-lareqa"]
        for key in ("mono_map", "cross_map", "multi_map", "multi_recall@1", "multi_recall@10", "rank_distance"):
            assert row[key] is not None and np.isfinite(row[key]), (name, key)
        trained = {"train"} if run["seed"] is not None else set()
        assert set(run["stages_s"]) == {"embed:synth-lareqa", "score:synth-lareqa"} | trained
        if name == "base":
            continue
        assert (root / "model" / "final").is_dir()
        recorded = run["train_settings"]  # resolved by the training run itself
        assert (recorded["strategy"], recorded["seed"], recorded["eval_every"]) == (run["strategy"], run["seed"], 4)
        # the realised batch kinds come from train.jsonl; exact alpha: 4 mono and 4 cross batches of 8
        assert run["batches"]["steps"] == 8
        if run["strategy"] == "hybrid":
            assert run["batches"]["kinds"] == {"mono": 4, "cross": 4}
        curve = run["curve"]
        assert curve["step"] == list(range(1, 9)) and len(curve["loss"]) == 8
        assert [e["step"] for e in curve["eval"]] == [0, 4, 8]
        # the held-out set is the evaluation dataset: the curve's last point is the table's pooled mAP
        assert curve["eval"][-1]["eval_pooled_map"] == pytest.approx(row["micro_multi_map"], abs=1e-6)
    # the two seeds are two different training runs
    assert results["runs"]["hybrid@0"]["results"] != results["runs"]["hybrid@1"]["results"]
    # training helps on this learnable data
    assert results["runs"]["hybrid@0"]["results"]["synth-lareqa"]["multi_map"] > \
        results["runs"]["base"]["results"]["synth-lareqa"]["multi_map"] + 0.02


@pytest.mark.slow
def test_learning_curve_equals_a_separate_score_of_the_checkpoint(experiment, tmp_path, capsys):
    """The held-out pooled mAP logged at step 4 equals fastir embed + fastir score of checkpoint-000004."""
    out, lareqa, _ = experiment
    results = json.loads((out / "results.json").read_text())
    ckpt = out / "hybrid" / "seed-1" / "model" / "checkpoint-000004"
    assert main(["embed", "--dataset", str(lareqa), "--model", str(ckpt), "--out", str(tmp_path / "run"),
                 "--store", "fp32", "--device", "cpu", "--no-progress"]) == 0
    assert main(["score", str(tmp_path / "run"), "--out", str(tmp_path / "scores"), "--format", "json"]) == 0
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    logged = {e["step"]: e for e in results["runs"]["hybrid@1"]["curve"]["eval"]}[4]
    assert summary["summary"]["micro_multi_map"] == pytest.approx(logged["eval_pooled_map"], abs=1e-6)
    assert summary["summary"]["multi"]["map"] == pytest.approx(logged["eval_multi_map"], abs=1e-6)
    assert summary["summary"]["micro_multi_map"] != pytest.approx(
        {e["step"]: e for e in results["runs"]["hybrid@1"]["curve"]["eval"]}[8]["eval_pooled_map"], abs=1e-6)


def _table(md: str, title: str) -> list[list[str]]:
    """The rows (cells split) of the Markdown table after the line ``title``."""
    lines = md.split(title + "\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


@pytest.mark.slow
def test_report_numbers_are_the_comparison_and_figures_are_written(experiment):
    from fastir.compare.render import cell

    out, _, _ = experiment
    results = json.loads((out / "results.json").read_text())
    cmp = results["compare"]["synth-lareqa"]
    assert cmp["interval"] == "two-level (seeds, queries)" and cmp["baselines"] == ["x-x-mono", "base"]
    md = (out / "report.md").read_text()
    records = {(r["level"], r["setting"], r["metric"], r["lang"], r["run"]): r for r in cmp["results"]}
    table1 = _table(md, "**Table 1: mAP**")
    assert [row[0] for row in table1] == ["base (baseline²)", "x-x-mono (baseline¹)", "hybrid"]
    for row, system in zip(table1, ("base", "x-x-mono", "hybrid")):
        for text, setting in zip(row[1:], ("mono", "cross", "multi")):
            rec = records[("summary", setting, "map", None, system)]
            assert cell(rec, ["x-x-mono", "base"]) == text
            assert text.startswith(f"{rec['value']:.3f}")
            if system != "base":  # two seeds: the spread across seeds and the interval
                assert f"±{rec['seed_sd']:.3f} [{rec['ci'][0]:.3f}, {rec['ci'][1]:.3f}]" in text
            vs = rec["vs"].get("base")
            if vs is not None:  # a marker exactly where the comparison says significant
                assert (("▲²" if vs["better"] else "▼²") in text) == vs["significant"]
                assert vs["significant"] or "²" not in text
    table2 = _table(md, "**Table 2: R@1, R@10 and rank distance**")
    rd = records[("summary", "multi", "rank_distance", None, "hybrid")]
    assert table2[2][-1].startswith(f"{rd['value']:.1f} ±{rd['seed_sd']:.1f}")  # a rank: one decimal
    de = _table(md, "**Mul. mAP by query language**")
    assert de[2][1].startswith(f"{records[('language', 'multi', 'map', 'aa', 'hybrid')]['value']:.3f}")
    # trained hybrid is significantly better than the untrained base somewhere in Table 1
    assert any("▲²" in cell for cell in table1[2][1:])
    assert "not used" in md or "never used" in md or "no checkpoint is chosen" in md
    _check_figures(out, results, md)


def _check_figures(out: Path, results: dict, md: str) -> None:
    """Each figure the report links is the drawing of the experiment's numbers: redrawn here, its
    panels checked against results.json, and the PNG on disk decoded at the redrawn figure's size."""
    import pyarrow.parquet as pq
    from matplotlib.image import imread

    from fastir.experiment import figures

    ds, cmp = "synth-lareqa", results["compare"]["synth-lareqa"]
    drawn = {f"{ds}-heatmap.png": figures.heatmap_figure(results, cmp, out, ds),
             f"{ds}-languages.png": figures.language_bars_figure(cmp, ds),
             f"{ds}-rank-distance.png": figures.rank_distance_figure(cmp, out, ds, results),
             "curves.png": figures.curves_figure(results)}
    for name, fig in drawn.items():
        assert f"(figures/{name})" in md
        width, height = fig.get_size_inches() * figures.DPI
        assert imread(out / "figures" / name).shape[:2] == (round(height), round(width))

    def seed_mean(system, key):
        return np.mean([results["runs"][r]["results"][ds][key] for r in results["runs"]
                        if r.partition("@")[0] == system])

    # heatmap, hybrid − base: its diagonal cells average to the Mo. mAP difference, the others to Cr.
    panel = next(ax for ax in drawn[f"{ds}-heatmap.png"].get_axes() if ax.get_title() == "hybrid − base")
    diff = np.asarray(panel.images[0].get_array())
    off = ~np.eye(len(diff), dtype=bool)
    assert np.mean(np.diag(diff)) == pytest.approx(seed_mean("hybrid", "mono_map") - seed_mean("base", "mono_map"))
    assert np.mean(diff[off]) == pytest.approx(seed_mean("hybrid", "cross_map") - seed_mean("base", "cross_map"))
    # per-language bars: the comparison's per-language mAP of each system, per setting
    records = {(r["setting"], r["lang"], r["run"]): r["value"] for r in cmp["results"]
               if r["level"] == "language" and r["metric"] == "map"}
    for ax, setting in zip(drawn[f"{ds}-languages.png"].get_axes(), ("mono", "cross", "multi"), strict=True):
        bars = [c for c in ax.containers if hasattr(c, "patches")]
        assert len(bars) == len(cmp["systems"])
        for b, system in zip(bars, [s["name"] for s in cmp["systems"]]):
            np.testing.assert_allclose([p.get_height() for p in b.patches],
                                       [records[(setting, lang, system)] for lang in cmp["langs"]])
    # rank distance: one box per system, its mean marker the mean over every seed's pooled queries
    ax = drawn[f"{ds}-rank-distance.png"].get_axes()[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [s["name"] for s in cmp["systems"]]
    means = [line.get_ydata()[0] for line in ax.get_lines() if line.get_marker() == "^"]
    assert len(means) == len(cmp["systems"])
    for mean, system in zip(means, cmp["systems"]):
        values = np.concatenate([pq.read_table(out / results["runs"][r]["dir"] / "scores" / ds / "per_query.parquet",
                                               filters=[("setting", "=", "multi")])["rank_distance"].to_numpy()
                                 for r in system["runs"]])
        assert mean == pytest.approx(np.nanmean(values))
    # curves: hybrid's mean held-out line ends at the mean over seeds of its last held-out mAP
    curve = next(line for line in drawn["curves.png"].get_axes()[1].get_lines()
                 if line.get_label() == "hybrid" and line.get_linewidth() == 1.6)
    last = [results["runs"][r]["curve"]["eval"][-1]["eval_pooled_map"] for r in ("hybrid@0", "hybrid@1")]
    assert curve.get_ydata()[-1] == pytest.approx(np.mean(last))


@pytest.mark.slow
def test_rerun_reuses_every_stage_and_a_new_seed_trains_only_itself(experiment, capsys):
    out, _, argv = experiment
    results = json.loads((out / "results.json").read_text())
    logs = {p: p.read_text() for p in out.glob("*/seed-*/model/train.jsonl")}
    stages = {p: p.read_text() for p in out.glob("**/stages.json")}
    assert len(logs) == 4 and len(stages) == 5
    i = argv.index("0,1")
    assert main(argv[:i] + ["0,1,2"] + argv[i + 1:]) == 0
    printed = capsys.readouterr().out
    assert "Table 1" in printed and "hybrid" in printed
    assert {p: p.read_text() for p in logs} == logs
    assert {p: p.read_text() for p in stages} == stages
    again = json.loads((out / "results.json").read_text())
    assert again["names"][-2:] == ["x-x-mono@2", "hybrid@2"]
    assert (out / "hybrid" / "seed-2" / "scores" / "synth-lareqa" / "per_query.parquet").is_file()
    for name in results["names"]:
        assert again["runs"][name]["results"] == results["runs"][name]["results"]
        assert again["runs"][name]["stages_s"] == results["runs"][name]["stages_s"]


def test_rerun_with_more_metrics_rescores_compares_and_reports_them(experiment, capsys):
    """--metrics adds registry metrics (here the pooled-only language-bias share and nDCG): every run is
    rescored from its run dir (training untouched), compared, and reported in its own table."""
    import pyarrow.parquet as pq

    out, _, argv = experiment
    i = argv.index("0,1")
    argv = argv[:i] + ["0,1,2"] + argv[i + 1:]
    logs = {p: p.read_text() for p in out.glob("*/seed-*/model/train.jsonl")}
    assert main(argv + ["--metrics", "ndcg@10,same_lang@3,map,map@10"]) == 0
    capsys.readouterr()
    assert {p: p.read_text() for p in logs} == logs
    results = json.loads((out / "results.json").read_text())
    # map is reported anyway; map@10 (trec_eval's map_cut_10) is another measure
    assert results["settings"]["metrics"] == ["ndcg@10", "same_lang@3", "map@10"]
    columns = pq.read_schema(out / "hybrid" / "seed-2" / "scores" / "synth-lareqa" / "per_query.parquet").names
    assert {"ndcg@10", "same_lang@3", "ap@10", "ap"} <= set(columns), columns
    records = results["compare"]["synth-lareqa"]["results"]
    shares = [r for r in records if r["metric"] == "same_lang@3" and r["level"] == "summary"]
    assert {r["setting"] for r in shares} == {"multi"} and len(shares) == 3  # base, x-x-mono, hybrid
    assert all(0.0 <= r["value"] <= 1.0 for r in shares)
    report = (out / "report.md").read_text()
    assert "**Other metrics**" in report and "nDCG@10" in report and "mAP@10" in report


def test_each_run_sets_the_per_run_fields_and_takes_every_other_from_train(tmp_path):
    from dataclasses import fields

    from fastir.experiment.driver import PER_RUN, ExperimentConfig, _train_config
    from fastir.train.config import TrainConfig

    given = object()
    cfg = ExperimentConfig(data=["t.arrow"], model="m", out=str(tmp_path),
                           train={f.name: given for f in fields(TrainConfig)})
    run = _train_config(cfg, "hybrid", 3, tmp_path, None)
    assert {f.name for f in fields(TrainConfig) if getattr(run, f.name) is not given} == set(PER_RUN)


@pytest.mark.slow
def test_sampler_and_checkpoint_options_reach_every_run(train_tiny_bert, train_table_arrow, tmp_path):
    """The training options fastir experiment gained reach each run's TrainConfig (as training records
    it in fastir-train.json) and results.json's settings.train, and take effect (checkpoints, batch log)."""
    from tests.conftest import make_train_rows

    out = tmp_path / "exp"
    argv = _argv(train_table_arrow, train_tiny_bert, out, _lareqa_dir(tmp_path / "synth-lareqa", make_train_rows),
                 "--strategies", "x-x-mono,hybrid", "--steps", "2", "--save-steps", "1", "--keep-checkpoints", "1",
                 "--lang-weights", "aa=2,bb=1", "--source-mode", "uniform", "--no-hard-negatives", "--log-batches")
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    given = {"lang_weights": {"aa": 2.0, "bb": 1.0}, "keep_checkpoints": 1, "source_mode": "uniform",
             "hard_negatives": False, "log_batches": True}
    assert {key: results["settings"]["train"][key] for key in given} == given
    assert results["names"] == ["x-x-mono@0", "hybrid@0"]
    for run in results["runs"].values():
        assert {key: run["train_settings"][key] for key in given} == given
        model = out / run["dir"] / "model"
        assert [p.name for p in model.glob("checkpoint-*")] == ["checkpoint-000002"]
        assert len((model / "batches.rank0.jsonl").read_text().splitlines()) == 2


def test_experiment_rejects_unknown_strategy(train_tiny_bert, train_table_arrow, tmp_path, capsys):
    code = main(["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(tmp_path / "e"),
                 "--strategies", "x-x-mono,bogus"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "bogus" in err[0]
    assert not (tmp_path / "e").exists()


def test_every_strategy_is_checked_against_the_data_before_the_first_trains(train_tiny_bert, train_rows, tmp_path,
                                                                            capsys):
    make_train_rows, write_arrow = train_rows
    one_lang = write_arrow(tmp_path / "aa-only.arrow", make_train_rows(langs=("aa",)))
    out = tmp_path / "e"
    code = main(["experiment", "--data", one_lang, "--model", train_tiny_bert, "--out", str(out),
                 "--strategies", "x-x-mono,x-y", "--batch-size", "16", "--steps", "2", "--device", "cpu",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {one_lang}: xling_id: x-y batches need xling_ids present in >= 2 languages")
    assert not out.exists()  # x-x-mono (valid on its own) did not train


def test_experiment_refuses_overlap_before_any_work(train_tiny_bert, train_table_arrow, train_rows, tmp_path, capsys):
    make_train_rows, _ = train_rows
    lareqa = _lareqa_dir(tmp_path / "synth-lareqa", make_train_rows)
    out = tmp_path / "e"
    code = main(["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
                 "--strategies", "x-x-mono", "--eval", str(lareqa), "--batch-size", "16", "--steps", "2",
                 "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: {train_table_arrow}: row 0: xling_id equals the parallel-group id of x0_aa "
                          "in evaluation dataset synth-lareqa (144 of 144 training rows overlap")
    assert "--allow-overlap" in err and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--eval", "no-such-dataset"], "no-such-dataset: dataset: unknown dataset"),
    # issue 31, item 14: checked before training, not after it
    (["--eval", "xquad-r,xquad-r"], "--eval: 'xquad-r' and 'xquad-r' share the folder name 'xquad-r'"),
    (["--eval", "xquad-r,/tmp/x/xquad-r"], "--eval: 'xquad-r' and '/tmp/x/xquad-r' share the folder name"),
    (["--eval", ".."], "--eval: '..': its folder name '..' cannot name runs/<dataset>/"),
    (["--eval-max-length", "0"], "--eval-max-length: must be positive, found 0"),
    (["--eval-max-length", "65"], "--eval-max-length: 65 is above the model's limit of 64 tokens"),
])
def test_experiment_bad_eval_settings(train_tiny_bert, train_table_arrow, tmp_path, capsys, args, message):
    out = tmp_path / "e"
    code = main(["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
                 "--strategies", "x-x-mono", "--batch-size", "16", "--steps", "2", "--device", "cpu",
                 "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--seeds", ""], "error: --seeds: no seed given"),
    (["--seeds", "0,1,0"], "error: --seeds: seed 0 is listed twice"),
    (["--seeds", "0,-1"], "error: --seeds: -1 is out of range (0 to 9223372036854775807)"),
    (["--seeds", "0,1.5"], "error: --seeds: expected an integer in ASCII digits, found '1.5'"),
    (["--seeds", "0,1", "--seed", "3"], "error: --seeds: give --seed or --seeds, not both"),
    (["--baselines", "x-y"], "error: --baselines: 'x-y' is not among the strategies x-x-mono, hybrid"),
    (["--baselines", "base"],
     "error: --baselines: 'base' is not among the strategies x-x-mono, hybrid (add --include-base"),
    (["--baselines", "hybrid,hybrid"], "error: --baselines: a baseline is listed twice"),
    (["--baselines", ","], "error: --baselines: no baseline given"),
    (["--eval-every", "-1"], "error: --eval-every: must be non-negative, found -1"),
    (["--heldout", "xquad-r"], "error: --heldout: needs --eval-every N"),
    (["--eval-every", "2", "--heldout", "no-such-heldout"], "no-such-heldout: dataset: unknown dataset"),
    (["--eval-every", "2", "--heldout-max-queries", "-1"], "error: --heldout-max-queries: must be non-negative"),
    (["--samples", "0"], "error: --samples: must be positive, found 0"),
    (["--metrics", "map,nope@3"], "error: --metrics: "),
])
def test_experiment_bad_seeds_baselines_and_curves(train_tiny_bert, train_table_arrow, tmp_path, capsys, args,
                                                   message):
    out = tmp_path / "e"
    code = main(["experiment", "--data", train_table_arrow, "--model", train_tiny_bert, "--out", str(out),
                 "--strategies", "x-x-mono,hybrid", "--batch-size", "16", "--steps", "2", "--device", "cpu",
                 "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()
