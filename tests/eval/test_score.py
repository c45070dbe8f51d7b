"""fastir.eval.score.score_run against sklearn AP per query, pytrec_eval, and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from fastir.core.errors import InputError
from fastir.eval.score import score_run
from fastir.eval.cells import Cell

LANGS = ("aa", "bb", "cc")


def parallel_run_columns(rng, n_xling=12, n_extra=3, dim=6, integer=True, langs=LANGS):
    """Queries in each language per xling id; its golds = the xling's sentence in every language."""
    q_langs, c_langs, qrels = [], [], []
    sentence = {}
    for lang in langs:
        for x in range(n_xling + n_extra):
            sentence[(lang, x)] = len(c_langs)
            c_langs.append(lang)
    for lang in langs:
        for x in range(n_xling):
            qi = len(q_langs)
            q_langs.append(lang)
            qrels += [(qi, sentence[(other, x)]) for other in langs]
    draw = (lambda n: rng.integers(-2, 3, (n, dim)).astype(np.float32)) if integer else \
        (lambda n: rng.standard_normal((n, dim)).astype(np.float32))
    return dict(q_emb=draw(len(q_langs)), q_langs=q_langs, c_emb=draw(len(c_langs)), c_langs=c_langs, qrels=qrels)


def reference_ap(cols) -> dict:
    """sklearn AP per (query row, set) over the full numpy score matrix (set = language or 'all')."""
    scores = cols["q_emb"].astype(np.float32) @ cols["c_emb"].astype(np.float32).T
    c_langs = np.asarray(cols["c_langs"])
    labels = np.zeros(scores.shape, bool)
    for qi, cj in cols["qrels"]:
        labels[qi, cj] = True
    out = {}
    for i in range(len(scores)):
        for name in [*dict.fromkeys(cols["c_langs"]), "all"]:
            members = np.ones(len(c_langs), bool) if name == "all" else c_langs == name
            if labels[i, members].any():
                out[(i, name)] = average_precision_score(labels[i, members], scores[i, members])
    return out


def fastir_ap(result) -> dict:
    out = {}
    for s, name in enumerate(result.cand_langs + ["all"]):
        for i in np.flatnonzero(result.metrics.nrel[:, s] > 0):
            out[(int(i), name)] = float(result.metrics["map"][i, s])
    return out


def test_ap_equals_sklearn_with_ties(tmp_path, make_run):
    cols = parallel_run_columns(np.random.default_rng(0))
    result = score_run(make_run(tmp_path, **cols))
    ref, mine = reference_ap(cols), fastir_ap(result)
    assert mine.keys() == ref.keys()
    for key, value in ref.items():
        assert mine[key] == pytest.approx(value, abs=1e-12), key


def test_cells_and_paper_style_summary(tmp_path, make_run):
    cols = parallel_run_columns(np.random.default_rng(1))
    result = score_run(make_run(tmp_path, **cols), ks=(1, 5))
    assert len(result.cells) == 3 * 3 + 3
    ref = reference_ap(cols)
    q_langs = np.asarray(cols["q_langs"])
    for cell in result.cells:
        rows = np.flatnonzero(q_langs == cell.query_lang)
        assert result.cell_stats[cell]["queries"] == len(rows) and result.cell_stats[cell]["skipped"] == 0
        assert result.cell_stats[cell]["map"] == pytest.approx(np.mean([ref[(i, cell.cand_lang)] for i in rows]))
    cell_map = {c: result.cell_stats[c]["map"] for c in result.cells}
    mono = np.mean([cell_map[Cell(x, x)] for x in LANGS])
    cross = np.mean([cell_map[Cell(x, y)] for x in LANGS for y in LANGS if x != y])
    multi = np.mean([cell_map[Cell(x, "all")] for x in LANGS])
    assert result.summary["mono"]["map"] == pytest.approx(mono)
    assert result.summary["cross"]["map"] == pytest.approx(cross)
    assert result.summary["multi"]["map"] == pytest.approx(multi)
    micro = np.mean([v for (i, name), v in ref.items() if name == "all"])
    assert result.summary["micro_multi_map"] == pytest.approx(micro)
    assert result.per_language["bb"]["cross"]["map"] == pytest.approx(
        np.mean([cell_map[Cell("bb", y)] for y in ("aa", "cc")]))


