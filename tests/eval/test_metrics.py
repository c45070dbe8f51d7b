"""fastir.eval.metrics: the registry's specs, name parsing, columns, and the kernel program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastir.core.errors import InputError
from fastir.eval.metrics import (
    RANK_DISTANCE,
    REGISTRY,
    Measure,
    Metric,
    default_metrics,
    from_column,
    kernel_program,
    known_names,
    metric,
    parse_metrics,
    reads_unjudged_zero,
    register,
    with_rank_distance,
)


def test_every_measure_is_complete_and_has_a_kernel_finaliser():
    import importlib

    assert {"map", "mrr", "recall", "rank_distance"} <= set(REGISTRY)
    for name, m in REGISTRY.items():
        finalisers = importlib.import_module(f"fastir.kernels.{m.kernel}").FINALISERS
        assert name in (m.name, f"{m.name}@k") and m.label and m.finaliser in finalisers and "=" in m.formula
        assert ("{k}" in m.column) == m.cutoff == ("{k}" in m.label)
    assert [m.name for m in REGISTRY.values() if not m.higher_is_better] == [
        "rank_distance", "same_lang", "lang_jsd", "lang_jsd_rel"]
    # The language-bias suite: pooled cells, a cutoff, a citation, values in [0, 1].
    suite = [m for m in REGISTRY.values() if m.kernel == "bias"]
    assert [m.name for m in suite] == ["same_lang", "lang_jsd", "lang_jsd_rel", "peer", "peer_nonrel"]
    assert all(m.pooled_only and m.cutoff and m.bounded and m.citation for m in suite)
    assert "Sapiezynski" in REGISTRY["lang_jsd"].citation and "TREC 2022 Fair" in REGISTRY["lang_jsd"].citation
    assert "SIGIR 2024" in REGISTRY["peer"].citation and "hltcoe/peer_measure" in REGISTRY["peer"].citation
    with pytest.raises(ValueError, match="twice"):
        register(REGISTRY["map"])
    with pytest.raises(ValueError, match="twice"):
        register(REGISTRY["map@k"])  # a second map@k family
    with pytest.raises(ValueError, match="twice"):
        register(Measure("recall", "R", "r", True, "recall_at"))  # a bare measure after its family


def test_a_family_beside_a_bare_measure_of_its_name():
    """map / map@k and mrr / mrr@k: trec_eval's map and map_cut_k are two measures, one name."""
    assert metric("map").measure is REGISTRY["map"] and metric("MAP@10").measure is REGISTRY["map@k"]
    assert metric("mrr@10") == Metric(REGISTRY["mrr@k"], 10) and metric("mrr").k is None
    assert [(m.name, m.label, m.column) for m in parse_metrics("map@20,mrr@10,P@5,success@1,judged@10")] == [
        ("map@20", "mAP@20", "ap@20"), ("mrr@10", "MRR@10", "rr@10"), ("p@5", "P@5", "p@5"),
        ("success@1", "Success@1", "success@1"), ("judged@10", "Judged@10", "judged@10")]
    assert from_column("ap@20") == metric("map@20") and from_column("ap") == metric("map")
    assert from_column("rr@10") == metric("mrr@10") and from_column("lareqa_ap@20") == metric("lareqa_map@20")
    assert "map@K" in known_names() and "judged@K" in known_names()
    assert reads_unjudged_zero(parse_metrics("map,judged@10")) and not reads_unjudged_zero(parse_metrics("p@10"))
    assert "utils_lareqa" in REGISTRY["lareqa_map"].citation


def test_names_labels_and_columns():
    assert [(m.name, m.label, m.column) for m in default_metrics((1, 10))] == [
        ("map", "mAP", "ap"), ("mrr", "MRR", "rr"), ("recall@1", "R@1", "recall@1"), ("recall@10", "R@10", "recall@10")]
    assert RANK_DISTANCE.pooled_only and not RANK_DISTANCE.higher_is_better and RANK_DISTANCE.label == "Rank dist."
    assert metric("Recall@05") == Metric(REGISTRY["recall"], 5)
    for column in ("ap", "rr", "recall@7", "rank_distance"):
        assert from_column(column).column == column
    assert from_column("recall@0") is None and from_column("query_id") is None and from_column("num_relevant") is None


def test_parse_metrics_lists_families_and_duplicates():
    names = [m.name for m in parse_metrics("map, mrr,recall@1,5,10,,recall@5,map")]
    assert names == ["map", "mrr", "recall@1", "recall@5", "recall@10"]
    assert [m.name for m in parse_metrics(["recall@3", "2", "map"])] == ["recall@3", "recall@2", "map"]
    assert with_rank_distance(parse_metrics("rank_distance,map")) == (metric("map"), RANK_DISTANCE)


