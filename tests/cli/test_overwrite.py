"""--overwrite never destroys an input or anything fastir did not write (issue 31, item 1).

Every case is refused with one line and exit 2 before any work, and leaves the tree as it was.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fastir.cli import main


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(capsys, root: Path, argv: list, *needles: str) -> None:
    before = _tree(root)
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    assert _tree(root) == before


@pytest.fixture
def project(inputs, tmp_path):
    """A project folder holding a copy of the run, its scores, the import inputs, a LAReQA dir and a note."""
    root = tmp_path / "proj"
    root.mkdir()
    for key in ("run", "run_b", "score_a", "score_b", "import", "lareqa"):
        shutil.copytree(inputs[key], root / key)
    shutil.copy(inputs["train_arrow"], root / "train.arrow")
    (root / "notes.txt").write_text("mine")
    return root


def test_score_into_the_folder_holding_its_run(project, capsys):
    _refused(capsys, project, ["score", project / "run", "--out", project, "--overwrite"],
             "would replace", "an input of this command")
    _refused(capsys, project, ["score", project / "run", "--out", project / "run", "--overwrite"], "an input")


def test_score_replaces_a_score_folder_but_not_a_foreign_one(project, capsys):
    out = project / "run" / "scores"
    assert main(["score", str(project / "run"), "--out", str(out)]) == 0
    assert main(["score", str(project / "run"), "--out", str(out), "--overwrite"]) == 0  # its own output
    (out / "notes.txt").write_text("mine")
    _refused(capsys, project, ["score", project / "run", "--out", out, "--overwrite"],
             "'notes.txt', which this command does not write")


def test_score_and_trec_in_one_folder_are_refused_before_the_work(project, capsys):
    out = project / "s"
    _refused(capsys, project, ["score", project / "run", "--out", out, "--trec", out], "--trec: must lie apart")
    _refused(capsys, project, ["score", project / "run", "--out", out, "--trec", out / "trec"], "--trec: must lie apart")


def test_a_link_to_an_input_is_seen_through(project, capsys):
    os.symlink(project / "run", project / "link")
    _refused(capsys, project, ["score", project / "run", "--out", project / "link", "--overwrite"], "an input")


def test_import_into_its_input_folder(project, capsys):
    d = project / "import"
    _refused(capsys, project, ["import", "--queries", d / "q.parquet", "--candidates", d / "c.npy",
                               "--qrels", d / "qrels.txt", "--out", d, "--overwrite"], "an input")


def test_compare_into_a_compared_run(project, capsys):
    _refused(capsys, project, ["compare", project / "score_a", project / "score_b", "--out", project / "score_a",
                               "--overwrite"], "an input")


def test_data_export_onto_its_dataset_and_into_it(project, capsys):
    _refused(capsys, project, ["data", "export", project / "lareqa", project / "lareqa", "--overwrite"], "an input")
    _refused(capsys, project, ["data", "export", project / "lareqa", project / "lareqa" / "x"], "lies inside")
    _refused(capsys, project, ["data", "to-train", project / "lareqa", project / "lareqa" / "t.jsonl"], "lies inside")


def test_data_export_replaces_its_own_output_only(project, capsys):
    out = project / "export"
    assert main(["data", "export", str(project / "lareqa"), str(out)]) == 0
    assert main(["data", "export", str(project / "lareqa"), str(out), "--overwrite"]) == 0
    (project / "other").mkdir()
    (project / "other" / "notes.txt").write_text("mine")
    _refused(capsys, project, ["data", "export", project / "lareqa", project / "other", "--overwrite"],
             "'notes.txt', which this command does not write")


def test_train_out_holding_its_table(project, capsys, train_tiny_bert):
    _refused(capsys, project, ["train", "--data", project / "train.arrow", "--model", train_tiny_bert,
                               "--out", project, "--overwrite", "--steps", "1", "--batch-size", "4",
                               "--device", "cpu", "--no-progress"], "an input")


def test_embed_into_its_dataset(project, capsys, embed_tiny_bert):
    _refused(capsys, project, ["embed", "--dataset", project / "lareqa", "--model", embed_tiny_bert,
                               "--out", project / "lareqa" / "run", "--no-progress"], "lies inside")
    _refused(capsys, project, ["embed", "--dataset", project / "lareqa", "--model", embed_tiny_bert,
                               "--out", project, "--overwrite", "--no-progress"], "an input")


def test_a_symlinked_output_is_refused_before_any_work(project, capsys, embed_tiny_bert):
    # issue 31, item 13: refused only after all the work (EISDIR), embed leaving its work dir
    (project / "elsewhere").mkdir()
    os.symlink(project / "elsewhere", project / "link")
    os.symlink(project / "nowhere.jsonl", project / "dangling.jsonl")
    for argv in (["score", project / "run", "--out", project / "link"],
                 ["embed", "--dataset", project / "lareqa", "--model", embed_tiny_bert, "--out", project / "link",
                  "--no-progress"],
                 ["data", "export", project / "lareqa", project / "link"],
                 ["data", "to-train", project / "lareqa", project / "dangling.jsonl"],
                 ["sample", project / "train.arrow", "--batch-size", "4", "--steps", "2", "--out",
                  project / "dangling.jsonl"]):
        _refused(capsys, project, argv, "is a symbolic link")
    assert not list(project.glob(".link*")) and not list(project.glob(".*fastir*"))


def test_long_legal_output_names_work(project, capsys, embed_tiny_bert):
    # issue 31, item 12: names over ~228 bytes (~195 with --trec) were refused by fastir's own
    # temporary, lock and work names; a training table's stem over ~190 by its cache name
    long = "n" * 250
    assert main(["score", str(project / "run"), "--out", str(project / long), "--trec", str(project / ("t" * 250)),
                 "--trec-depth", "3"]) == 0
    assert (project / long / "summary.json").is_file() and list((project / ("t" * 250)).glob("*.run"))
    assert main(["score", str(project / "run"), "--out", str(project / long), "--overwrite"]) == 0
    assert main(["embed", "--dataset", str(project / "lareqa"), "--model", embed_tiny_bert,
                 "--out", str(project / ("e" * 250)), "--no-progress"]) == 0
    table = project / ("s" * 240 + ".jsonl")
    assert main(["data", "to-train", str(project / "lareqa"), str(table)]) == 0
    assert main(["sample", str(table), "--batch-size", "2", "--steps", "1"]) == 0
    assert not [p for p in project.iterdir() if ".fastir-" in p.name]
