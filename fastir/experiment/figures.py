"""``fastir experiment``'s figures (matplotlib, Agg canvas, no pyplot): per evaluation dataset the
X→Y mAP difference heatmap (strategy − baseline, mean over seeds), the per-language bars with
their intervals (``fastir compare``'s plot, :mod:`fastir.compare.render`) and the rank-distance
distributions; and the learning curves. Each ``*_figure`` function returns the drawn Figure;
:func:`write_figures` saves them.

Values come from the comparison JSON (bars) and from the runs' score files (``pairs.parquet``:
cell mAPs; ``per_query.parquet``: per-query rank distances), 0-1 scale as everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastir.compare.render import bar_figure, bar_plot_data, new_figure
from fastir.eval.result import PAIRS_PARQUET, PER_QUERY_PARQUET
from fastir.runs.experiment_dir import scores_dir

DPI = 100


def _save(fig, tmp: Path, name: str) -> str:
    fig.savefig(tmp / name, dpi=DPI, format="png")
    return f"figures/{name}"


def write_figures(results: dict, out: Path, tmp: Path) -> dict:
    """Draw every figure into ``tmp``; returns {dataset: {kind: relative path}, "curves": path}."""
    written: dict = {}
    for ds in results["settings"]["eval_datasets"]:
        cmp = results["compare"].get(ds)
        if cmp is None:
            continue
        written[ds] = {"heatmap": _save(heatmap_figure(results, cmp, out, ds), tmp, f"{ds}-heatmap.png"),
                       "languages": _save(language_bars_figure(cmp, ds), tmp, f"{ds}-languages.png"),
                       "rank_distance": _save(rank_distance_figure(cmp, out, ds, results), tmp,
                                              f"{ds}-rank-distance.png")}
    if any(run["curve"] for run in results["runs"].values()):
        written["curves"] = _save(curves_figure(results), tmp, "curves.png")
    return written


def _system_runs(cmp: dict, results: dict) -> dict[str, list[Path]]:
    """System name -> its runs' directories (one per seed)."""
    return {s["name"]: [Path(results["runs"][r]["dir"]) for r in s["runs"]] for s in cmp["systems"]}


def _cell_matrix(out: Path, run_dirs: list[Path], ds: str, langs: list[str]) -> np.ndarray:
    """Mean over seeds of the X→Y mAP cells (rows: query language, columns: candidate language)."""
    import pyarrow.parquet as pq

    mats = []
    for d in run_dirs:
        t = pq.read_table(scores_dir(out / d, ds) / PAIRS_PARQUET,
                          columns=["query_lang", "cand_lang", "setting", "map"]).to_pydict()
        m = np.full((len(langs), len(langs)), np.nan)
        for q, c, s, v in zip(t["query_lang"], t["cand_lang"], t["setting"], t["map"]):
            if s in ("mono", "cross") and q in langs and c in langs and v is not None:
                m[langs.index(q), langs.index(c)] = v
        mats.append(m)
    return np.mean(mats, axis=0)


def heatmap_figure(results: dict, cmp: dict, out: Path, ds: str):
    """One panel per (system, baseline) pair: the X→Y mAP of the system minus the baseline's."""
    langs, runs = cmp["langs"], _system_runs(cmp, results)
    cells = {name: _cell_matrix(out, dirs, ds, langs) for name, dirs in runs.items()}
    pairs = [(s["name"], b) for b in cmp["baselines"] for s in cmp["systems"] if s["name"] != b]
    seen, panels = set(), []
    for a, b in pairs:  # two baselines are compared once
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            panels.append((a, b))
    diffs = [cells[a] - cells[b] for a, b in panels]
    lim = max([float(np.nanmax(np.abs(d))) for d in diffs if np.isfinite(d).any()] + [1e-6])
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    size = 0.45 * len(langs) + 1.6
    fig = new_figure(size * cols + 0.8, size * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    for n, (ax, (a, b), d) in enumerate(zip(axes.ravel(), panels, diffs)):
        im = ax.imshow(d, cmap="RdBu", vmin=-lim, vmax=lim)
        ax.set_xticks(range(len(langs)), langs, fontsize=7)
        ax.set_yticks(range(len(langs)), langs, fontsize=7)
        ax.set_xlabel("candidate language Y", fontsize=7)
        if n % cols == 0:
            ax.set_ylabel("query language X", fontsize=7)
        ax.set_title(f"{a} − {b}", fontsize=8)
        if len(langs) <= 8:
            for (i, j), v in np.ndenumerate(d):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="Δ mAP")
    fig.suptitle(f"{ds}: X→Y mAP, strategy − baseline (mean over seeds)", fontsize=9)
    return fig  # no tight_layout: it cannot fit a colorbar shared by several panels


