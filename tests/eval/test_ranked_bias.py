"""fastir.eval.ranked_bias: the language-bias suite of a ranked run.

The strongest check: an embedding run scored by ``fastir score``, exported with ``--trec`` at full depth,
then scored by ``fastir score-run`` with the same languages gives every bias metric (and the exposure
distributions) of every query equal, on integer embeddings full of ties (candidate ids descending along
the candidate rows, so trec_eval's order = fastir score's) and on Gaussian ones without ties. Then: a run cut
at depth D (k <= D exact, k > D on the D retrieved, counted in summary.json), tie modes, chunking, a brute-force
reference, refusals.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.spatial.distance import jensenshannon

from fastir.cli import main
from fastir.core.errors import InputError
from fastir.eval import ranked_bias
from fastir.eval import score_ranked as sr
from fastir.runs import ranked
from tests.conftest import write_test_run

LANGS = ("aa", "bb", "cc")
BIAS = "same_lang@1,5,40,lang_jsd@5,30,lang_jsd_rel@10,peer@3,10,peer_nonrel@10"
METRICS = f"map,mrr,{BIAS}"


def embedding_run(root, ties: bool, seed=0, n_q=24, n_c=30):
    """A run dir (3 languages, graded qrels) and the per-query ids' languages."""
    rng = np.random.default_rng(seed)
    if ties:
        q_emb, c_emb = rng.integers(-1, 2, (n_q, 4)), rng.integers(-1, 2, (n_c, 4))
        c_ids = [f"d{999 - j:03d}" for j in range(n_c)]  # id descending = row ascending: the orders agree
    else:
        q_emb, c_emb = rng.standard_normal((n_q, 8)), rng.standard_normal((n_c, 8))
        c_ids = [f"d{j:03d}" for j in range(n_c)]
    q_langs = [LANGS[i % 3] for i in range(n_q)]
    c_langs = [LANGS[i] for i in rng.integers(0, 3, n_c)]
    qrels, grades = [], []
    for q in range(n_q):
        for c in rng.choice(n_c, int(rng.integers(1, 5)), replace=False):
            qrels.append((q, int(c)))
            grades.append(int(rng.integers(1, 3)))
    q_ids = [f"q{i}" for i in range(n_q)]
    path = write_test_run(root, q_emb=q_emb.astype(np.float32), q_langs=q_langs, c_emb=c_emb.astype(np.float32),
                          c_langs=c_langs, qrels=qrels, relevance=grades, q_ids=q_ids, c_ids=c_ids)
    (root / "q.tsv").write_text("".join(f"{i}\t{x}\n" for i, x in zip(q_ids, q_langs)))
    (root / "d.tsv").write_text("".join(f"{i}\t{x}\n" for i, x in zip(c_ids, c_langs)))
    return path, n_c


def through_trec(root, run, n_c, threshold):
    """``fastir score`` with --trec at full depth; the X-all runs and qrels joined into one TREC run and qrels."""
    assert main(["score", str(run), "--out", str(root / "emb.scores"), "--per-query", "--metrics", METRICS,
                 "--pairs", "multi", "--trec", str(root / "trec"), "--trec-depth", str(n_c), "--relevance-threshold", str(threshold),
                 "--format", "json"]) == 0
    for ext in ("run", "qrels"):
        (root / f"all.{ext}").write_text("".join(p.read_text() for p in sorted((root / "trec").glob(f"*-all.{ext}"))))
    return root / "emb.scores"


