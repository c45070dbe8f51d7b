"""``heatmap.png`` of ``fastir score``: the annotated X→Y matrix of the first metric, drawn with Pillow.

Rows are query languages, columns candidate languages (+ the pooled set ``all`` when a multi cell
is scored); each cell is coloured by its value on a fixed 0–1 viridis scale and carries the value
with two decimals; a colour bar, the metric, model and dataset frame it. Unscored cells stay white.

Pillow draws it in a few milliseconds, where matplotlib took about a second (importing pyplot,
laying out a figure) of the time a user waits for ``fastir score``; the picture is the same kind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastir.core.outputs import atomic_path
from fastir.eval.cells import POOLED

# viridis (matplotlib's default map) at 0, 1/8, ..., 1; linear in between.
VIRIDIS = np.array([
    (68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142),
    (31, 158, 137), (53, 183, 121), (110, 206, 88), (253, 231, 37),
], dtype=np.float64)
CELL_W, CELL_H = 46, 28  # pixels per cell
PAD = 8
BAR_W, MIN_BAR_H = 14, 120  # colour bar: width, least height (pixels)
FONT_SIZE = 12
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (128, 128, 128)
Y_LABEL, X_LABEL = "query language", "candidate language"
DARK_TEXT_ABOVE = 0.6  # black text on cells above this value, white below (as on matplotlib's viridis)


def colours(values) -> np.ndarray:
    """uint8 RGB (..., 3) of ``values`` on the viridis scale, clipped to [0, 1]."""
    x = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(VIRIDIS) - 1)
    i = np.minimum(x.astype(np.int64), len(VIRIDIS) - 2)
    rgb = VIRIDIS[i] + (x - i)[..., None] * (VIRIDIS[i + 1] - VIRIDIS[i])
    return np.rint(rgb).astype(np.uint8)


def colour(value: float) -> tuple[int, int, int]:
    """RGB of one ``value`` on the viridis scale."""
    return tuple(int(c) for c in colours(value))


def heatmap_grid(result) -> tuple[np.ndarray, list[str], list[str]]:
    """(values, row labels, column labels) of the first metric: NaN where no cell was selected."""
    cols = list(result.cand_langs)
    if any(c.kind == "multi" for c in result.cells):
        cols.append(POOLED)
    rows = [x for x in result.query_langs if any(c.query_lang == x for c in result.cells)]
    lead = result.metrics.metrics[0]
    grid = np.full((len(rows), len(cols)), np.nan)
    row_of, col_of = {x: i for i, x in enumerate(rows)}, {y: j for j, y in enumerate(cols)}
    for cell in result.cells:
        if cell.cand_lang in col_of:
            value = result.cell_stats[cell][lead.name]
            grid[row_of[cell.query_lang], col_of[cell.cand_lang]] = np.nan if value is None else value
    return grid, rows, cols


def heatmap_title(result) -> str:
    from fastir.core.names import printable

    model = str(result.run.meta.get("model", ""))
    dataset = Path(str(result.run.meta.get("dataset", ""))).name
    # names from run.json: one line, no control characters, short enough to draw
    return printable(f"{result.metrics.metrics[0].label} X->Y  ({Path(model).name or model}, {dataset})",
                     one_line=True, limit=120)


def render_heatmap(grid: np.ndarray, rows: list[str], cols: list[str], title: str):
    """The annotated matrix as a Pillow RGB image (see the module docstring for the layout)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(FONT_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def width(text: str) -> int:
        return int(measure.textlength(text, font=font))

    label_w = max([width(r) for r in rows] + [0]) + PAD
    left = PAD + FONT_SIZE + PAD + label_w  # rotated "query language", then the row labels
    top = PAD + FONT_SIZE + PAD
    grid_w, grid_h = CELL_W * len(cols), CELL_H * len(rows)
    bar_x = left + grid_w + 2 * PAD
    ticks = [f"{t / 5:.1f}" for t in range(6)]
    img_w = max(bar_x + BAR_W + 6 + max(width(t) for t in ticks) + PAD, PAD + width(title) + PAD)
    bar_h = max(grid_h, MIN_BAR_H)
    img_h = top + max(grid_h + 2 * (FONT_SIZE + PAD), bar_h + PAD, width(Y_LABEL) + PAD) + PAD
    img = Image.new("RGB", (img_w, img_h), WHITE)
    draw = ImageDraw.Draw(img)
    draw.text((left + grid_w / 2, PAD), title, fill=BLACK, font=font, anchor="mt")
    for i, row in enumerate(rows):
        y = top + i * CELL_H
        draw.text((left - PAD // 2, y + CELL_H / 2), row, fill=BLACK, font=font, anchor="rm")
        for j in range(len(cols)):
            v = grid[i, j]
            if not np.isfinite(v):
                continue
            x = left + j * CELL_W
            draw.rectangle((x, y, x + CELL_W - 1, y + CELL_H - 1), fill=colour(v))
            draw.text((x + CELL_W / 2, y + CELL_H / 2), f"{v:.2f}", font=font, anchor="mm",
                      fill=BLACK if v > DARK_TEXT_ABOVE else WHITE)
    draw.rectangle((left - 1, top - 1, left + grid_w, top + grid_h), outline=GREY)
    for j, col in enumerate(cols):
        draw.text((left + j * CELL_W + CELL_W / 2, top + grid_h + PAD // 2), col, fill=BLACK, font=font, anchor="mt")
    draw.text((left + grid_w / 2, top + grid_h + FONT_SIZE + PAD), X_LABEL, fill=BLACK, font=font,
              anchor="mt")
    _y_label(img, Y_LABEL, font, PAD, max(top + grid_h / 2, top + width(Y_LABEL) / 2))
    _colour_bar(img, draw, font, bar_x, top, bar_h, ticks)
    return img


def _colour_bar(img, draw, font, x: int, top: int, height: int, ticks: list[str]) -> None:
    from PIL import Image

    strip = colours(np.linspace(1.0, 0.0, height))  # top = 1.0
    img.paste(Image.fromarray(np.ascontiguousarray(np.repeat(strip[:, None], BAR_W, axis=1)), "RGB"), (x, top))
    draw.rectangle((x - 1, top - 1, x + BAR_W, top + height), outline=GREY)
    for t in ticks:
        y = top + (1.0 - float(t)) * (height - 1)
        draw.line((x + BAR_W, y, x + BAR_W + 3, y), fill=BLACK)
        draw.text((x + BAR_W + 6, y), t, fill=BLACK, font=font, anchor="lm")


def _y_label(img, text: str, font, x: int, y_centre: float) -> None:
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(img).textbbox((0, 0), text, font=font)
    label = Image.new("RGB", (box[2] + 2, box[3] + 2), WHITE)
    ImageDraw.Draw(label).text((1, 1), text, fill=BLACK, font=font)
    label = label.rotate(90, expand=True)
    img.paste(label, (x, int(y_centre - label.height / 2)))


def write_heatmap(result, path: str | os.PathLike) -> None:
    """Write ``heatmap.png`` of ``result`` (atomically)."""
    grid, rows, cols = heatmap_grid(result)
    img = render_heatmap(grid, rows, cols, heatmap_title(result))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", compress_level=1)
