"""LAReQA datasets (XQuAD-R, MLQA-R) with exactly LAReQA's semantics.

Reference: google-research/xtreme ``third_party/utils_lareqa.py``.

* Candidates are every sentence of every paragraph in every language, cut from ``context`` by
  ``sentence_breaks``; id ``{lang}_{paragraph_number}_{sentence_position}``, paragraphs numbered
  from 1 in file order, sentences from 0.
* A question is kept iff its ``answer_start`` lies inside a sentence (``start <= answer_start <
  end``); that sentence is its answer. Question id ``{xling_id}_{lang}`` (xling_id = SQuAD id).
* Relevance is cross-lingual: the relevant candidates of a question are the answer sentences of
  all kept questions with the same xling_id, in every language. As in the reference, every
  sentence of the answer's paragraph whose text equals the answer sentence is an answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fastir.data.dataset import Candidates, Qrels, Queries, dataset_checksum, sha256_file
from fastir.core.errors import InputError
from fastir.core.names import check_lang, check_langs


def _specs_dir() -> Path:
    return Path(str(resources.files("fastir.data_specs")))


def is_bundled(name: str) -> bool:
    """A LAReQA dataset shipped in ``data_specs/`` (its spec ``{name}.json`` and ``lareqa/{name}/``)."""
    return "/" not in name and (_specs_dir() / f"{name}.json").is_file() and (_specs_dir() / "lareqa" / name).is_dir()


def load_spec(name: str) -> dict:
    """The dataset spec (languages, per-file sha256, expected counts) from ``data_specs/``."""
    path = _specs_dir() / f"{name}.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@dataclass
class LanguageStats:
    questions: int = 0
    candidates: int = 0
    paragraphs: int = 0
    skipped_questions: int = 0


@dataclass
class LareqaCandidates(Candidates):
    """Candidates with the LAReQA paragraph each sentence was cut from (exported as ``paragraph_id``)."""

    paragraph_ids: list[str] | None = None

    def arrow_columns(self) -> dict[str, list[str]]:
        return {"id": self.ids, "lang": self.langs, "paragraph_id": self.paragraph_ids, "text": self.texts,
                "context": self.contexts}


@dataclass
class LareqaDataset:
    """Questions, candidates and qrels of one LAReQA dataset, as plain columns (lists).

    Implements :class:`fastir.data.dataset.Dataset`: every qrel has grade 1 (LAReQA's relevance
    is binary) and a question's parallel group is its ``xling_id``.
    """

    name: str
    root: Path
    langs: tuple[str, ...]
    checksum: str
    file_sha256: dict[str, str]
    # questions
    question_id: list[str] = field(default_factory=list)
    question_lang: list[str] = field(default_factory=list)
    question_xling_id: list[str] = field(default_factory=list)
    question_text: list[str] = field(default_factory=list)
    question_answer: list[str] = field(default_factory=list)  # its own-language answer sentence
    # candidates
    candidate_id: list[str] = field(default_factory=list)
    candidate_lang: list[str] = field(default_factory=list)
    candidate_paragraph_id: list[str] = field(default_factory=list)
    candidate_text: list[str] = field(default_factory=list)
    candidate_context: list[str] = field(default_factory=list)
    # qrels: one row per relevant (question, candidate) pair
    qrel_query_id: list[str] = field(default_factory=list)
    qrel_candidate_id: list[str] = field(default_factory=list)
    stats: dict[str, LanguageStats] = field(default_factory=dict)

    @property
    def num_questions(self) -> int:
        return len(self.question_id)

    @property
    def num_candidates(self) -> int:
        return len(self.candidate_id)

    # --- fastir.data.dataset.Dataset

    def queries(self) -> Queries:
        return Queries(self.question_id, self.question_lang, self.question_text, groups=self.question_xling_id)

    def candidates(self) -> LareqaCandidates:
        return LareqaCandidates(self.candidate_id, self.candidate_lang, self.candidate_text,
                                contexts=self.candidate_context, paragraph_ids=self.candidate_paragraph_id)

    def iter_candidates(self, batch_size: int):
        whole = self.candidates()
        for start in range(0, len(whole), batch_size):
            yield whole.slice(start, start + batch_size)

    def qrels(self) -> Qrels:
        return Qrels(self.qrel_query_id, self.qrel_candidate_id, [1] * len(self.qrel_query_id))

    def summary(self) -> dict:
        return dataset_summary(self)

    def describe(self) -> str:
        return format_summary(dataset_summary(self))


def resolve_dataset_dir(name_or_path: str | os.PathLike) -> tuple[str, Path, dict | None]:
    """Map a bundled name (``xquad-r``, ``mlqa-r``) or a directory to (name, directory, spec or None)."""
    key = os.fspath(name_or_path)
    if is_bundled(key):
        return key, _specs_dir() / "lareqa" / key, load_spec(key)
    path = Path(key)
    if not path.is_dir():
        raise InputError(key, "dataset", "not a bundled LAReQA dataset nor a directory of LAReQA {lang}.json files")
    return path.name, path, None


def open_bundled(name: str, langs: list[str] | None = None) -> LareqaDataset:
    """Registry opener of a bundled dataset (checked against its spec)."""
    if not is_bundled(name):
        raise InputError(name, "dataset", "not a bundled LAReQA dataset")
    return load_dataset(name, langs)


def open_directory(path: Path, langs: list[str] | None = None) -> LareqaDataset:
    """Registry opener of a directory of LAReQA-format ``{lang}.json`` files."""
    path = Path(path)
    return _load(path.name, path, None, langs)


def load_dataset(name_or_path: str | os.PathLike, langs: list[str] | None = None) -> LareqaDataset:
    """Load a bundled dataset by name or any directory of LAReQA-format ``{lang}.json`` files.

    Bundled datasets are checked against ``data_specs/{name}.json``: per-file sha256 and the
    per-language question/candidate/paragraph counts of the LAReQA README. ``langs`` restricts
    the languages (relevance is then computed within the kept languages only).
    """
    name, root, spec = resolve_dataset_dir(name_or_path)
    return _load(name, root, spec, langs)


def _load(name: str, root: Path, spec: dict | None, langs: list[str] | None) -> LareqaDataset:
    if spec is not None:
        all_langs = list(spec["languages"])
    else:
        all_langs = sorted(p.stem for p in root.glob("*.json"))
        if not all_langs:
            raise InputError(root, "{lang}.json", "no {lang}.json files in this directory")
        for lang in all_langs:
            check_lang(lang, root / f"{lang}.json", "file name")
    if langs is not None:
        if not langs:
            raise InputError(None, "--langs", "empty language list")
        check_langs(langs, None, "--langs")
        unknown = [lang for lang in langs if lang not in all_langs]
        if unknown:
            raise InputError(root, "langs", f"unknown language(s) {','.join(unknown)}; available: {','.join(all_langs)}")
        selected = [lang for lang in all_langs if lang in set(langs)]
    else:
        selected = all_langs

    file_sha: dict[str, str] = {}
    parsed: dict[str, dict] = {}
    for lang in all_langs:
        path = root / f"{lang}.json"
        if not path.is_file():
            raise InputError(root, f"{lang}.json", "language file is missing")
        digest = sha256_file(path)
        file_sha[f"{lang}.json"] = digest
        if spec is not None:
            expected = spec["files"][f"{lang}.json"]["sha256"]
            if digest != expected:
                raise InputError(path, "sha256", f"checksum mismatch: expected {expected}, found {digest}")
        if lang in selected:
            parsed[lang] = _read_json(path)

    ds = LareqaDataset(
        name=name, root=root, langs=tuple(selected), checksum=dataset_checksum(file_sha), file_sha256=file_sha
    )
    answers_by_xling: dict[str, list[str]] = {}
    for lang in selected:
        _add_language(ds, lang, parsed[lang], root / f"{lang}.json", answers_by_xling)
    for qid, xid in zip(ds.question_id, ds.question_xling_id):
        for cid in answers_by_xling[xid]:
            ds.qrel_query_id.append(qid)
            ds.qrel_candidate_id.append(cid)

    if spec is not None:
        _check_counts(ds, spec, root)
    return ds


def _read_json(path: Path) -> dict:
    from fastir.core.textfiles import read_json

    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(path, "data", "expected a SQuAD-format object with a 'data' list")
    return data


def _field(path: Path, obj, key: str, where: str, kind):
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(path, f"{where}.{key}", "missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(path, f"{where}.{key}", f"expected {getattr(kind, '__name__', kind)}, found {type(value).__name__}")
    return value


def _add_language(ds, lang, data, path, answers_by_xling) -> None:
    stats = LanguageStats()
    paragraph_number = 0
    seen_qids: set[str] = set()
    for a, article in enumerate(data["data"]):
        paragraphs = _field(path, article, "paragraphs", f"data[{a}]", list)
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            paragraph_number += 1
            paragraph_id = f"{lang}_{paragraph_number}"
            context = _field(path, paragraph, "context", where, str)
            breaks = _field(path, paragraph, "sentence_breaks", where, list)
            qas = _field(path, paragraph, "qas", where, list)
            spans = _sentence_spans(path, where, breaks, context)
            sentences = [context[start:end] for start, end in spans]
            stats.paragraphs += 1
            for position, sentence in enumerate(sentences):
                ds.candidate_id.append(f"{paragraph_id}_{position}")
                ds.candidate_lang.append(lang)
                ds.candidate_paragraph_id.append(paragraph_id)
                ds.candidate_text.append(sentence)
                ds.candidate_context.append(context)
            stats.candidates += len(sentences)
            for k, qa in enumerate(qas):
                paragraph_at = (paragraph_id, context, spans, sentences)
                _add_question(ds, lang, path, f"{where}.qas[{k}]", qa, paragraph_at, seen_qids, answers_by_xling,
                              stats)
    ds.stats[lang] = stats


def _sentence_spans(path, where: str, breaks: list, context: str) -> list[tuple[int, int]]:
    """The paragraph's ``sentence_breaks`` as checked (start, end) character spans."""
    spans = []
    for s, span in enumerate(breaks):
        if (
            not isinstance(span, list)
            or len(span) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
        ):
            raise InputError(path, f"{where}.sentence_breaks[{s}]", "expected [start, end] integers")
        start, end = span
        if not 0 <= start <= end <= len(context):
            raise InputError(
                path, f"{where}.sentence_breaks[{s}]", f"[{start}, {end}] outside the context (length {len(context)})"
            )
        spans.append((start, end))
    return spans