def pooled(per_query: dict) -> dict:
    return {r["query_id"]: r for r in per_query if r["cand_lang"] == "all"}


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("threshold", [1, 2])
def test_embedding_run_and_its_trec_export_give_the_same_bias_metrics(tmp_path, capsys, ties, threshold):
    run, n_c = embedding_run(tmp_path, ties, seed=threshold)
    emb = through_trec(tmp_path, run, n_c, threshold)
    capsys.readouterr()
    for mode in ("pessimistic", "trec_eval"):
        out = tmp_path / f"ranked-{mode}"
        assert main(["score-run", str(tmp_path / "all.run"), "--qrels", str(tmp_path / "all.qrels"), "--query-langs",
                     str(tmp_path / "q.tsv"), "--doc-langs", str(tmp_path / "d.tsv"), "--metrics", METRICS,
                     "--pairs", "multi", "--ties", mode, "--relevance-threshold", str(threshold), "--per-query",
                     "--out", str(out)]) == 0
        want = pooled(pq.read_table(emb / "per_query.parquet").to_pylist())
        got = pooled(pq.read_table(out / "per_query.parquet").to_pylist())
        assert set(got) == set(want) and len(want) >= 15
        columns = [c for c in want[next(iter(want))] if c.split("@")[0] in
                   ("same_lang", "lang_jsd", "lang_jsd_rel", "peer", "peer_nonrel")]
        assert len(columns) == 9
        for qid, row in want.items():
            # PEER's sums may run in another order: 1e-12; the ranking metrics agree in fastir score's tie mode
            for col in [*columns, *(("ap", "rr", "rank_distance") if mode == "pessimistic" else ())]:
                assert got[qid][col] == pytest.approx(row[col], abs=1e-12, nan_ok=True), (qid, col)
        s_emb, s_run = (json.loads((d / "summary.json").read_text())["summary"] for d in (emb, out))
        for key in ("lang_exposure@5", "lang_exposure@30", *(c for c in s_emb if "@" in c and c in s_run)):
            assert json.dumps(s_run[key]) == json.dumps(s_emb[key]) or _close(s_run[key], s_emb[key]), key


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return (a is None and b is None) or math.isclose(a, b, abs_tol=1e-12)


# ------------------------------------------------------------------------------ ranked runs of any depth


def make_run(tmp_path, seed=0, n_queries=30, depth=25, value_range=2):
    """A TREC run with many tied scores over 'xx:' ids of three languages, graded qrels (some relevant documents
    beyond the run)."""
    rng = np.random.default_rng(seed)
    docs = [f"{LANGS[i % 3]}:d{i:03d}" for i in range(90)]
    run, qrels = {}, {}
    for q in range(n_queries):
        qid = f"{LANGS[q % 3]}:q{q}"
        run[qid] = {docs[i]: float(rng.integers(0, value_range + 1)) for i in rng.choice(90, depth, replace=False)}
        qrels[qid] = {docs[i]: int(rng.integers(1, 3)) for i in rng.choice(90, 6, replace=False)}
    write_trec(tmp_path / "run.trec", run)
    (tmp_path / "qrels.txt").write_text("".join(f"{q} 0 {d} {g}\n" for q, j in qrels.items() for d, g in j.items()))
    return run, qrels


def write_trec(path, run, depth=None):
    lines = []
    for qid, docs in run.items():
        ordered = trec_order(docs)[:depth]
        lines += [f"{qid} Q0 {d} {r} {docs[d]} sys\n" for r, d in enumerate(ordered, start=1)]
    path.write_text("".join(lines))


def trec_order(docs: dict) -> list:
    """Score descending, then document id descending."""
    return sorted(docs, key=lambda d: (-docs[d], [-b for b in d.encode()]))


def score(path, tmp_path, metrics=BIAS, **kw):
    metrics = f"map,{metrics}"  # pooled-only metrics come with a metric of every cell
    return sr.score_ranked(path, tmp_path / "qrels.txt", "prefix::", "prefix::", metrics=metrics, per_query=True,
                           **kw)


def pooled_values(result) -> dict:
    return {(r["query_id"], c): r[c] for r in result.per_query.to_pylist() if r["cand_lang"] == "all"
            for c in r if "@" in c and c != "map"}


def test_against_brute_force_on_tied_scores(tmp_path):
    """same_lang@k and lang_jsd@k from the run dict in trec_eval order (numpy, scipy's jensenshannon)."""
    run, _ = make_run(tmp_path, seed=3)
    got = pooled_values(score(tmp_path / "run.trec", tmp_path, metrics="same_lang@1,7,25,lang_jsd@4,25"))
    assert len(got) >= 100
    for qid, docs in run.items():
        top = [d.split(":")[0] for d in trec_order(docs)]
        for k in (1, 7, 25):
            assert got[(qid, f"same_lang@{k}")] == pytest.approx(np.mean([x == qid[:2] for x in top[:k]]), abs=1e-15)
        for k in (4, 25):
            e = np.array([sum(1 / np.log2(i + 2) for i, x in enumerate(top[:k]) if x == lang) for lang in LANGS])
            want = jensenshannon(e / e.sum(), np.full(3, 1 / 3), base=2) ** 2
            assert got[(qid, f"lang_jsd@{k}")] == pytest.approx(want, abs=1e-12)