def language_bars_figure(cmp: dict, ds: str, metric: str = "map"):
    """``fastir compare``'s per-language bars (one panel per setting, ▲/▼ vs the first baseline)."""
    return bar_figure(bar_plot_data(cmp, metric, prefix=f"{ds}: "))


def rank_distance_figure(cmp: dict, out: Path, ds: str, results: dict):
    """Distribution of the per-query rank distance (pooled X→all rows), each system's seeds pooled."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    data, names = [], []
    for name, dirs in _system_runs(cmp, results).items():
        vals = []
        for d in dirs:
            t = pq.read_table(scores_dir(out / d, ds) / PER_QUERY_PARQUET, columns=["setting", "rank_distance"])
            col = t.filter(pc.equal(t["setting"], "multi"))["rank_distance"].to_numpy(zero_copy_only=False)
            vals.append(col[np.isfinite(col)])
        data.append(np.concatenate(vals))
        names.append(name)
    fig = new_figure(max(5.0, 0.9 * len(names) + 2), 3.2)
    ax = fig.subplots()
    ax.boxplot(data, showfliers=False, showmeans=True, whis=(5, 95))
    ax.set_xticks(range(1, len(names) + 1), names, fontsize=8, rotation=20)
    ax.set_ylabel("rank distance per query")
    ax.set_title(f"{ds}: rank distance, lower is better\n(box: quartiles, whiskers: 5–95 %, triangle: mean)",
                 fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(y) < window:
        return y
    return np.convolve(y, np.ones(window) / window, mode="valid")


def curves_figure(results: dict):
    """Loss per step (moving average) and held-out pooled mAP per strategy: thin lines per seed,
    thick the mean over seeds."""
    strategies = [s for s in results["settings"]["strategies"]]
    has_eval = any(run["curve"] and run["curve"]["eval"] for run in results["runs"].values())
    fig = new_figure(10.0 if has_eval else 5.5, 3.4)
    axes = fig.subplots(1, 2 if has_eval else 1, squeeze=False)[0]
    colors = {s: f"C{i}" for i, s in enumerate(strategies)}
    for strategy in strategies:
        runs = [r for r in results["runs"].values() if r["strategy"] == strategy and r["curve"]]
        steps = max(len(r["curve"]["loss"]) for r in runs)
        window = max(1, steps // 25)
        losses = []
        for r in runs:
            y = _smooth(np.asarray(r["curve"]["loss"], float), window)
            axes[0].plot(np.asarray(r["curve"]["step"][window - 1:]), y, color=colors[strategy], lw=0.5, alpha=0.4)
            losses.append(y)
        if len({len(y) for y in losses}) == 1:
            axes[0].plot(np.asarray(runs[0]["curve"]["step"][window - 1:]), np.mean(losses, axis=0),
                         color=colors[strategy], lw=1.6, label=strategy)
        if has_eval:
            evals = [([e["step"] for e in r["curve"]["eval"]], [e["eval_pooled_map"] for e in r["curve"]["eval"]])
                     for r in runs]
            for xs, ys in evals:
                axes[1].plot(xs, ys, color=colors[strategy], lw=0.5, alpha=0.4, marker=".", ms=2)
            if len({tuple(xs) for xs, _ in evals}) == 1:
                axes[1].plot(evals[0][0], np.mean([ys for _, ys in evals], axis=0), color=colors[strategy], lw=1.6,
                             label=strategy)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss (moving average)")
    axes[0].legend(fontsize=7)
    if has_eval:
        axes[1].set_xlabel("step")
        axes[1].set_ylabel(f"held-out pooled mAP ({Path(results['settings']['heldout']).name})")
        axes[1].set_title("descriptive only: never used to choose a checkpoint", fontsize=8)
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