def test_rank_distance_hand_computed(tmp_path, make_run):
    # One query; candidates (1-d embeddings = scores): aa: 5, 1   bb: 4, 3   query embedding 1.
    # Golds: aa-1 (score 1, pooled rank 4, hits 2) and bb-3 (score 3, pooled rank 3, hits 1) -> RD = 1,
    # pooled AP = (2/4 + 1/3) / 2; per language each gold is alone: aa rank 2 -> 1/2, bb rank 2 -> 1/2.
    # A second query without any gold is skipped in every cell.
    cols = dict(q_emb=np.array([[1.0], [1.0]]), q_langs=["aa", "aa"],
                c_emb=np.array([[5.0], [1.0], [4.0], [3.0]]), c_langs=["aa", "aa", "bb", "bb"],
                qrels=[(0, 1), (0, 3)])
    result = score_run(make_run(tmp_path, **cols), ks=(1, 3))
    m = result.metrics
    assert m["rank_distance"][0, -1] == 1.0
    assert m["map"][0].tolist() == pytest.approx([1 / 2, 1 / 2, (2 / 4 + 1 / 3) / 2])
    pooled = result.cell_stats[Cell("aa", "all")]
    assert pooled["rank_distance"] == 1.0 and pooled["queries"] == 1 and pooled["skipped"] == 1
    assert pooled["recall@3"] == 0.5 and pooled["mrr"] == pytest.approx(1 / 3)
    assert result.summary["rank_distance"]["macro"] == 1.0


def test_pytrec_eval_on_tie_free_data(tmp_path, make_run):
    cols = parallel_run_columns(np.random.default_rng(2), integer=False, dim=8)
    scores = cols["q_emb"] @ cols["c_emb"].T
    assert all(len(np.unique(r)) == len(r) for r in scores)  # tie-free: trec_eval's tie order is irrelevant
    result = score_run(make_run(tmp_path, **cols), ks=(1, 5, 10))
    qids = [f"q{i}" for i in range(len(scores))]
    qrels = {}
    for qi, cj in cols["qrels"]:
        qrels.setdefault(qids[qi], {})[f"c{cj}"] = 1
    # Full ranking over the pooled set: trec_eval's map / recall_k / recip_rank are then exact.
    run = {qids[i]: {f"c{j}": float(scores[i, j]) for j in range(scores.shape[1])} for i in range(len(qids))}
    evaluated = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall.1,5,10", "recip_rank"}).evaluate(run)
    m = result.metrics
    for i, qid in enumerate(qids):
        assert m["map"][i, -1] == pytest.approx(evaluated[qid]["map"], abs=1e-12)
        assert m["mrr"][i, -1] == pytest.approx(evaluated[qid]["recip_rank"], abs=1e-12)
        for k in (1, 5, 10):
            # trec_eval's recall_k = relevant in the top k / all relevant of the query (num_rel).
            assert m[f"recall@{k}"][i, -1] == pytest.approx(evaluated[qid][f"recall_{k}"], abs=1e-12)


def test_ndcg_equals_pytrec_eval_ndcg_cut_on_tie_free_data(tmp_path, make_run):
    cols = parallel_run_columns(np.random.default_rng(3), integer=False, dim=8)
    scores = cols["q_emb"] @ cols["c_emb"].T
    assert all(len(np.unique(r)) == len(r) for r in scores)
    result = score_run(make_run(tmp_path, **cols), metrics="map,ndcg@1,3,10")
    qids = [f"q{i}" for i in range(len(scores))]
    qrels = {}
    for qi, cj in cols["qrels"]:
        qrels.setdefault(qids[qi], {})[f"c{cj}"] = 1
    c_langs = np.asarray(cols["c_langs"])
    for s, name in enumerate([*LANGS, "all"]):  # every candidate set: one language, then pooled
        members = np.flatnonzero(c_langs == name) if name != "all" else np.arange(len(c_langs))
        run = {qid: {f"c{j}": float(scores[i, j]) for j in members} for i, qid in enumerate(qids)}
        sub_qrels = {q: {d: r for d, r in g.items() if int(d[1:]) in set(members)} for q, g in qrels.items()}
        evaluated = pytrec_eval.RelevanceEvaluator(sub_qrels, {"ndcg_cut.1,3,10"}).evaluate(run)
        for i, qid in enumerate(qids):
            for k in (1, 3, 10):
                assert result.metrics[f"ndcg@{k}"][i, s] == pytest.approx(evaluated[qid][f"ndcg_cut_{k}"], abs=1e-12)
    cell = result.cell_stats[Cell("aa", "all")]
    assert set(cell) >= {"map", "ndcg@1", "ndcg@3", "ndcg@10", "rank_distance"} and result.ks == ()