def test_a_run_cut_at_depth_d(tmp_path):
    """k <= D: exactly the full run's values; k > D: the values on the D retrieved (= those at k = D); summary.json
    counts those queries per metric and pooled cell."""
    run, _ = make_run(tmp_path, seed=5)
    names = ("same_lang", "lang_jsd", "lang_jsd_rel", "peer", "peer_nonrel")
    full = pooled_values(score(tmp_path / "run.trec", tmp_path, metrics=",".join(f"{n}@4" for n in names)))
    write_trec(tmp_path / "cut.trec", run, depth=4)
    result = score(tmp_path / "cut.trec", tmp_path, metrics=",".join(f"{n}@4,20" for n in names))
    cut = pooled_values(result)
    assert len(cut) == 2 * len(full) >= 100
    for (qid, col), value in full.items():
        name = col.split("@")[0]
        assert cut[(qid, col)] == value and cut[(qid, f"{name}@20")] == value, (qid, col)
    bias = result.extra["bias"]
    assert bias["order"] == ranked_bias.BIAS_ORDER
    for name in names:
        assert bias["queries_depth_below_k"][f"{name}@20"] == {"aa-all": 10, "bb-all": 10, "cc-all": 10}
        assert bias["queries_depth_below_k"][f"{name}@4"] == {"aa-all": 0, "bb-all": 0, "cc-all": 0}


def test_tie_modes_chunks_and_formats_read_one_order(tmp_path, monkeypatch):
    """pessimistic, optimistic and trec_eval give the same bias values (one list, trec_eval's order); asking for
    the suite changes no other metric; chunked reading and a ranx JSON run change nothing."""
    run, _ = make_run(tmp_path, seed=7, value_range=1)
    base = score(tmp_path / "run.trec", tmp_path, ties="trec_eval")
    values = base.metrics.values
    for mode in ("pessimistic", "optimistic"):
        np.testing.assert_array_equal(score(tmp_path / "run.trec", tmp_path, ties=mode).metrics.values[..., 1:-1],
                                      values[..., 1:-1])
        alone = sr.score_ranked(tmp_path / "run.trec", tmp_path / "qrels.txt", "prefix::", "prefix::", metrics="map",
                                ties=mode)
        with_bias = score(tmp_path / "run.trec", tmp_path, ties=mode)
        np.testing.assert_array_equal(alone.metrics["map"], with_bias.metrics["map"])
    (tmp_path / "run.json").write_text(json.dumps(run))
    np.testing.assert_array_equal(score(tmp_path / "run.json", tmp_path, ties="trec_eval").metrics.values, values)
    monkeypatch.setattr(ranked, "BLOCK_BYTES", 1 << 10)  # many chunks, queries cut across them
    chunked = score(tmp_path / "run.trec", tmp_path, ties="trec_eval")
    np.testing.assert_array_equal(chunked.metrics.values, values)
    for k, shares in base.metrics.exposure.items():
        np.testing.assert_array_equal(chunked.metrics.exposure[k], shares)
        assert np.allclose(np.nansum(shares, axis=1)[~np.isnan(shares[:, 0])], 1.0)


def test_refusals(tmp_path):
    make_run(tmp_path, seed=1)
    with pytest.raises(InputError, match="--ties: peer@3 ranks the top k in its own order"):
        score(tmp_path / "run.trec", tmp_path, metrics="peer@3", ties="expected")
    text = (tmp_path / "run.trec").read_text().splitlines()
    text[30] = text[30].replace(" aa:", " zz:").replace(" bb:", " zz:").replace(" cc:", " zz:")
    (tmp_path / "other.trec").write_text("\n".join(text) + "\n")
    assert sr.score_ranked(tmp_path / "other.trec", tmp_path / "qrels.txt", "prefix::", "prefix::", metrics="map")
    with pytest.raises(InputError, match=r"other.trec: line 31: document 'zz:d\d+' is in none of the pool's "
                                         r"languages \(aa, bb, cc"):
        score(tmp_path / "other.trec", tmp_path)
