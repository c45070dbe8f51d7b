"""fastir.eval.preference_ranked: language preference of a ranked run.

The strongest check: an embedding run dir scored by ``language_preference``, then exported by ``fastir
score --trec`` at full depth (fp32) and scored as a ranked run with the xling ids as query groups,
gives every measure of every query equal, on integer embeddings full of ties (candidate ids
descending along the rows, so trec_eval's tie order = the embedding kernels' order). Then truncated
runs against scipy's Spearman and brute-force definitions, the group rule, and the refusals.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr

from fastir.cli import main
from fastir.core.errors import InputError
from fastir.eval.preference import COLUMNS, language_preference
from fastir.eval.preference_ranked import parse_query_groups, ranked_preference

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_preference import LANGS, parallel_pool  # noqa: E402


def embedding_and_trec(root, make_run, seed=4):
    """A parallel run dir, its full-depth TREC export (all.run, all.qrels) and the maps a ranked run needs."""
    cols, c_groups = parallel_pool(np.random.default_rng(seed))
    n_q, n_c = len(cols["q_langs"]), len(cols["c_langs"])
    q_ids, c_ids = [f"q{i}" for i in range(n_q)], [f"c{999 - j:03d}" for j in range(n_c)]  # id desc = row asc
    run = make_run(root, **cols, q_ids=q_ids, c_ids=c_ids)
    assert main(["score", str(run), "--out", str(root / "scores"), "--pairs", "multi", "--trec", str(root / "trec"),
                 "--trec-depth", str(n_c), "--precision", "fp32", "--format", "json"]) == 0
    for ext in ("run", "qrels"):
        (root / f"all.{ext}").write_text("".join(p.read_text() for p in sorted((root / "trec").glob(f"*-all.{ext}"))))
    files = {"q.tsv": zip(q_ids, cols["q_langs"]), "d.tsv": zip(c_ids, cols["c_langs"]),
             "groups.tsv": zip(q_ids, cols["q_xling"]), "cand.tsv": zip(c_ids, c_groups)}
    for name, pairs in files.items():
        (root / name).write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    return run, c_groups


def test_an_embedding_run_and_its_full_depth_trec_export_agree_per_query(tmp_path, make_run, capsys):
    run, c_groups = embedding_and_trec(tmp_path, make_run)
    capsys.readouterr()
    settings = dict(pivot="en", k=5, target="th", mlrs_k=6)
    want = language_preference(run, cand_groups=c_groups, **settings)
    got = ranked_preference(tmp_path / "all.run", tmp_path / "all.qrels", str(tmp_path / "q.tsv"),
                            str(tmp_path / "d.tsv"), str(tmp_path / "groups.tsv"),
                            cand_groups=tmp_path / "cand.tsv", **settings)
    index = {q: i for i, q in enumerate(got.query_ids)}
    assert sorted(index) == sorted(want.query_ids)
    rows = [index[q] for q in want.query_ids]
    for name in COLUMNS:
        assert np.isfinite(want.values[name]).sum() > 20, name
        np.testing.assert_allclose(got.values[name][rows], want.values[name], rtol=0, atol=1e-12, err_msg=name)
    mine, theirs = got.summary(), want.summary()
    assert mine.keys() - theirs.keys() == {"input", "depth"} and theirs.keys() <= mine.keys()
    assert mine["depth"] == {"min": len(c_groups), "max": len(c_groups)}
    for name in COLUMNS:
        assert mine[name] == pytest.approx(theirs[name], abs=1e-12)


def truncated_run(root, seed, n_groups=6, n_docs=40, depth=(3, 15)):
    """A TREC run of parallel queries 'xx:qG' (integer scores: many ties; depth varying per query), docs
    'xx:dN' whose parallel group is N // 3, graded qrels with relevant documents beyond the depth."""
    rng = np.random.default_rng(seed)
    docs = [f"{LANGS[j % 3]}:d{j:02d}" for j in range(n_docs)]
    run, qrels = {}, {}
    for g in range(n_groups):
        for lang in LANGS[:2 + g % 2]:  # groups of 2 and 3 languages
            qid = f"{lang}:q{g}"
            picked = rng.choice(n_docs, int(rng.integers(*depth)), replace=False)
            run[qid] = {docs[j]: float(rng.integers(0, 4)) for j in picked}
            item = int(rng.integers(0, n_docs // 3))
            qrels[qid] = {docs[3 * item + x]: int(rng.integers(1, 3)) for x in range(3)}
            qrels[qid][docs[int(picked[0])]] = 1
    lines = [f"{q} Q0 {d} {r} {s} bm25" for q, ranking in run.items()
             for r, (d, s) in enumerate(sorted(ranking.items(), key=lambda x: -x[1]), start=1)]
    (root / "run.trec").write_text("\n".join(lines) + "\n")
    (root / "qrels.txt").write_text("".join(f"{q} 0 {d} {v}\n" for q, j in qrels.items() for d, v in j.items()))
    (root / "cand.tsv").write_text("".join(f"{d}\tg{j // 3}\n" for j, d in enumerate(docs)))
    return run, qrels, docs


def reference(run, qrels, docs, qid, pivot, k, target, mlrs_k):
    """Every measure of ``qid`` from its definition on the truncated lists (unretrieved: below every retrieved)."""
    low = -1e9
    lang = qid.split(":")[0]
    mine = run[qid]
    mates = [q for q in run if q.split(":")[1] == qid.split(":")[1] and q != qid]
    rcs = []
    for other in mates:
        union = sorted(set(mine) | set(run[other]))
        a, b = [mine.get(d, low) for d in union], [run[other].get(d, low) for d in union]
        if np.ptp(a) and np.ptp(b):
            rcs.append(spearmanr(a, b).statistic)
    top = sorted(mine, key=lambda d: (-mine[d], [-ord(ch) for ch in d]))  # score desc, then id desc
    n = min(k, len(top))
    share = sum(d.split(":")[0] == pivot for d in top[:n]) / n
    m = min(mlrs_k, len(top))
    version = [3 * (docs.index(d) // 3) + LANGS.index(target) for d in top[:m]]  # d39's group has no 'th'
    new = sorted(range(m), key=lambda p: -mine.get(docs[version[p]], low) if version[p] < len(docs) else 0)
    shift = sum(max(p - i, 0) for i, p in enumerate(new)) / (m * (m - 1) / 2) if m > 1 else 0.0  # stable sort
    if max(version) >= len(docs):
        shift = np.nan
    golds = [d for d, v in qrels[qid].items() if v >= 1]
    own = [d for d in golds if d.startswith(lang + ":")]
    others = [d for d in golds if not d.startswith(lang + ":")]
    wins = [mine.get(d, low) > mine.get(o, low) for d in own for o in others]
    return {"mrc": np.mean(rcs) if rcs else np.nan, "pivot_share": share, "mlrs": shift,
            "qlp": np.mean(wins) if wins else np.nan}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_truncated_runs_equal_scipy_and_brute_force(tmp_path, seed):
    run, qrels, docs = truncated_run(tmp_path, seed)
    (tmp_path / "groups.tsv").write_text("".join(f"{q}\t{q.split(':')[1]}\n" for q in run))
    settings = dict(pivot="de", k=4, target="th", mlrs_k=5)
    by_rule = ranked_preference(tmp_path / "run.trec", tmp_path / "qrels.txt", "prefix::", "prefix::", "prefix::",
                                cand_groups=tmp_path / "cand.tsv", **settings)
    by_file = ranked_preference(tmp_path / "run.trec", tmp_path / "qrels.txt", "prefix::", "prefix::",
                                str(tmp_path / "groups.tsv"), cand_groups=tmp_path / "cand.tsv", **settings)
    checked = 0
    for i, qid in enumerate(by_rule.query_ids):
        want = reference(run, qrels, docs, qid, **settings)
        for name in COLUMNS:
            assert by_rule.values[name][i] == pytest.approx(want[name], abs=1e-12, nan_ok=True), (qid, name)
            assert np.array_equal(by_rule.values[name][i], by_file.values[name][i], equal_nan=True)
            checked += not np.isnan(want[name])
    assert checked > 40
    assert by_rule.summary()["depth"] == {"min": min(map(len, run.values())), "max": max(map(len, run.values()))}


def test_run_formats_agree(tmp_path):
    run, qrels, docs = truncated_run(tmp_path, 7)
    (tmp_path / "run.json").write_text(json.dumps(run))
    rows = [(q, d, s) for q, ranking in run.items() for d, s in ranking.items()]
    pq.write_table(pa.table({"query_id": [r[0] for r in rows], "doc_id": [r[1] for r in rows],
                             "score": [r[2] for r in rows]}), tmp_path / "run.parquet")
    results = [ranked_preference(tmp_path / name, tmp_path / "qrels.txt", "prefix::", "prefix::", "prefix::",
                                 pivot="en", k=3, target="de", cand_groups=tmp_path / "cand.tsv")
               for name in ("run.trec", "run.json", "run.parquet")]
    for other in results[1:]:
        assert other.query_ids == results[0].query_ids
        for name in COLUMNS:
            assert np.array_equal(other.values[name], results[0].values[name], equal_nan=True), name


def test_bad_input_is_one_line(tmp_path):
    run, qrels, docs = truncated_run(tmp_path, 3)
    args = (tmp_path / "run.trec", tmp_path / "qrels.txt", "prefix::", "prefix::")
    groups = tmp_path / "groups.tsv"
    cases = (("de:q0\tg0\n", "run.trec", "line 1", "query 'en:q0' is not in --query-groups groups.tsv"),
             ("de:q0\tg0\nde:q0\tg1\n", "groups.tsv", "line 2", "query 'de:q0' is listed twice (first at line 1)"),
             ("de:q0 g0\n", "groups.tsv", "line 1", "expected query_id TAB group_id"))
    for text, file, field, needle in cases:
        groups.write_text(text)
        with pytest.raises(InputError, match=re.escape(needle)) as err:
            ranked_preference(*args, str(groups))
        assert Path(err.value.path).name == file and err.value.field.startswith(field)
    (tmp_path / "run.trec").write_text("en:q0 Q0 en:d00 1 2.0 bm25\nxx:q9 Q0 en:d00 1 2.0 bm25\n")
    with pytest.raises(InputError, match="query 'xx:q9' is not in the qrels") as err:
        ranked_preference(*args, "prefix::")
    assert err.value.field == "line 2"
    (tmp_path / "qrels.txt").write_text("en:q0 0 en:d00 1\nde:q0 0 en:d00 1\n")
    for text, line, needle in (
            ("en:q0 Q0 en:d00 1 2 s\nde:q0 Q0 en:d00 1 2 s\nen:q0 Q0 en:d01 2 1 s\n", 3,
             "query 'en:q0' again after other queries"),
            ("en:q0 Q0 en:d00 1 2 s\nen:q0 Q0 en:d00 2 1 s\n", 2,
             "duplicate line of (query 'en:q0', document 'en:d00'); first at line 1"),
            ("en:q0 Q0 en:d00 2 2 s\nen:q0 Q0 en:d01 1 1 s\n", 2, "rank 1 with score 1.0 contradicts rank 2")):
        (tmp_path / "run.trec").write_text(text)
        with pytest.raises(InputError, match=re.escape(needle)) as err:
            ranked_preference(*args, "prefix::")
        assert err.value.field == f"line {line}" and Path(err.value.path).name == "run.trec"
    (tmp_path / "qrels.txt").write_text("en:q0 0 en:d00 1\nen:q0 0 en:d00 2\n")
    with pytest.raises(InputError, match="duplicate judgement") as err:
        ranked_preference(*args, "prefix::")
    assert err.value.field == "line 2" and Path(err.value.path).name == "qrels.txt"
    (tmp_path / "run.trec").write_text("en-q0 Q0 en:d00 1 2.0 bm25\n")
    (tmp_path / "qrels.txt").write_text("en-q0 0 en:d00 1\n")
    with pytest.raises(InputError, match="query 'en-q0' has no group id after ':'") as err:
        ranked_preference(tmp_path / "run.trec", tmp_path / "qrels.txt", "prefix:-", "prefix::", "prefix::")
    assert err.value.field == "line 1"
    with pytest.raises(InputError, match="give the separator"):
        parse_query_groups("prefix:")
    (tmp_path / "run.trec").write_text("en:q0 Q0 en:d00 1 2.0 bm25\n")
    (tmp_path / "qrels.txt").write_text("en:q0 0 en:d00 1\n")
    (tmp_path / "cand.tsv").write_text("en:d00\tg0\nxx-d1\tg0\n")
    with pytest.raises(InputError, match="has no language before ':'") as err:
        ranked_preference(*args, "prefix::", target="en", cand_groups=tmp_path / "cand.tsv")
    assert Path(err.value.path).name == "cand.tsv" and err.value.field == "line 2"
    (tmp_path / "cand.tsv").write_text("en:d00\tg0\nen:d01\tg1\nen:d02\tg0\n")
    with pytest.raises(InputError, match=re.escape("group 'g0' has two documents in 'en' (first at line 1)")) as err:
        ranked_preference(*args, "prefix::", target="en", cand_groups=tmp_path / "cand.tsv")
    assert err.value.field == "line 3"