@pytest.mark.parametrize("spec, needle", [
    ("map,bogus", "unknown metric 'bogus'"),
    ("recall", "recall needs a cutoff"),
    ("rank_distance@5", "unknown metric 'rank_distance@5'"),
    ("map@0", "bad cutoff in 'map@0'"),
    ("recall@0", "bad cutoff in 'recall@0'"),
    ("recall@x", "bad cutoff"),
    ("recall@1,-5", "bad cutoff"),
    ("5,map", "follows no name@K metric"),
    ("map,5", "follows no name@K metric"),
    (" , ", "no metric given"),
])
def test_bad_specs_are_one_line_input_errors(spec, needle):
    with pytest.raises(InputError, match=needle) as err:
        parse_metrics(spec)
    assert err.value.field == "--metrics" and "\n" not in str(err.value)


def test_kernel_program_arrays():
    from fastir.kernels.ranking import FINALISERS

    codes, cutoffs, pooled = kernel_program(with_rank_distance(parse_metrics("mrr,recall@3")))
    assert codes.tolist() == [FINALISERS["reciprocal_rank"], FINALISERS["recall_at"], FINALISERS["rank_distance"]]
    assert cutoffs.tolist() == [0, 3, 0] and pooled.tolist() == [False, False, True]
    assert codes.dtype == cutoffs.dtype == np.int64 and pooled.dtype == np.bool_


def test_bias_program_and_the_ranking_program_skip_each_other():
    from fastir.eval.metrics import bias_metrics, bias_program, exposure_cutoffs
    from fastir.kernels.bias import FINALISERS

    chosen = with_rank_distance(parse_metrics("map,peer@10,same_lang@5,20,lang_jsd_rel@20,lang_jsd@3,20"))
    assert [m.name for m in bias_metrics(chosen)] == ["peer@10", "same_lang@5", "same_lang@20", "lang_jsd_rel@20",
                                                      "lang_jsd@3", "lang_jsd@20"]
    codes, cutoffs, index, slots = bias_program(chosen)
    assert codes.tolist() == [FINALISERS[f] for f in ("peer", "same_language_share", "same_language_share",
                                                      "exposure_jsd_relevant", "exposure_jsd_uniform",
                                                      "exposure_jsd_uniform")]
    assert cutoffs.tolist() == [10, 5, 20, 20, 3, 20] and index.tolist() == [1, 2, 3, 4, 5, 6]
    assert exposure_cutoffs(chosen) == [3, 20] and slots.tolist() == [-1, -1, -1, 1, 0, 1]
    ranking_codes, _, pooled = kernel_program(chosen)
    assert ranking_codes.tolist()[1:7] == [-1] * 6 and pooled.tolist() == [False] + [True] * 7
    assert from_column("lang_jsd_rel@10") == metric("lang_jsd_rel@10") and metric("PEER@3").label == "PEER@3"


def test_measure_is_declarative():
    m = Measure("x", "X@{k}", "x@{k}", True, "recall_at", cutoff=True)
    assert Metric(m, 3).name == "x@3" and Metric(m, 3).label == "X@3" and "x" not in REGISTRY


def test_docs_score_page_has_one_row_per_registered_measure():
    page = (Path(__file__).resolve().parents[2] / "docs" / "score.md").read_text(encoding="utf-8")
    section = page.split("### Per-query metrics", 1)[1].split("###", 1)[0]
    rows = {line.split("|")[1].strip().split()[0].strip("`") for line in section.splitlines()
            if line.startswith("| `")}
    assert rows == {f"{m.name}@k" if m.cutoff else m.name for m in REGISTRY.values()}


def test_tie_modes_declared_per_metric():
    from fastir.eval.metrics import TIE_MODES, check_ties, expected_program
    from fastir.kernels.ties import EXPECTED_FINALISERS

    ranking = parse_metrics("map,mrr,recall@5,ndcg@10,rank_distance")
    for mode in TIE_MODES:
        assert check_ties(mode, ranking) == mode
    codes, cutoffs, _ = expected_program(ranking)
    assert sorted(codes.tolist()) == sorted(EXPECTED_FINALISERS.values()) and cutoffs.tolist() == [0, 0, 5, 10, 0]
    for m in REGISTRY.values():  # every expected finaliser named in the registry exists
        assert not m.expected or m.expected in EXPECTED_FINALISERS
    with pytest.raises(InputError, match="--ties: peer@10 ranks the top k in its own order"):
        check_ties("expected", parse_metrics("map,peer@10"))
    for mode in ("pessimistic", "optimistic", "trec_eval"):  # a ranked run's bias suite reads trec_eval's order
        assert check_ties(mode, parse_metrics("map,peer@10")) == mode
    with pytest.raises(InputError, match="must be one of"):
        check_ties("random", ranking)


def test_a_metric_without_an_expected_closed_form_is_refused(monkeypatch):
    from dataclasses import replace

    from fastir.eval.metrics import Metric, check_ties

    plain = Metric(replace(REGISTRY["mrr"], name="plain", expected=""))
    with pytest.raises(InputError, match="--ties: plain has no closed form over the orders of tied scores"):
        check_ties("expected", [plain])
    assert check_ties("trec_eval", [plain]) == "trec_eval"
