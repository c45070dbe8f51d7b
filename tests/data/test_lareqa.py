"""The LAReQA loader against an independent re-implementation of utils_lareqa.py's rules."""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import pytest

from fastir.data import lareqa
from fastir.cli import main
from fastir.core.errors import InputError

# The LAReQA README's table (github.com/google-research-datasets/lareqa), typed in by hand.
README_COUNTS = {
    "xquad-r": {
        "questions": dict.fromkeys("ar de el en es hi ru th tr vi zh".split(), 1190),
        "candidates": {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244,
                       "ru": 1219, "th": 852, "tr": 1167, "vi": 1209, "zh": 1196},
        "totals": (13090, 13014),
    },
    "mlqa-r": {
        "questions": {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504},
        "candidates": {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322},
        "totals": (4199, 20534),
    },
}


def reference_load(root: Path, langs: list[str]):
    """Re-implementation of xtreme's utils_lareqa.load_data, kept close to the original's logic."""
    question_uids: list[str] = []
    question_xling: dict[str, str] = {}
    candidates: "collections.OrderedDict[str, str]" = collections.OrderedDict()
    by_xling_id: dict[str, list[str]] = collections.defaultdict(list)
    for lang in langs:
        data = json.loads((root / f"{lang}.json").read_text(encoding="utf-8"))
        num_paragraphs = 0
        for passage in data["data"]:
            for paragraph in passage["paragraphs"]:
                num_paragraphs += 1
                context_id = f"{lang}_{num_paragraphs}"
                context = paragraph["context"]
                sentences = [context[s:e] for s, e in paragraph["sentence_breaks"]]
                for qas in paragraph["qas"]:
                    assert len(qas["answers"]) == 1
                    start = qas["answers"][0]["answer_start"]
                    answer = None
                    for s, e in paragraph["sentence_breaks"]:
                        if s <= start < e:
                            answer = context[s:e]
                            break
                    if not answer:
                        continue
                    uid = f"{qas['id']}_{lang}"
                    question_uids.append(uid)
                    question_xling[uid] = qas["id"]
                    for pos, sentence in enumerate(sentences):
                        cuid = f"{context_id}_{pos}"
                        candidates.setdefault(cuid, lang)
                        if sentence == answer:
                            by_xling_id[qas["id"]].append(cuid)
                # paragraphs without (kept) questions still contribute candidates
                for pos in range(len(sentences)):
                    candidates.setdefault(f"{context_id}_{pos}", lang)
    return question_uids, question_xling, candidates, by_xling_id


@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r"])
def test_loader_matches_reference(name):
    ds = lareqa.load_dataset(name)
    root = Path(str(lareqa._specs_dir())) / "lareqa" / name
    q_uids, q_xling, cands, by_xling = reference_load(root, list(ds.langs))
    assert ds.question_id == q_uids
    assert ds.question_xling_id == [q_xling[u] for u in q_uids]
    assert sorted(ds.candidate_id) == sorted(cands)
    assert dict(zip(ds.candidate_id, ds.candidate_lang)) == dict(cands)
    ref_qrels = {(u, c) for u in q_uids for c in by_xling[q_xling[u]]}
    assert set(zip(ds.qrel_query_id, ds.qrel_candidate_id)) == ref_qrels
    assert len(ds.qrel_query_id) == len(ref_qrels)


@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r"])
def test_counts_equal_lareqa_readme(name):
    ds = lareqa.load_dataset(name)
    want = README_COUNTS[name]
    assert {lang: s.questions for lang, s in ds.stats.items()} == want["questions"]
    assert {lang: s.candidates for lang, s in ds.stats.items()} == want["candidates"]
    assert (ds.num_questions, ds.num_candidates) == want["totals"]
    spec = lareqa.load_spec(name)
    assert (spec["totals"]["questions"], spec["totals"]["candidates"]) == want["totals"]


