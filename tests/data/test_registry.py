"""fastir.data.registry: names, layouts, one-line errors, and adding a dataset by one entry."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from fastir.cli import main
from fastir.data import registry
from fastir.data.dataset import Dataset
from fastir.data.lareqa import LareqaDataset
from fastir.core.errors import InputError


def test_names_and_choices():
    assert registry.dataset_names() == ["xquad-r", "mlqa-r"]
    text = registry.choices_text()
    assert "xquad-r, mlqa-r" in text and "LAReQA" in text and "corpus.jsonl" in text


def test_bundled_by_name_is_a_dataset():
    ds = registry.open_dataset("mlqa-r", langs=["en", "de"])
    assert isinstance(ds, LareqaDataset) and isinstance(ds, Dataset)
    q, c, r = ds.queries(), ds.candidates(), ds.qrels()
    assert len(q) == 512 + 1148 and len(c) == 2362 + 6264
    assert q.groups == ds.question_xling_id and c.contexts == ds.candidate_context
    assert set(r.relevance) == {1} and len(r) == len(ds.qrel_query_id)


def test_lareqa_directory_found_by_layout(embed_tiny_dataset):
    ds = registry.open_dataset(embed_tiny_dataset)
    assert isinstance(ds, LareqaDataset) and ds.langs == ("aa", "bb") and ds.name == "tiny"


@pytest.mark.parametrize("make, message", [
    (lambda tmp: "no-such-dataset", "no-such-dataset: dataset: unknown dataset: not a name (xquad-r, mlqa-r)"),
    (lambda tmp: str(tmp), "dataset: no known dataset layout in this directory"),
])
def test_unknown_dataset(tmp_path, make, message):
    with pytest.raises(InputError) as err:
        registry.open_dataset(make(tmp_path))
    assert message in str(err.value)


@pytest.mark.parametrize("argv", [
    ["data", "show", "no-such-dataset"],
    ["data", "export", "no-such-dataset", "OUT"],
    ["embed", "--dataset", "no-such-dataset", "--model", "none", "--out", "OUT"],
])
def test_cli_unknown_dataset_one_line_exit_2(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no-such-dataset: dataset: unknown dataset") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_adding_a_dataset_is_one_entry(monkeypatch, embed_tiny_dataset):
    from fastir.data.lareqa import open_directory

    module = types.ModuleType("fastir_test_extra_dataset")
    module.open_tiny = lambda name, langs: open_directory(embed_tiny_dataset, langs)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    entry = registry.DatasetEntry("tiny-extra", f"{module.__name__}:open_tiny", "a test dataset")
    monkeypatch.setitem(registry.DATASETS, entry.name, entry)
    assert "tiny-extra" in registry.dataset_names()
    assert registry.open_dataset("tiny-extra", langs=["bb"]).langs == ("bb",)


def test_empty_langs_refused():
    with pytest.raises(InputError, match="--langs: empty language list"):
        registry.open_dataset("xquad-r", langs=[])


def test_registry_and_help_stay_light(tmp_path):
    code = ("import sys, json\nfrom fastir.cli import main\nimport fastir.data.registry, fastir.cli.embed, "
            "fastir.cli.data, fastir.cli.experiment\ntry:\n    main(['embed', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps([m for m in ('numpy', 'pyarrow', 'torch', 'numba') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert "xquad-r, mlqa-r" in out
    assert json.loads(out.splitlines()[-1]) == []
