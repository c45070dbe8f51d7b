"""heatmap.png: the first metric's X→Y matrix drawn with Pillow — colours, layout, unscored cells, no matplotlib."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fastir.eval.heatmap import (
    CELL_H, CELL_W, VIRIDIS, colour, colours, heatmap_grid, heatmap_title, render_heatmap, write_heatmap,
)
from fastir.eval.score import score_run


def test_colour_scale_is_viridis_at_the_anchors_and_clipped():
    for k, rgb in enumerate(VIRIDIS):
        assert colour(k / (len(VIRIDIS) - 1)) == tuple(int(c) for c in rgb)
    assert colour(-0.5) == colour(0.0) and colour(7.0) == colour(1.0)
    mid = colours([1 / 16])  # halfway between the first two anchors
    assert mid.tolist() == [np.rint((VIRIDIS[0] + VIRIDIS[1]) / 2).astype(int).tolist()]


def _cell_centre(img_grid_origin, i, j):
    x0, y0 = img_grid_origin
    return x0 + j * CELL_W + 3, y0 + i * CELL_H + 3  # a corner pixel: away from the value's text


def test_cells_carry_their_colour_and_unscored_cells_stay_white(tmp_path, make_run):
    rng = np.random.default_rng(3)
    langs = ["aa", "bb"]
    q_langs = ["aa"] * 4 + ["bb"] * 4
    c_langs = ["aa"] * 4 + ["bb"] * 4
    qrels = [(q, (q % 4)) for q in range(8)] + [(q, 4 + (q % 4)) for q in range(8)]
    run = make_run(tmp_path, q_emb=rng.standard_normal((8, 6)), q_langs=q_langs,
                   c_emb=rng.standard_normal((8, 6)), c_langs=c_langs, qrels=qrels)
    result = score_run(run, pairs="aa-bb,bb-all,bb-bb")
    grid, rows, cols = heatmap_grid(result)
    assert rows == langs and cols == langs + ["all"]
    assert np.isnan(grid[0, 0]) and np.isnan(grid[0, 2]) and np.isnan(grid[1, 0])
    assert grid[0, 1] == result.cell_stats[next(c for c in result.cells if c.name == "aa-bb")]["map"]

    img = render_heatmap(grid, rows, cols, heatmap_title(result))
    pixels = np.asarray(img)
    # Locate the grid: the top-left pixel of the scored cell aa-bb has that cell's colour.
    want = colours(grid[0, 1]).tolist()
    ys, xs = np.nonzero((pixels == want).all(axis=2))
    y0, x0 = ys.min(), xs.min() - CELL_W
    for i in range(2):
        for j in range(3):
            x, y = _cell_centre((x0, y0), i, j)
            got = pixels[y, x].tolist()
            assert got == ([255, 255, 255] if np.isnan(grid[i, j]) else colours(grid[i, j]).tolist())
    assert "synthetic" in heatmap_title(result) or heatmap_title(result).startswith("mAP")


def test_written_png_and_no_matplotlib(tmp_path, make_run):
    rng = np.random.default_rng(5)
    run = make_run(tmp_path, q_emb=rng.standard_normal((4, 6)), q_langs=["aa", "aa", "bb", "bb"],
                   c_emb=rng.standard_normal((4, 6)), c_langs=["aa", "aa", "bb", "bb"],
                   qrels=[(0, 0), (0, 2), (1, 1), (1, 3), (2, 0), (2, 2), (3, 1), (3, 3)])
    path = tmp_path / "heatmap.png"
    code = ("import sys; from fastir.eval.score import score_run; from fastir.eval.heatmap import write_heatmap; "
            f"write_heatmap(score_run({str(run)!r}), {str(path)!r}); "
            "assert 'matplotlib' not in sys.modules, 'heatmap imported matplotlib'")
    subprocess.run([sys.executable, "-c", code], check=True)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        assert img.width >= 3 * CELL_W and img.height >= 2 * CELL_H
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


@pytest.mark.parametrize("n_rows,n_cols", [(1, 1), (1, 12), (12, 13)])
def test_layout_fits_every_grid(n_rows, n_cols):
    grid = np.linspace(0, 1, n_rows * n_cols).reshape(n_rows, n_cols)
    img = render_heatmap(grid, [f"q{i}" for i in range(n_rows)], [f"c{j}" for j in range(n_cols)], "mAP X->Y")
    assert img.width >= n_cols * CELL_W and img.height >= n_rows * CELL_H


def test_write_heatmap_replaces_a_file(tmp_path, make_run):
    rng = np.random.default_rng(6)
    run = make_run(tmp_path, q_emb=rng.standard_normal((2, 4)), q_langs=["aa", "aa"],
                   c_emb=rng.standard_normal((3, 4)), c_langs=["aa"] * 3, qrels=[(0, 0), (1, 2)])
    path = tmp_path / "h.png"
    path.write_bytes(b"old")
    write_heatmap(score_run(run), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