def _add_question(ds, lang, path, qwhere: str, qa, paragraph_at, seen_qids: set, answers_by_xling: dict,
                  stats) -> None:
    """One question of a paragraph: kept iff its answer starts inside a sentence (LAReQA's rule)."""
    paragraph_id, context, spans, sentences = paragraph_at
    xling_id = _field(path, qa, "id", qwhere, str)
    question = _field(path, qa, "question", qwhere, str)
    answers = _field(path, qa, "answers", qwhere, list)
    if len(answers) != 1:
        raise InputError(path, f"{qwhere}.answers", f"expected exactly 1 answer, found {len(answers)}")
    answer_start = _field(path, answers[0], "answer_start", f"{qwhere}.answers[0]", int)
    if not 0 <= answer_start < len(context):
        raise InputError(path, f"{qwhere}.answers[0].answer_start",
                         f"{answer_start} outside the context (length {len(context)}) "
                         f"of question {xling_id!r}")
    if xling_id in seen_qids:
        raise InputError(path, f"{qwhere}.id", f"duplicate question id {xling_id!r}")
    seen_qids.add(xling_id)
    answer = None
    for start, end in spans:
        if start <= answer_start < end:
            answer = context[start:end]
            break
    if not answer:
        # LAReQA skips questions whose answer starts outside every sentence.
        stats.skipped_questions += 1
        return
    ds.question_id.append(f"{xling_id}_{lang}")
    ds.question_lang.append(lang)
    ds.question_xling_id.append(xling_id)
    ds.question_text.append(question)
    ds.question_answer.append(answer)
    stats.questions += 1
    golds = answers_by_xling.setdefault(xling_id, [])
    for position, sentence in enumerate(sentences):
        if sentence == answer:
            cid = f"{paragraph_id}_{position}"
            if cid not in golds:
                golds.append(cid)


