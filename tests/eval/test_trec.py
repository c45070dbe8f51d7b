"""fastir.eval.trec: the TREC files of ``fastir score --trec``, parsed back and checked against a brute-force
ranking of numpy scores: columns, consecutive ranks, float32 scores, the tie order, which queries and
golds appear, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from fastir.core.errors import InputError
from fastir.eval.score import score_run
from fastir.eval.trec import write_trec

LANGS_BY_ROW = ["bb", "aa", "bb", "cc", "aa", "aa", "bb", "cc", "cc", "aa", "bb", "aa"]  # interleaved rows
FIRST_SEEN = ["bb", "aa", "cc"]  # the run's languages in order of first appearance


def _columns(seed=0):
    """7 queries; per query one gold of each language (grade 1 or 2, so every cell is scorable at
    threshold 1 and 2) and one judged non-relevant candidate (grade 0); scores in {-3..3}: many ties."""
    rng = np.random.default_rng(seed)
    q_langs = ["aa", "bb", "aa", "cc", "bb", "aa", "cc"]
    rows_of = {lang: [i for i, x in enumerate(LANGS_BY_ROW) if x == lang] for lang in FIRST_SEEN}
    qrels, grades = [], []
    for q in range(len(q_langs)):
        for i, lang in enumerate(FIRST_SEEN):
            qrels.append((q, rows_of[lang][q % len(rows_of[lang])]))
            grades.append(1 + (q + i) % 2)
        qrels.append((q, rows_of["aa"][(q + 1) % len(rows_of["aa"])]))
        grades.append(0)
    return dict(q_emb=rng.integers(-1, 2, (len(q_langs), 3)).astype(np.float32), q_langs=q_langs,
                c_emb=rng.integers(-1, 2, (len(LANGS_BY_ROW), 3)).astype(np.float32), c_langs=LANGS_BY_ROW,
                qrels=qrels, relevance=grades)


def _parse(path, fields):
    rows = [line.split(" ") for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(len(r) == fields for r in rows), path
    return rows


def _expected(cols, depth, cell, threshold=1):
    """Brute force: per query of the cell's language with a relevant candidate in its set, the top
    ``depth`` of the set by score descending; ties in language order of first appearance, then row."""
    x, s = cell.split("-")
    scores = cols["q_emb"] @ cols["c_emb"].T
    langs = np.asarray(cols["c_langs"])
    members = np.arange(len(langs)) if s == "all" else np.flatnonzero(langs == s)
    golds = {}
    for (q, c), g in zip(cols["qrels"], cols["relevance"]):
        if g >= 1 and c in members:
            golds.setdefault(q, []).append((c, g))
    run, qrels = [], []
    for q in range(len(scores)):
        if cols["q_langs"][q] != x or not any(g >= threshold for _, g in golds.get(q, [])):
            continue
        group = [FIRST_SEEN.index(lang) for lang in langs[members]]
        order = members[np.lexsort((members, group, -scores[q, members]))][:depth]
        run += [[f"q{q}", "Q0", f"c{c}", str(rank), repr(float(np.float32(scores[q, c]))), "fastir"]
                for rank, c in enumerate(order, 1)]
        qrels += sorted([f"q{q}", "0", f"c{c}", str(g)] for c, g in golds[q])
    return run, qrels


@pytest.mark.parametrize("depth, threshold", [(4, 1), (100, 1), (3, 2)])
def test_files_parse_back_to_the_brute_force_ranking(tmp_path, make_run, depth, threshold):
    cols = _columns()
    result = score_run(make_run(tmp_path, **cols), trec_depth=depth, relevance_threshold=threshold)
    out = write_trec(result, tmp_path / "trec")
    names = sorted(p.name for p in out.iterdir())
    cells = [c.name for c in result.cells]
    assert names == sorted([f"{c}.run" for c in cells] + [f"{c}.qrels" for c in cells])
    ties = 0
    for cell in cells:
        run = _parse(out / f"{cell}.run", 6)
        qrels = _parse(out / f"{cell}.qrels", 4)
        want_run, want_qrels = _expected(cols, min(depth, len(LANGS_BY_ROW)), cell, threshold)
        assert [r[:4] + [repr(float(r[4]))] + r[5:] for r in run] == want_run, cell
        assert sorted(qrels) == want_qrels, cell
        ties += sum(a[0] == b[0] and a[4] == b[4] for a, b in zip(run, run[1:]))
    assert ties > 10  # the tie order was really exercised


def test_same_files_from_the_whole_row_path_and_any_block_size(tmp_path, make_run):
    """The bias suite scores whole rows (fastir.eval.rows), fp32 streams tiles (fastir.eval.stream): one file."""
    path = make_run(tmp_path, **_columns(1))
    written = []
    for i, kwargs in enumerate(({}, {"block_mb": 1e-4}, {"metrics": "map,same_lang@5"})):
        out = write_trec(score_run(path, trec_depth=5, **kwargs), tmp_path / f"trec{i}")
        written.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert written[0] == written[1] == written[2]


def test_refusals_and_overwrite(tmp_path, make_run):
    cols = _columns(2)
    path = make_run(tmp_path, **cols)
    with pytest.raises(InputError, match="^--trec: scores were computed without trec_depth"):
        write_trec(score_run(path), tmp_path / "t")
    result = score_run(path, trec_depth=2)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep").write_text("x")
    with pytest.raises(InputError, match="not empty; pass --overwrite"):
        write_trec(result, busy)
    assert sorted(p.name for p in busy.iterdir()) == ["keep"]
    with pytest.raises(InputError, match="holds 'keep', which this command does not write"):
        write_trec(result, busy, overwrite=True)  # --overwrite replaces only a TREC folder
    (busy / "keep").unlink()
    write_trec(result, busy)
    (busy / "aa-all.run").write_text("old")
    write_trec(result, busy, overwrite=True)
    assert (busy / "aa-all.run").read_text() != "old" and (busy / "aa-all.qrels").is_file()


@pytest.mark.parametrize("side", ["q_ids", "c_ids"])
def test_ids_with_whitespace_are_refused(tmp_path, make_run, side):
    cols = _columns(3)
    n = len(cols["q_emb"] if side == "q_ids" else cols["c_emb"])
    ids = [f"id{i}" for i in range(n)]
    ids[1] = "id 1"
    result = score_run(make_run(tmp_path, **cols, **{side: ids}), trec_depth=3)
    with pytest.raises(InputError, match="id 'id 1' contains whitespace or a control character, which TREC files") as info:
        write_trec(result, tmp_path / "trec")
    assert info.value.field == "id" and not (tmp_path / "trec").exists()


@pytest.mark.parametrize("bad", ["id\x00x", "id\x1b]0;x\x07", "id\x85"])
def test_ids_with_control_characters_are_refused(tmp_path, make_run, bad):
    # issue 31, item 16: a NUL or an escape sequence was written into the TREC files
    cols = _columns(3)
    ids = [f"id{i}" for i in range(len(cols["c_emb"]))]
    ids[0] = bad
    result = score_run(make_run(tmp_path, **cols, c_ids=ids), trec_depth=3)
    with pytest.raises(InputError, match="control character"):
        write_trec(result, tmp_path / "trec")
    assert not (tmp_path / "trec").exists()
