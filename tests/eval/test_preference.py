"""fastir.eval.preference.language_preference on a parallel run with many tied scores: every measure
equals its definition computed from the numpy score matrix (scipy's Spearman for MRC)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from fastir.core.errors import InputError
from fastir.eval.preference import COLUMNS, language_preference

LANGS = ("en", "de", "th")


def parallel_pool(rng, n_items=10, dim=3):
    """Question x in every language (group gx); candidate item x in every language (its answer in each),
    plus items without a question; integer embeddings: many ties."""
    q_langs, q_groups, c_langs, c_groups, qrels = [], [], [], [], []
    column = {}
    for x in range(n_items + 3):
        for lang in LANGS:
            column[(lang, x)] = len(c_langs)
            c_langs.append(lang)
            c_groups.append(f"g{x}")
    for x in range(n_items):
        for lang in LANGS:
            qi = len(q_langs)
            q_langs.append(lang)
            q_groups.append(f"g{x}")
            qrels += [(qi, column[(other, x)]) for other in LANGS]
    return dict(q_emb=rng.integers(-1, 2, (len(q_langs), dim)).astype(np.float32), q_langs=q_langs,
                q_xling=q_groups, c_emb=rng.integers(-1, 2, (len(c_langs), dim)).astype(np.float32),
                c_langs=c_langs, qrels=qrels), c_groups


def ranking(row):
    return sorted(range(len(row)), key=lambda c: (-float(row[c]), c))


def test_every_measure_equals_its_definition_on_tie_heavy_data(tmp_path, make_run):
    cols, c_groups = parallel_pool(np.random.default_rng(4))
    result = language_preference(make_run(tmp_path, **cols), pivot="en", k=5, target="th", cand_groups=c_groups,
                                 mlrs_k=6)
    scores = cols["q_emb"] @ cols["c_emb"].T
    c_langs, groups = np.asarray(cols["c_langs"]), np.asarray(cols["q_xling"])
    thai = {g: j for j, g in enumerate(c_groups) if c_langs[j] == "th"}
    ties = 0
    for i in range(len(scores)):
        mates = [b for b in np.flatnonzero(groups == groups[i]) if b != i]
        rc = [spearmanr(scores[i], scores[b]).statistic for b in mates if np.ptp(scores[i]) and np.ptp(scores[b])]
        assert result.values["mrc"][i] == pytest.approx(np.mean(rc), abs=1e-12) if rc else np.isnan(
            result.values["mrc"][i])
        top = ranking(scores[i])
        assert result.values["pivot_share"][i] == np.mean([c_langs[c] == "en" for c in top[:5]])
        new = sorted(range(6), key=lambda p: -float(scores[i, thai[c_groups[top[p]]]]))  # stable: ties keep p
        assert result.values["mlrs"][i] == pytest.approx(sum(max(p - n, 0) for n, p in enumerate(new)) / 15)
        golds = [c for q, c in cols["qrels"] if q == i]
        own = [c for c in golds if c_langs[c] == cols["q_langs"][i]]
        others = [c for c in golds if c_langs[c] != cols["q_langs"][i]]
        wins = [scores[i, d] > scores[i, o] for d in own for o in others]
        ties += sum(scores[i, d] == scores[i, o] for d in own for o in others)
        assert result.values["qlp"][i] == pytest.approx(np.mean(wins), abs=1e-15)
    assert ties > 5
    summary = result.summary()
    assert summary["pivot"] == "en" and summary["mrc"]["queries"] > 0
    assert summary["qlp"]["en"] == pytest.approx(np.nanmean(result.values["qlp"][:: len(LANGS)]))
    table = result.per_query
    assert table.column_names == ["query_id", "lang", *COLUMNS] and table.num_rows == len(scores)
    # Blocks of one parallel group at a time (a tiny budget) give the same values.
    small = language_preference(make_run(tmp_path / "again", **cols), pivot="en", k=5, target="th",
                                cand_groups=c_groups, mlrs_k=6, block_mb=1e-5)
    for name in COLUMNS:
        assert np.array_equal(small.values[name], result.values[name], equal_nan=True)


def test_without_a_target_mlrs_is_left_out(tmp_path, make_run):
    cols, _ = parallel_pool(np.random.default_rng(5))
    result = language_preference(make_run(tmp_path, **cols), pivot=None)
    assert np.isnan(result.values["mlrs"]).all() and np.isnan(result.values["pivot_share"]).all()
    assert set(result.summary()) == {"pivot", "k", "target", "mlrs_k", "mrc", "qlp"}


def test_bad_input_is_one_line(tmp_path, make_run):
    cols, c_groups = parallel_pool(np.random.default_rng(6))
    path = make_run(tmp_path, **cols)
    for kwargs, field, needle in (({"pivot": "xx"}, "pivot", "no candidate in 'xx'"),
                                  ({"k": 0}, "k", "positive integer"),
                                  ({"target": "th"}, "cand_groups", "parallel-group id per candidate"),
                                  ({"target": "th", "cand_groups": ["g0"] * len(c_groups)}, "cand_groups",
                                   "two candidates in 'th'")):
        with pytest.raises(InputError, match=needle) as err:
            language_preference(path, **kwargs)
        assert err.value.field == field and "\n" not in str(err.value)
    from fastir.runs.rundir import write_run

    q_ids, c_ids = [f"q{i}" for i in range(len(cols["q_langs"]))], [f"c{j}" for j in range(len(cols["c_langs"]))]
    write_run(tmp_path / "no_groups", {"dataset": "synthetic", "model": "synthetic", "normalized": False,
                                       "dtype": "float32"},
              query_ids=q_ids, query_langs=cols["q_langs"], query_groups=None, query_embeddings=cols["q_emb"],
              candidate_ids=c_ids, candidate_langs=cols["c_langs"], candidate_embeddings=cols["c_emb"],
              qrels_query_ids=[q_ids[i] for i, _ in cols["qrels"]],
              qrels_candidate_ids=[c_ids[j] for _, j in cols["qrels"]], qrels_relevance=[1] * len(cols["qrels"]))
    with pytest.raises(InputError, match="parallel queries") as err:
        language_preference(tmp_path / "no_groups")
    assert err.value.field == "xling_id"