def test_graded_ndcg_equals_pytrec_eval_ndcg_cut_on_tie_free_data(tmp_path, make_run):
    """Graded qrels (grades 0..3; 0 = judged not relevant): nDCG's gains are the grades, as
    trec_eval's ndcg_cut; binary metrics count grade >= 1 as relevant."""
    rng = np.random.default_rng(7)
    cols = parallel_run_columns(rng, integer=False, dim=8)
    grades = [int(g) for g in rng.integers(0, 4, len(cols["qrels"]))]
    scores = cols["q_emb"] @ cols["c_emb"].T
    assert all(len(np.unique(r)) == len(r) for r in scores)
    result = score_run(make_run(tmp_path, relevance=grades, **cols), metrics="map,recall@5,ndcg@1,3,10")
    qids = [f"q{i}" for i in range(len(scores))]
    qrels = {qid: {} for qid in qids}
    for (qi, cj), g in zip(cols["qrels"], grades):
        qrels[qids[qi]][f"c{cj}"] = g
    c_langs = np.asarray(cols["c_langs"])
    checked = 0
    for s, name in enumerate([*LANGS, "all"]):
        members = set(np.flatnonzero(c_langs == name) if name != "all" else range(len(c_langs)))
        run = {qid: {f"c{j}": float(scores[i, j]) for j in members} for i, qid in enumerate(qids)}
        sub_qrels = {q: {d: r for d, r in g.items() if int(d[1:]) in members} for q, g in qrels.items()}
        evaluated = pytrec_eval.RelevanceEvaluator(sub_qrels, {"ndcg_cut.1,3,10", "map", "recall.5"}).evaluate(run)
        for i, qid in enumerate(qids):
            if not any(r >= 1 for r in sub_qrels[qid].values()):
                assert np.isnan(result.metrics["ndcg@10"][i, s])  # no relevant candidate in this set
                continue
            for k in (1, 3, 10):
                assert result.metrics[f"ndcg@{k}"][i, s] == pytest.approx(evaluated[qid][f"ndcg_cut_{k}"], abs=1e-12)
            assert result.metrics["map"][i, s] == pytest.approx(evaluated[qid]["map"], abs=1e-12)
            assert result.metrics["recall@5"][i, s] == pytest.approx(evaluated[qid]["recall_5"], abs=1e-12)
            checked += 1
    assert checked > 0 and any(g >= 2 for g in grades) and 0 in grades


def test_subset_path_and_blocking_agree(tmp_path, make_run):
    cols = parallel_run_columns(np.random.default_rng(4))
    path = make_run(tmp_path, **cols)
    full = score_run(path)
    for kwargs in ({"pairs": "mono"}, {"pairs": "aa-bb,cc-all"}, {"block_mb": 1e-4}):
        part = score_run(path, **kwargs)
        for cell in part.cells:
            assert part.cell_stats[cell] == full.cell_stats[cell], (kwargs, cell)
    mono = score_run(path, pairs="mono")
    assert [c.kind for c in mono.cells] == ["mono"] * 3
    assert mono.summary["cross"] is None and mono.summary["micro_multi_map"] is None


