"""fastir.train.heldout: held-out sets come through the dataset registry (grades, optional groups)."""

from __future__ import annotations

import pytest

from fastir.core.errors import InputError
from fastir.train.heldout import load_eval_set


def test_dataset_eval_set_through_the_registry(embed_tiny_dataset):
    es = load_eval_set(embed_tiny_dataset, langs=["aa"])
    assert es.name == "tiny" and set(es.query_langs) == {"aa"} and es.query_groups is not None
    assert len(es.qrels_relevance) == len(es.qrels_query_id) and set(es.qrels_relevance) == {1}
    sub = load_eval_set(embed_tiny_dataset, max_queries=5, seed=2)
    assert len(sub.query_ids) == len(sub.query_groups) == 5
    assert set(sub.qrels_query_id) <= set(sub.query_ids) and len(sub.qrels_relevance) == len(sub.qrels_query_id)


def test_train_table_eval_set_is_binary(train_table_arrow):
    es = load_eval_set(train_table_arrow, langs=["aa", "cc"])
    assert set(es.qrels_relevance) == {1} and len(es.query_groups) == len(es.query_ids)


def test_unknown_dataset_name():
    with pytest.raises(InputError, match="no-such: dataset: unknown dataset"):
        load_eval_set("no-such")