def _check_counts(ds: LareqaDataset, spec: dict, root: Path) -> None:
    expected = spec["counts"]
    for lang in ds.langs:
        got = ds.stats[lang]
        for key in ("questions", "candidates", "paragraphs"):
            if getattr(got, key) != expected[lang][key]:
                raise InputError(
                    root / f"{lang}.json",
                    key,
                    f"expected {expected[lang][key]} {key} (data_specs/{ds.name}.json), found {getattr(got, key)}",
                )
    if set(ds.langs) == set(spec["languages"]):
        for key, total in spec["totals"].items():
            got = ds.num_questions if key == "questions" else ds.num_candidates if key == "candidates" else None
            if got is not None and got != total:
                raise InputError(root, key, f"expected {total} {key} in total, found {got}")


def dataset_summary(ds: LareqaDataset) -> dict:
    """Per-language questions / candidates / paragraphs and totals, as a JSON-able dict."""
    rows = {
        lang: {"questions": s.questions, "candidates": s.candidates, "paragraphs": s.paragraphs,
               "skipped_questions": s.skipped_questions}
        for lang, s in ds.stats.items()
    }
    totals = {key: sum(r[key] for r in rows.values()) for key in ("questions", "candidates", "paragraphs", "skipped_questions")}
    return {"dataset": ds.name, "path": str(ds.root), "checksum": ds.checksum, "languages": rows, "totals": totals,
            "qrels": len(ds.qrel_query_id)}


def format_summary(summary: dict) -> str:
    head = f"{summary['dataset']}  ({len(summary['languages'])} languages, sha256 {summary['checksum'][:12]}…)"
    lines = [head, f"{'lang':<6}{'questions':>11}{'candidates':>12}{'paragraphs':>12}"]
    for lang, r in summary["languages"].items():
        lines.append(f"{lang:<6}{r['questions']:>11,}{r['candidates']:>12,}{r['paragraphs']:>12,}")
    t = summary["totals"]
    lines.append(f"{'total':<6}{t['questions']:>11,}{t['candidates']:>12,}{t['paragraphs']:>12,}")
    if t["skipped_questions"]:
        lines.append(f"({t['skipped_questions']} questions skipped: answer start outside every sentence)")
    return "\n".join(lines)