def test_float16_run_and_single_candidate_language(tmp_path, make_run):
    rng = np.random.default_rng(5)
    cols = parallel_run_columns(rng, langs=("aa",))
    cols["q_langs"] = ["aa"] * (len(cols["q_langs"]) - 3) + ["bb"] * 3  # bb queries against aa candidates
    result = score_run(make_run(tmp_path, dtype="float16", **cols))
    assert [c.name for c in result.cells] == ["aa-aa", "aa-all", "bb-aa", "bb-all"]
    ref = reference_ap(cols)  # integer embeddings in [-2, 2]: float16 holds them exactly
    assert fastir_ap(result) == pytest.approx(ref, abs=1e-12)
    assert result.summary["mono"]["cells"] == 1 and result.summary["cross"]["cells"] == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n_q=st.integers(1, 12), n_c=st.integers(1, 40), n_langs=st.integers(1, 3),
       max_golds=st.integers(0, 11))
def test_property_random_runs(tmp_path_factory, make_run, seed, n_q, n_c, n_langs, max_golds):
    rng = np.random.default_rng(seed)
    langs = ["aa", "bb", "cc"][:n_langs]
    qrels = []
    for qi in range(n_q):
        m = int(rng.integers(0, min(max_golds, n_c) + 1))
        qrels += [(qi, int(cj)) for cj in rng.choice(n_c, m, replace=False)]
    cols = dict(q_emb=rng.integers(-1, 2, (n_q, 3)).astype(np.float32), q_langs=list(rng.choice(langs, n_q)),
                c_emb=rng.integers(-1, 2, (n_c, 3)).astype(np.float32), c_langs=list(rng.choice(langs, n_c)),
                qrels=qrels)
    path = make_run(tmp_path_factory.mktemp("prop"), **cols)
    ref = reference_ap(cols)
    try:
        result = score_run(path)
    except InputError as exc:
        # Some selected cell has no query with a relevant candidate: refused as a whole.
        assert "has a relevant candidate" in str(exc)
        return
    assert fastir_ap(result).keys() == ref.keys()
    assert fastir_ap(result) == pytest.approx(ref, abs=1e-12)


def test_bad_arguments_raise_input_error(tmp_path, make_run):
    cols = parallel_run_columns(np.random.default_rng(6))
    path = make_run(tmp_path, **cols)
    for kwargs, needle in (({"pairs": "xx-aa"}, "unknown query language"),
                           ({"pairs": "aa-zz"}, "unknown candidate language"),
                           ({"pairs": "nonsense"}, "neither"),
                           ({"ks": (0,)}, "positive"), ({"ks": "5,-1"}, "positive"), ({"ks": "a"}, "integer"),
                           ({"block_mb": 0}, "positive")):
        with pytest.raises(InputError, match=needle):
            score_run(path, **kwargs)


def test_relevance_threshold_equals_pytrec_eval_relevance_level(tmp_path, make_run):
    """--relevance-threshold 2 on graded qrels (0..3): map / recip_rank / recall count grade >= 2 as
    relevant, nDCG keeps every grade >= 1 as gain (trec_eval's ndcg_cut ignores relevance_level);
    queries without a grade >= 2 candidate in a set are not scored there."""
    rng = np.random.default_rng(17)
    cols = parallel_run_columns(rng, integer=False, dim=8)
    grades = [int(g) for g in rng.integers(0, 4, len(cols["qrels"]))]
    scores = cols["q_emb"] @ cols["c_emb"].T
    assert all(len(np.unique(r)) == len(r) for r in scores)
    path = make_run(tmp_path, relevance=grades, **cols)
    result = score_run(path, metrics="map,mrr,recall@5,ndcg@3,10", relevance_threshold=2)
    assert result.relevance_threshold == 2
    qids = [f"q{i}" for i in range(len(scores))]
    qrels = {qid: {} for qid in qids}
    for (qi, cj), g in zip(cols["qrels"], grades):
        qrels[qids[qi]][f"c{cj}"] = g
    c_langs = np.asarray(cols["c_langs"])
    checked = skipped = 0
    for s, name in enumerate([*LANGS, "all"]):
        members = set(np.flatnonzero(c_langs == name) if name != "all" else range(len(c_langs)))
        run = {qid: {f"c{j}": float(scores[i, j]) for j in members} for i, qid in enumerate(qids)}
        sub_qrels = {q: {d: r for d, r in g.items() if int(d[1:]) in members} for q, g in qrels.items()}
        evaluated = pytrec_eval.RelevanceEvaluator(sub_qrels, {"ndcg_cut.3,10", "map", "recall.5", "recip_rank"},
                                                   relevance_level=2).evaluate(run)
        for i, qid in enumerate(qids):
            n_rel = sum(r >= 2 for r in sub_qrels[qid].values())
            assert result.metrics.nrel[i, s] == n_rel
            if n_rel == 0:
                assert np.isnan(result.metrics.values[i, s]).all()
                skipped += any(r == 1 for r in sub_qrels[qid].values())
                continue
            for name_f, name_t in (("map", "map"), ("mrr", "recip_rank"), ("recall@5", "recall_5"),
                                   ("ndcg@3", "ndcg_cut_3"), ("ndcg@10", "ndcg_cut_10")):
                assert result.metrics[name_f][i, s] == pytest.approx(evaluated[qid][name_t], abs=1e-12), name_f
            checked += 1
    assert checked > 20 and skipped > 0
    # nDCG at threshold 2 really counts the grade-1 gains: it differs from the nDCG of grade >= 2 only.
    only_2 = [g if g >= 2 else 0 for g in grades]
    strict = score_run(make_run(tmp_path / "strict", relevance=only_2, **cols), metrics="ndcg@10")
    assert not np.allclose(np.nan_to_num(strict.metrics["ndcg@10"]), np.nan_to_num(result.metrics["ndcg@10"]))
    assert np.array_equal(strict.metrics.nrel, result.metrics.nrel)