def test_candidate_text_cut_by_sentence_breaks():
    ds = lareqa.load_dataset("xquad-r", langs=["en"])
    i = ds.candidate_id.index("en_1_0")
    assert ds.candidate_text[i].startswith("The Panthers defense gave up just 308 points")
    assert ds.candidate_context[i].startswith(ds.candidate_text[i])
    q = ds.question_id.index("56beb4343aeaaa14008c925b_en")
    assert "308 points" in ds.question_answer[q]


def test_langs_subset_restricts_relevance():
    ds = lareqa.load_dataset("xquad-r", langs=["en", "de"])
    assert ds.langs == ("de", "en")
    assert set(ds.candidate_lang) == {"de", "en"}
    assert all(c.split("_")[0] in {"de", "en"} for c in ds.qrel_candidate_id)
    assert len(ds.qrel_query_id) == 2 * 2 * 1190


def test_unknown_language():
    with pytest.raises(InputError, match="unknown language"):
        lareqa.load_dataset("xquad-r", langs=["en", "xx"])


# ------------------------------------------------------------------------------------ bad input


def _write(root: Path, lang: str, paragraphs: list[dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{lang}.json"
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}), encoding="utf-8")
    return path


def _paragraph(context="One two. Three four.", breaks=((0, 8), (9, 20)), qas=None):
    if qas is None:
        qas = [{"id": "q1", "question": "Three?", "answers": [{"answer_start": 9, "text": "Three"}]}]
    return {"context": context, "sentence_breaks": [list(b) for b in breaks], "qas": qas}


def test_custom_directory_dataset(tmp_path):
    _write(tmp_path, "en", [_paragraph()])
    _write(tmp_path, "de", [_paragraph("Eins zwei. Drei vier.", ((0, 10), (11, 21)),
                                       [{"id": "q1", "question": "Drei?", "answers": [{"answer_start": 11}]}])])
    ds = lareqa.load_dataset(tmp_path)
    assert ds.langs == ("de", "en")
    assert set(zip(ds.qrel_query_id, ds.qrel_candidate_id)) == {
        ("q1_de", "de_1_1"), ("q1_de", "en_1_1"), ("q1_en", "de_1_1"), ("q1_en", "en_1_1")}


def test_question_outside_every_sentence_is_skipped(tmp_path):
    qas = [{"id": "q1", "question": "?", "answers": [{"answer_start": 8}]}]  # the space between sentences
    _write(tmp_path, "en", [_paragraph(qas=qas)])
    ds = lareqa.load_dataset(tmp_path)
    assert ds.num_questions == 0 and ds.stats["en"].skipped_questions == 1
    assert ds.num_candidates == 2


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda p: p["qas"][0].update(answers=[]), "qas[0].answers"),
        (lambda p: p.update(sentence_breaks=[[0, 8], [9, 99]]), "sentence_breaks[1]"),
        (lambda p: p.update(sentence_breaks=[[0, "x"]]), "sentence_breaks[0]"),
        (lambda p: p.pop("context"), "context"),
        (lambda p: p["qas"][0]["answers"][0].pop("answer_start"), "answer_start"),
    ],
)
def test_bad_paragraph_names_file_and_field(tmp_path, mutate, field):
    p = _paragraph()
    mutate(p)
    path = _write(tmp_path, "en", [p])
    with pytest.raises(InputError) as err:
        lareqa.load_dataset(tmp_path)
    assert str(path) in str(err.value) and field in str(err.value)


@pytest.mark.parametrize("start", [-5, 20, 1000])
def test_answer_start_outside_the_context_is_an_error_naming_the_question(tmp_path, start):
    qas = [{"id": "q7", "question": "?", "answers": [{"answer_start": start}]}]
    path = _write(tmp_path, "en", [_paragraph(qas=qas)])
    with pytest.raises(InputError) as err:
        lareqa.load_dataset(tmp_path)
    assert err.value.one_line() == (f"{path}: data[0].paragraphs[0].qas[0].answers[0].answer_start: {start} outside "
                                    "the context (length 20) of question 'q7'")