def test_relevance_threshold_on_the_certified_path(tmp_path, make_run):
    """--precision exact applies the threshold as fp32 does (integer embeddings: identical ranks)."""
    rng = np.random.default_rng(29)
    cols = parallel_run_columns(rng)
    grades = [int(g) for g in rng.integers(1, 4, len(cols["qrels"]))]
    path = make_run(tmp_path, relevance=grades, **cols)
    fp32 = score_run(path, metrics="map,ndcg@10", relevance_threshold=3)
    exact = score_run(path, metrics="map,ndcg@10", relevance_threshold=3, precision="exact")
    assert np.array_equal(fp32.metrics.nrel, exact.metrics.nrel) and (fp32.metrics.nrel[:, -1] < 3).any()
    assert np.allclose(fp32.metrics.values, exact.metrics.values, rtol=0, atol=1e-12, equal_nan=True)


def test_relevance_threshold_one_is_the_default_and_bad_values_are_refused(tmp_path, make_run):
    cols = parallel_run_columns(np.random.default_rng(6))
    path = make_run(tmp_path, **cols)
    default, explicit = score_run(path), score_run(path, relevance_threshold="1")
    assert np.array_equal(default.metrics.values, explicit.metrics.values, equal_nan=True)
    for bad, needle in ((0, "must be >= 1"), ("-2", "must be >= 1"), ("1.5", "integer"), ("x", "integer"),
                        (True, "integer"), (2.0, "integer")):
        with pytest.raises(InputError, match=needle) as err:
            score_run(path, relevance_threshold=bad)
        assert err.value.field == "--relevance-threshold"
    with pytest.raises(InputError, match="no query has a relevant candidate at --relevance-threshold 2"):
        score_run(path, relevance_threshold=2)  # every grade is 1


def test_language_bias_suite_end_to_end_with_ties(tmp_path, make_run):
    """score_run's bias metrics (pooled rows only) equal brute-force numpy / scipy on the full score
    matrix (PEER: the kernel, tested against the reference formulas in tests/kernels/test_bias.py), with integer embeddings (many exact ties, broken by candidate row) and candidates whose
    rows interleave languages (so the language-grouped block columns differ from the row order)."""
    from scipy.spatial.distance import jensenshannon

    from fastir.kernels.bias import bias_block, FINALISERS

    rng = np.random.default_rng(23)
    cols = parallel_run_columns(rng, n_xling=10, n_extra=4, dim=3)
    shuffle = rng.permutation(len(cols["c_langs"]))  # candidate row -> new row
    inverse = np.argsort(shuffle)
    cols["c_emb"], cols["c_langs"] = cols["c_emb"][inverse], [cols["c_langs"][i] for i in inverse]
    cols["qrels"] = [(q, int(shuffle[c])) for q, c in cols["qrels"]]
    metrics = "map,same_lang@1,5,lang_jsd@5,lang_jsd_rel@5,peer@5,peer_nonrel@5,10"
    result = score_run(make_run(tmp_path, **cols), metrics=metrics, block_mb=1e-3)
    scores = cols["q_emb"] @ cols["c_emb"].T
    c_lang = np.searchsorted(LANGS, cols["c_langs"]).astype(np.int32)
    n = len(LANGS)
    golds = {}
    for q, c in cols["qrels"]:
        golds.setdefault(q, []).append(c)
    ties = 0
    for q in range(len(scores)):
        order = np.lexsort((np.arange(len(c_lang)), -scores[q]))
        ties += len(np.unique(scores[q][order[:5]])) < 5
        q_lang = LANGS.index(cols["q_langs"][q])
        for k in (1, 5):
            assert result.metrics[f"same_lang@{k}"][q, n] == pytest.approx((c_lang[order[:k]] == q_lang).mean())
        e = np.bincount(c_lang[order[:5]], weights=1 / np.log2(np.arange(5) + 2), minlength=n)
        rel = np.bincount(c_lang[golds[q]], minlength=n) / len(golds[q])
        assert result.metrics["lang_jsd@5"][q, n] == pytest.approx(jensenshannon(e, np.ones(n) / n, base=2) ** 2,
                                                                   abs=1e-12)
        assert result.metrics["lang_jsd_rel@5"][q, n] == pytest.approx(jensenshannon(e, rel, base=2) ** 2, abs=1e-12)
        assert np.isnan(result.metrics.values[q, :n, 1:]).all()  # pooled rows only
    assert ties > 0
    # PEER through the pipeline equals the kernel on the unblocked matrix in row order.
    program = (np.array([FINALISERS["peer"], FINALISERS["peer_nonrelevant"]]), np.array([5, 10]), np.array([0, 1]))
    values = np.full((len(scores), n + 1, 2), np.nan)
    ptr = np.concatenate([[0], np.cumsum([len(golds[q]) for q in range(len(scores))])])
    bias_block(scores.astype(np.float32), np.arange(len(c_lang)), c_lang, ptr,
               np.concatenate([golds[q] for q in range(len(scores))]), np.ones(ptr[-1], np.int64),
               np.arange(len(scores)), np.array([LANGS.index(x) for x in cols["q_langs"]]),
               np.ones(len(scores), bool), program, 1, values)
    # (the run codes languages in its own order: sums over groups may differ in the last bit)
    assert result.metrics["peer@5"][:, n] == pytest.approx(values[:, n, 0], abs=1e-12, nan_ok=True)
    assert result.metrics["peer_nonrel@10"][:, n] == pytest.approx(values[:, n, 1], abs=1e-12, nan_ok=True)
    # The exposure distribution of lang_jsd@5: per query, and its mean per query language in summary.json.
    shares = np.stack([np.bincount(c_lang[np.lexsort((np.arange(len(c_lang)), -scores[q]))[:5]],
                                   weights=1 / np.log2(np.arange(5) + 2), minlength=n) for q in range(len(scores))])
    shares /= shares.sum(axis=1, keepdims=True)
    code = {lang: result.cand_langs.index(lang) for lang in LANGS}
    assert result.metrics.exposure[5][:, [code[x] for x in LANGS]] == pytest.approx(shares, abs=1e-12)
    q_langs = np.asarray(cols["q_langs"])
    for x in LANGS:
        mean = shares[q_langs == x].mean(axis=0)
        assert [result.summary["lang_exposure@5"][x][y] for y in LANGS] == pytest.approx(mean, abs=1e-12)
    assert list(result.metrics.exposure) == [5] and "lang_exposure@10" not in result.summary
    # Aggregated like rank distance: multi cells and a macro mean per query language.
    assert set(result.summary["same_lang@5"]) == {"macro", "per_language"}
    assert result.cell_stats[Cell("aa", "all")]["peer@5"] == pytest.approx(
        np.nanmean(result.metrics["peer@5"][np.asarray(cols["q_langs"]) == "aa", n]))
    assert result.cell_stats[Cell("aa", "bb")]["same_lang@5"] is None