@pytest.mark.parametrize("name", ["en de", "-x", "x.y"])
def test_language_file_names_are_language_codes(tmp_path, name):
    _write(tmp_path, "en", [_paragraph()])
    (tmp_path / f"{name}.json").write_text((tmp_path / "en.json").read_text())
    with pytest.raises(InputError, match=rf"{name}\.json: file name: invalid language code '{name}'"):
        lareqa.load_dataset(tmp_path)


def test_langs_option_is_checked_as_language_codes(tmp_path):
    _write(tmp_path, "en", [_paragraph()])
    with pytest.raises(InputError, match=r"^--langs: invalid language code '\.\./en'"):
        lareqa.load_dataset(tmp_path, langs=["en", "../en"])


def test_directory_without_language_files_names_the_field(tmp_path):
    with pytest.raises(InputError, match=r": \{lang\}\.json: no \{lang\}\.json files in this directory"):
        lareqa.load_dataset(tmp_path)


def test_malformed_json(tmp_path):
    (tmp_path / "en.json").write_text('{"data": [', encoding="utf-8")
    with pytest.raises(InputError, match=r"en\.json: json: malformed JSON at line 1"):
        lareqa.load_dataset(tmp_path)


@pytest.fixture()
def bundled_copy(tmp_path, monkeypatch):
    """A writable copy of data_specs/ that the loader uses in place of the installed one."""
    copy = tmp_path / "specs"
    shutil.copytree(lareqa._specs_dir(), copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    monkeypatch.setattr(lareqa, "_specs_dir", lambda: copy)
    return copy


def test_checksum_mismatch(bundled_copy):
    f = bundled_copy / "lareqa" / "mlqa-r" / "de.json"
    f.write_bytes(f.read_bytes().replace(b"Die", b"Der", 1))
    with pytest.raises(InputError, match=r"de\.json: sha256: checksum mismatch"):
        lareqa.load_dataset("mlqa-r")


def test_missing_language_file(bundled_copy):
    (bundled_copy / "lareqa" / "mlqa-r" / "hi.json").unlink()
    with pytest.raises(InputError, match=r"mlqa-r: hi\.json: language file is missing"):
        lareqa.load_dataset("mlqa-r")


def test_dataset_interface_columns():
    ds = lareqa.load_dataset("mlqa-r", langs=["en"])
    q, r = ds.queries(), ds.qrels()
    assert (q.ids, q.langs, q.texts, q.groups) == (ds.question_id, ds.question_lang, ds.question_text,
                                                   ds.question_xling_id)
    assert (r.query_ids, r.candidate_ids) == (ds.qrel_query_id, ds.qrel_candidate_id) and set(r.relevance) == {1}
    batches = list(ds.iter_candidates(1000))
    n = ds.num_candidates
    assert [len(b) for b in batches] == [1000] * (n // 1000) + [n % 1000]
    assert [i for b in batches for i in b.ids] == ds.candidate_id
    assert [p for b in batches for p in b.paragraph_ids] == ds.candidate_paragraph_id
    assert ds.summary() == lareqa.dataset_summary(ds) and ds.describe().startswith("mlqa-r  (1 languages")


def test_export_keeps_lareqa_columns_and_adds_grades(tmp_path):
    import pyarrow as pa

    assert main(["data", "export", "mlqa-r", str(tmp_path / "x"), "--langs", "de"]) == 0
    read = {n: pa.ipc.open_file(pa.memory_map(str(tmp_path / "x" / f"{n}.arrow"))).read_all()
            for n in ("questions", "candidates", "qrels")}
    assert read["questions"].column_names == ["id", "lang", "xling_id", "text"]
    assert read["candidates"].column_names == ["id", "lang", "paragraph_id", "text", "context"]
    assert read["qrels"].column_names == ["query_id", "candidate_id", "relevance"]
    assert set(read["qrels"].column("relevance").to_pylist()) == {1}