def test_bias_metrics_need_fp32_and_a_cell_metric(tmp_path, make_run):
    path = make_run(tmp_path, **parallel_run_columns(np.random.default_rng(6)))
    with pytest.raises(InputError, match="use --precision fp32"):
        score_run(path, metrics="map,peer@10", precision="exact")
    with pytest.raises(InputError, match="pooled-only metrics need a metric of every cell"):
        score_run(path, metrics="same_lang@10")
    mono = score_run(path, metrics="map,same_lang@10,lang_jsd@10", pairs="mono")  # no pooled cell: nothing to compute
    assert np.isnan(mono.metrics["same_lang@10"]).all() and mono.summary["same_lang@10"] is None
    assert mono.summary["lang_exposure@10"] is None and np.isnan(mono.metrics.exposure[10]).all()
    assert "lang_exposure@10" not in score_run(path).summary


CUTOFF_SPEC = "map@1,5,10,lareqa_map@1,5,mrr@1,5,10,p@1,5,10,success@1,5,10,judged@1,5,10"


def per_set_references(scores, c_langs, qrels, qids):
    """Per candidate set S (each language, then pooled): its run, and its qrels restricted to S."""
    for s, name in enumerate([*LANGS, "all"]):
        members = set(np.flatnonzero(c_langs == name) if name != "all" else range(len(c_langs)))
        run = {qid: {f"c{j}": float(scores[i, j]) for j in members} for i, qid in enumerate(qids)}
        sub_qrels = {q: {d: r for d, r in g.items() if int(d[1:]) in members} for q, g in qrels.items()}
        yield s, run, sub_qrels


def test_cutoff_variants_equal_pytrec_eval_and_ir_measures_on_tie_free_data(tmp_path, make_run):
    """map@k = map_cut_k, p@k = P_k, success@k = success_k, mrr@k = recip_rank of the run cut to its top k
    (pytrec_eval), judged@k = ir_measures Judged@k (grade-0 qrels are judged), on graded qrels, every set."""
    import ir_measures

    rng = np.random.default_rng(29)
    cols = parallel_run_columns(rng, integer=False, dim=8)
    grades = [int(g) for g in rng.integers(0, 3, len(cols["qrels"]))]
    scores = cols["q_emb"] @ cols["c_emb"].T
    assert all(len(np.unique(r)) == len(r) for r in scores)
    result = score_run(make_run(tmp_path, relevance=grades, **cols), metrics=CUTOFF_SPEC)
    qids = [f"q{i}" for i in range(len(scores))]
    qrels = {qid: {} for qid in qids}
    for (qi, cj), g in zip(cols["qrels"], grades):
        qrels[qids[qi]][f"c{cj}"] = g
    m = result.metrics
    checked = 0
    for s, run, sub_qrels in per_set_references(scores, np.asarray(cols["c_langs"]), qrels, qids):
        evaluated = pytrec_eval.RelevanceEvaluator(sub_qrels, {"map_cut.1,5,10", "P.1,5,10", "success.1,5,10"}
                                                   ).evaluate(run)
        judged = {(r.query_id, str(r.measure)): r.value for r in ir_measures.iter_calc(
            [ir_measures.Judged @ k for k in (1, 5, 10)], sub_qrels, run)}
        for k in (1, 5, 10):
            top = {q: dict(sorted(d.items(), key=lambda x: -x[1])[:k]) for q, d in run.items()}
            rr = pytrec_eval.RelevanceEvaluator(sub_qrels, {"recip_rank"}).evaluate(top)
            for i, qid in enumerate(qids):
                if not any(r >= 1 for r in sub_qrels[qid].values()):
                    assert np.isnan(m[f"map@{k}"][i, s]) and np.isnan(m[f"judged@{k}"][i, s])
                    continue
                for ours, theirs in ((f"map@{k}", f"map_cut_{k}"), (f"p@{k}", f"P_{k}"),
                                     (f"success@{k}", f"success_{k}")):
                    assert m[ours][i, s] == pytest.approx(evaluated[qid][theirs], abs=1e-12), ours
                assert m[f"mrr@{k}"][i, s] == pytest.approx(rr[qid]["recip_rank"], abs=1e-12)
                assert m[f"judged@{k}"][i, s] == pytest.approx(judged[(qid, f"Judged@{k}")], abs=1e-12)
                checked += 1
    assert checked > 100 and 0 in grades
    cell = result.cell_stats[Cell("aa", "all")]
    assert {"map@10", "mrr@10", "p@5", "success@1", "judged@10", "lareqa_map@5"} <= set(cell)


def test_cutoff_variants_on_tie_heavy_runs_equal_their_pessimistic_definition(tmp_path, make_run):
    """Integer embeddings (many tied scores), graded qrels with grade-0 rows: every cutoff variant equals
    its definition computed from the score matrix, rank(d) = |{c in S : score(c) >= score(d)}|."""
    rng = np.random.default_rng(30)
    cols = parallel_run_columns(rng, integer=True, dim=3)
    grades = [int(g) for g in rng.integers(0, 3, len(cols["qrels"]))]
    scores = cols["q_emb"].astype(np.float32) @ cols["c_emb"].astype(np.float32).T
    assert np.mean([len(np.unique(r)) < len(r) for r in scores]) > 0.9
    result = score_run(make_run(tmp_path, relevance=grades, **cols), metrics=CUTOFF_SPEC)
    c_langs = np.asarray(cols["c_langs"])
    judged = {}
    for (qi, cj), g in zip(cols["qrels"], grades):
        judged.setdefault(qi, {})[cj] = g
    ties = 0
    for s, name in enumerate([*LANGS, "all"]):
        members = np.flatnonzero(c_langs == name) if name != "all" else np.arange(len(c_langs))
        for i in range(len(scores)):
            row = scores[i, members]
            rank = {int(c): int((row >= scores[i, c]).sum()) for c in judged[i] if c in set(members)}
            rel = [c for c in rank if judged[i][c] >= 1]
            if not rel:
                continue
            ties += sum(rank[c] > int((row > scores[i, c]).sum()) + 1 for c in rel)
            for k in (1, 5, 10):
                prec = sum(sum(rank[g] <= rank[c] for g in rel) / rank[c] for c in rel if rank[c] <= k)
                found = sum(rank[c] <= k for c in rel)
                best = min(rank[c] for c in rel)
                expect = {f"map@{k}": prec / len(rel), f"p@{k}": found / k, f"success@{k}": float(found > 0),
                          f"mrr@{k}": 1 / best if best <= k else 0.0,
                          f"judged@{k}": sum(r <= k for r in rank.values()) / k}
                if k <= 5:
                    expect[f"lareqa_map@{k}"] = prec / min(len(rel), k)
                for key, value in expect.items():
                    assert result.metrics[key][i, s] == pytest.approx(value, abs=1e-12), key
    assert ties > 50  # golds tied with other candidates really occur


def test_judged_golds_on_every_scoring_path(tmp_path, make_run):
    """judged@k brings the grade-0 qrels into the golds: the streaming pass, the certified precision and
    the whole-row pass of the bias suite give the same values (integer embeddings: exact scores)."""
    rng = np.random.default_rng(31)
    cols = parallel_run_columns(rng, integer=True, dim=3)
    grades = [int(g) for g in rng.integers(0, 3, len(cols["qrels"]))]
    path = make_run(tmp_path, relevance=grades, **cols)
    spec = "map@10,judged@5,10,p@10"
    streamed = score_run(path, metrics=spec)
    for other in (score_run(path, metrics=spec, precision="exact"), score_run(path, metrics=spec + ",same_lang@5")):
        for name in ("map@10", "judged@5", "judged@10", "p@10"):
            assert np.array_equal(other.metrics[name], streamed.metrics[name], equal_nan=True), name
    assert np.array_equal(streamed.metrics.nrel, score_run(path, metrics="map").metrics.nrel)  # R_q unchanged
    # Judged@10 - P@10 = the grade-0 rows in the top 10: never negative, and here they occur.
    judged, precision = np.nan_to_num(streamed.metrics["judged@10"]), np.nan_to_num(streamed.metrics["p@10"])
    assert (judged >= precision - 1e-12).all() and (judged > precision + 1e-12).any()
