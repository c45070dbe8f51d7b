"""The batch sampler: guarantees (property tests), statistics (binomial tolerances), resume,
rank slicing, the DataLoader adaptor, and ``fastir sample``."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastir.core.errors import InputError
from fastir.sampling.sampler import BatchSampler, rank_bounds, state_after

LANGS = ("ar", "de", "en", "zh")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTIR_CACHE_DIR", str(tmp_path / "cache"))


def make_table(path, n_ids=60, langs=LANGS, p_lang=1.0, seed=0, source=None, negative=True, prefix="x"):
    """Write a parallel table; returns (path, reference dict (xling_id, lang) -> row dict)."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n_ids):
        have = [l for l in langs if rng.random() < p_lang]
        if not have:
            have = [langs[int(rng.integers(len(langs)))]]
        for lang in have:
            rec = {"xling_id": f"{prefix}{i}", "lang": lang, "query": f"Q {prefix}{i} {lang}",
                   "passage": f"P {prefix}{i} {lang}"}
            if negative:
                rec["negative"] = f"N {prefix}{i} {lang}"
            if source is not None:
                rec["source"] = source
            recs.append(rec)
    order = rng.permutation(len(recs))
    recs = [recs[k] for k in order]
    table = pa.Table.from_pylist(recs)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table, max_chunksize=max(1, len(recs) // 3))
    return str(path), {(r["xling_id"], r["lang"]): r for r in recs}


def take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def key(batch):
    return (batch.step, batch.kind, batch.xling_ids, batch.query_langs, batch.passage_langs,
            batch.queries, batch.passages, batch.negatives, batch.sources)


def check_batch(batch, strategy, ref, batch_size):
    assert len(batch) == batch_size
    assert len(set(batch.xling_ids)) == len(batch.xling_ids)  # never two translations of one question
    for x, ql, pl, q, p, n in zip(batch.xling_ids, batch.query_langs, batch.passage_langs,
                                  batch.queries, batch.passages, batch.negatives):
        assert ref[(x, ql)]["query"] == q
        assert ref[(x, pl)]["passage"] == p and ref[(x, pl)]["negative"] == n
    same = [a == b for a, b in zip(batch.query_langs, batch.passage_langs)]
    kind = batch.kind
    if strategy == "hybrid":
        assert kind in ("mono", "cross")
    else:
        assert kind == strategy
    if kind in ("mono", "x-x-mono", "en-en"):
        assert all(same) and len(set(batch.query_langs)) == 1
        if kind == "en-en":
            assert batch.query_langs[0] == "en"
    elif kind in ("cross", "x-y"):
        assert not any(same)
    else:
        assert all(same)


# --- guarantees, property-tested ---------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    strategy=st.sampled_from(["x-x-mono", "x-x", "x-y", "hybrid", "en-en"]),
    batch_size=st.integers(1, 12),
    seed=st.integers(0, 2**32),
    alpha=st.floats(0, 1),
    p_lang=st.sampled_from([0.5, 1.0]),
    data_seed=st.integers(0, 3),
)
def test_every_batch_keeps_the_guarantees(tmp_path_factory, strategy, batch_size, seed, alpha, p_lang, data_seed):
    path, ref = make_table(tmp_path_factory.mktemp("t") / "t.arrow", n_ids=40, p_lang=p_lang, seed=data_seed)
    try:
        s = BatchSampler(path, strategy=strategy, batch_size=batch_size, seed=seed, alpha=alpha)
    except InputError:
        # only when a language (or the cross-lingual pool) is too small for the batch
        assert p_lang < 1.0
        return
    batches = take(s, 2 * s.steps_per_epoch + 3)  # crosses epoch boundaries and stream cycles
    for b in batches:
        check_batch(b, strategy, ref, batch_size)
    assert [b.step for b in batches] == list(range(len(batches)))
    again = take(BatchSampler(path, strategy=strategy, batch_size=batch_size, seed=seed, alpha=alpha), len(batches))
    assert [key(b) for b in again] == [key(b) for b in batches]


@settings(max_examples=30, deadline=None)
@given(
    strategy=st.sampled_from(["x-x-mono", "x-x", "x-y", "hybrid"]),
    batch_size=st.integers(4, 16),
    world_size=st.integers(1, 4),
    seed=st.integers(0, 1000),
    source_mode=st.sampled_from(["proportional", "uniform", "mixed"]),
)
def test_rank_slices_union_to_the_global_batch(tmp_path_factory, strategy, batch_size, world_size, seed, source_mode):
    tmp = tmp_path_factory.mktemp("w")
    a, _ = make_table(tmp / "a.arrow", n_ids=30, prefix="a")
    b, _ = make_table(tmp / "b.arrow", n_ids=50, prefix="b", seed=1)
    cfg = dict(strategy=strategy, batch_size=batch_size, seed=seed, source_mode=source_mode)
    single = take(BatchSampler([a, b], **cfg), 12)
    ranks = [take(BatchSampler([a, b], rank=r, world_size=world_size, **cfg), 12) for r in range(world_size)]
    for step, whole in enumerate(single):
        parts = [ranks[r][step] for r in range(world_size)]
        assert [len(p) for p in parts] == [hi - lo for lo, hi in (rank_bounds(batch_size, world_size, r) for r in range(world_size))]
        for field in ("xling_ids", "queries", "passages", "negatives", "query_langs", "passage_langs", "sources"):
            assert sum((getattr(p, field) for p in parts), []) == getattr(whole, field)
        assert {p.kind for p in parts} == {whole.kind} and {p.step for p in parts} == {whole.step}


@settings(max_examples=30, deadline=None)
@given(
    strategy=st.sampled_from(["x-x-mono", "x-x", "x-y", "hybrid"]),
    stop=st.integers(0, 40),
    seed=st.integers(0, 1000),
    new_world=st.integers(1, 3),
    skewed=st.booleans(),
    batch_size=st.integers(3, 7),
)
def test_resume_anywhere_gives_the_uninterrupted_batches(tmp_path_factory, strategy, stop, seed, new_world, skewed,
                                                        batch_size):
    path, _ = make_table(tmp_path_factory.mktemp("r") / "t.arrow", n_ids=50, p_lang=0.7)
    # skewed weights make the English stream run out and start new cycles inside an epoch
    weights = {"ar": 1, "de": 1, "en": 12, "zh": 1} if skewed else None
    cfg = dict(strategy=strategy, batch_size=batch_size, seed=seed, lang_weights=weights)
    full = take(BatchSampler(path, **cfg), stop + 10)  # steps_per_epoch is 7..16: resumes cross epochs
    first = BatchSampler(path, **cfg)
    take(first, stop)
    state = json.loads(json.dumps(first.state_dict()))  # must survive a JSON checkpoint
    resumed = BatchSampler(path, **cfg)
    resumed.load_state_dict(state)
    assert [key(b) for b in take(resumed, 10)] == [key(b) for b in full[stop:]]
    # a resumed rank of another world size gets its slice of the same batches
    r = new_world - 1
    lo, hi = rank_bounds(batch_size, new_world, r)
    other = BatchSampler(path, rank=r, world_size=new_world, **cfg)
    other.load_state_dict(state)
    assert [b.xling_ids for b in take(other, 10)] == [b.xling_ids[lo:hi] for b in full[stop:]]


@pytest.mark.parametrize("strategy", ["x-x-mono", "hybrid"])
def test_resume_at_every_step_across_stream_cycles(tmp_path, strategy):
    # English gets most batches and its stream (not a multiple of the batch size) starts new
    # cycles inside an epoch: the replayed cursors must wrap exactly like the live ones.
    path, _ = make_table(tmp_path / "t.arrow", n_ids=50, p_lang=0.7)
    cfg = dict(strategy=strategy, batch_size=6, seed=1, lang_weights={"ar": 1, "de": 1, "en": 12, "zh": 1})
    live = BatchSampler(path, **cfg)
    full = take(live, 3 * live.steps_per_epoch + 3)
    for stop in range(3 * live.steps_per_epoch):
        resumed = BatchSampler(path, **cfg)
        resumed.load_state_dict({**live.state_dict(), "epoch": stop // live.steps_per_epoch,
                                 "step": stop % live.steps_per_epoch})
        assert [key(b) for b in take(resumed, 3)] == [key(b) for b in full[stop : stop + 3]], stop


def test_epochs_reshuffle_and_roll_over(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=64)
    s = BatchSampler(path, strategy="x-x", batch_size=8, seed=3)
    assert s.steps_per_epoch == 8
    two = take(s, 16)
    ep0 = [x for b in two[:8] for x in b.xling_ids]
    ep1 = [x for b in two[8:] for x in b.xling_ids]
    assert sorted(ep0) == sorted(ep1) == sorted(f"x{i}" for i in range(64))  # each pair once per epoch
    assert ep0 != ep1 and {b.epoch for b in two[8:]} == {1}
    t = BatchSampler(path, strategy="x-x", batch_size=8, seed=3)
    t.set_epoch(1)
    assert [key(b) for b in take(t, 8)] == [key(b) for b in two[8:]]
    t.set_epoch(0)
    assert [key(b) for b in take(t, 8)] == [key(b) for b in two[:8]]
    other = take(BatchSampler(path, strategy="x-x", batch_size=8, seed=4), 8)
    assert [b.xling_ids for b in other] != [b.xling_ids for b in two[:8]]


def test_state_dict_rejects_another_configuration(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow")
    state = BatchSampler(path, strategy="hybrid", batch_size=8, seed=1).state_dict()
    with pytest.raises(InputError, match="alpha"):
        BatchSampler(path, strategy="hybrid", batch_size=8, seed=1, alpha=0.3).load_state_dict(state)
    with pytest.raises(InputError, match="seed"):
        BatchSampler(path, strategy="hybrid", batch_size=8, seed=2).load_state_dict(state)


def test_state_after_a_batch(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow")
    s = BatchSampler(path, strategy="hybrid", batch_size=8, seed=1)
    batches = take(s, 20)
    r = BatchSampler(path, strategy="hybrid", batch_size=8, seed=1)
    r.load_state_dict(state_after(r, batches[11]))
    assert [key(b) for b in take(r, 8)] == [key(b) for b in batches[12:20]]


# --- statistics (tolerances: 4.5 binomial standard errors) ----------------------------------


def within(count, n, p):
    se = np.sqrt(p * (1 - p) / n)
    return abs(count / n - p) <= 4.5 * se + 1e-12


@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("world_size", [1, 3])
def test_exact_alpha_every_step_resume_and_ranks(tmp_path, alpha, world_size):
    """--alpha-mode exact: the mono share after every step is within one batch of alpha, across
    epoch roll-overs (steps_per_epoch is 7 here); resuming mid-way and the rank slices give the same batches."""
    path, _ = make_table(tmp_path / "t.arrow", n_ids=60, p_lang=0.8)
    cfg = dict(strategy="hybrid", batch_size=8, seed=5, alpha=alpha, alpha_mode="exact")
    live = BatchSampler(path, **cfg)
    full = take(live, 60)
    assert live.steps_per_epoch < 20
    mono = np.cumsum([b.kind == "mono" for b in full])
    assert np.abs(mono - alpha * np.arange(1, 61)).max() < 1
    for stop in (0, 3, live.steps_per_epoch, 2 * live.steps_per_epoch + 1, 41):
        first = BatchSampler(path, **cfg)
        take(first, stop)
        state = json.loads(json.dumps(first.state_dict()))
        resumed = BatchSampler(path, **cfg)
        resumed.load_state_dict(state)
        assert [key(b) for b in take(resumed, 60 - stop)] == [key(b) for b in full[stop:]]
    lo_hi = [rank_bounds(8, world_size, r) for r in range(world_size)]
    ranks = [take(BatchSampler(path, rank=r, world_size=world_size, **cfg), 60) for r in range(world_size)]
    for step, whole in enumerate(full):
        assert sum((ranks[r][step].xling_ids for r in range(world_size)), []) == whole.xling_ids
        assert {ranks[r][step].kind for r in range(world_size)} == {whole.kind}
        assert [len(ranks[r][step]) for r in range(world_size)] == [hi - lo for lo, hi in lo_hi]


def test_exact_alpha_changes_only_the_kinds_sequence(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=60)
    random_ = take(BatchSampler(path, strategy="hybrid", batch_size=8, seed=5), 30)
    default = take(BatchSampler(path, strategy="hybrid", batch_size=8, seed=5, alpha_mode="random"), 30)
    assert [key(b) for b in random_] == [key(b) for b in default]
    exact = take(BatchSampler(path, strategy="hybrid", batch_size=8, seed=5, alpha_mode="exact"), 30)
    assert [b.kind for b in exact] == ["cross", "mono"] * 15
    # x-x-mono has no alpha: the mode changes nothing
    assert ([key(b) for b in take(BatchSampler(path, strategy="x-x-mono", batch_size=8, alpha_mode="exact"), 10)]
            == [key(b) for b in take(BatchSampler(path, strategy="x-x-mono", batch_size=8), 10)])


def test_alpha_mode_is_part_of_the_state(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow")
    random_state = BatchSampler(path, strategy="hybrid", batch_size=8, seed=1).state_dict()
    assert "alpha_mode" not in random_state["config"]  # states from before alpha modes still resume
    with pytest.raises(InputError, match="alpha_mode differs: saved 'random', now 'exact'"):
        BatchSampler(path, strategy="hybrid", batch_size=8, seed=1, alpha_mode="exact").load_state_dict(random_state)
    exact_state = BatchSampler(path, strategy="hybrid", batch_size=8, seed=1, alpha_mode="exact").state_dict()
    with pytest.raises(InputError, match="alpha_mode differs: saved 'exact', now 'random'"):
        BatchSampler(path, strategy="hybrid", batch_size=8, seed=1).load_state_dict(exact_state)
    with pytest.raises(InputError, match="--alpha-mode: expected one of random, exact, found 'even'"):
        BatchSampler(path, strategy="hybrid", batch_size=8, alpha_mode="even")


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 1.0])
def test_hybrid_mono_share_converges_to_alpha(tmp_path, alpha):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=400)
    s = BatchSampler(path, strategy="hybrid", batch_size=4, seed=7, alpha=alpha)
    plans = [s.next_plan() for _ in range(3000)]
    mono = sum(p.kind == "mono" for p in plans)
    assert within(mono, len(plans), alpha)


def test_mono_language_follows_weights(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=400)
    weights = {"ar": 1.0, "de": 2.0, "en": 3.0, "zh": 0.0}
    s = BatchSampler(path, strategy="x-x-mono", batch_size=4, seed=1, lang_weights=weights)
    langs = Counter(s.langs[int(s.next_plan().query_lang[0])] for _ in range(3000))
    assert langs["zh"] == 0
    for lang, w in weights.items():
        assert within(langs[lang], 3000, w / 6.0), (lang, langs)


def test_x_x_pair_language_follows_weights_among_available(tmp_path):
    path, ref = make_table(tmp_path / "t.arrow", n_ids=400, p_lang=0.6, seed=2)
    weights = {"ar": 1.0, "de": 2.0, "en": 4.0, "zh": 1.0}
    s = BatchSampler(path, strategy="x-x", batch_size=10, seed=1, lang_weights=weights)
    avail = {}
    for x, l in ref:
        avail.setdefault(x, set()).add(l)
    expected, got, n = Counter(), Counter(), 0
    for _ in range(1500):
        b = next(s)
        for x, l in zip(b.xling_ids, b.query_langs):
            total = sum(weights[a] for a in avail[x])
            for a in avail[x]:
                expected[a] += weights[a] / total  # the reference: exact expected counts
            got[l] += 1
            n += 1
    for lang in weights:
        p = expected[lang] / n
        assert within(got[lang], n, p), (lang, got, expected)


def test_x_y_language_pairs_follow_weight_products(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=300)
    weights = {"ar": 1.0, "de": 2.0, "en": 3.0, "zh": 0.5}
    s = BatchSampler(path, strategy="x-y", batch_size=10, seed=5, lang_weights=weights)
    pairs = Counter()
    for _ in range(1500):
        plan = s.next_plan()
        pairs.update(zip(plan.query_lang.tolist(), plan.passage_lang.tolist()))
    n = sum(pairs.values())
    w = np.array([weights[l] for l in s.langs])
    joint = np.outer(w, w)
    np.fill_diagonal(joint, 0)
    joint /= joint.sum()
    for q in range(4):
        for p in range(4):
            assert within(pairs[(q, p)], n, joint[q, p]), (q, p, pairs)


@pytest.mark.parametrize("mode", ["proportional", "uniform"])
def test_source_choice(tmp_path, mode):
    a, _ = make_table(tmp_path / "a.arrow", n_ids=30, prefix="a")
    b, _ = make_table(tmp_path / "b.arrow", n_ids=90, prefix="b")
    s = BatchSampler([a, b], strategy="x-x", batch_size=6, seed=2, source_mode=mode)
    n, from_a = 0, 0
    for _ in range(2000):
        batch = next(s)
        assert len(set(batch.sources)) == 1  # one source per batch
        from_a += batch.sources[0] == "a"
        n += 1
    assert within(from_a, n, 0.25 if mode == "proportional" else 0.5)


def test_mixed_sources_share_a_batch(tmp_path):
    a, ref_a = make_table(tmp_path / "a.arrow", n_ids=30, prefix="a", source="alpha")
    b, ref_b = make_table(tmp_path / "b.arrow", n_ids=30, prefix="b")
    s = BatchSampler([a, b], strategy="hybrid", batch_size=20, seed=2, source_mode="mixed")
    seen = set()
    for batch in take(s, 20):
        check_batch(batch, "hybrid", {**ref_a, **ref_b}, 20)
        seen.add(frozenset(batch.sources))
        for x, src in zip(batch.xling_ids, batch.sources):
            assert src == ("alpha" if x.startswith("a") else "b")
    assert any(len(s) == 2 for s in seen)


# --- bad input ---------------------------------------------------------------------------------


def test_bad_configuration(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=20)
    for kwargs, field in [
        ({"alpha": 1.5}, "--alpha"), ({"alpha": -0.1}, "--alpha"), ({"batch_size": 0}, "--batch-size"),
        ({"strategy": "x-z"}, "--strategy"), ({"source_mode": "odd"}, "--source-mode"),
        ({"lang_weights": {"xx": 1}}, "--lang-weights"), ({"lang_weights": {"en": -1}}, "--lang-weights"),
        ({"lang_weights": {"../en": 1}}, "--lang-weights"),
        ({"lang_weights": {"en": 0}}, "--lang-weights"), ({"batch_size": 21}, "lang"), ({"seed": -1}, "--seed"),
        ({"rank": 2, "world_size": 2}, "rank"),
    ]:
        cfg = {"strategy": "hybrid", "batch_size": 4, **kwargs}
        with pytest.raises(InputError) as err:
            BatchSampler(path, **cfg)
        assert err.value.field == field, (kwargs, err.value)


def test_x_y_over_single_language_ids(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=20, langs=("en",))
    with pytest.raises(InputError, match="one language only") as err:
        BatchSampler(path, strategy="x-y", batch_size=4)
    assert err.value.path == path and err.value.field == "xling_id"
    with pytest.raises(InputError, match="one language only"):
        BatchSampler(path, strategy="hybrid", batch_size=4, alpha=0.5)
    BatchSampler(path, strategy="hybrid", batch_size=4, alpha=1.0)  # mono only: fine


def test_en_en_needs_english(tmp_path):
    path, _ = make_table(tmp_path / "t.arrow", n_ids=20, langs=("de", "zh"))
    with pytest.raises(InputError, match="'en'"):
        BatchSampler(path, strategy="en-en", batch_size=4)


# --- DataLoader adaptor ------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_adaptor_keeps_the_order(tmp_path, workers):
    from torch.utils.data import DataLoader

    from fastir.sampling.sampler import SamplerDataset

    path, _ = make_table(tmp_path / "t.arrow", n_ids=40)
    expected = take(BatchSampler(path, strategy="hybrid", batch_size=6, seed=9, rank=1, world_size=2), 15)
    s = BatchSampler(path, strategy="hybrid", batch_size=6, seed=9, rank=1, world_size=2)
    loader = DataLoader(SamplerDataset(s), batch_size=None, num_workers=workers)
    got = []
    for batch in loader:
        got.append(batch)
        if len(got) == 15:
            break
    assert [key(b) for b in got] == [key(b) for b in expected]


def test_import_does_not_pull_torch():
    import subprocess
    import sys

    code = "import sys, fastir.sampling.sampler, fastir.data.train_table; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# --- fastir sample -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_cli_sample_writes_the_composition(tmp_path, capsys, suffix):
    from fastir.cli import main

    path, ref = make_table(tmp_path / "t.arrow", n_ids=80, p_lang=0.8)
    out = tmp_path / f"comp{suffix}"
    args = ["sample", path, "--strategy", "hybrid", "--alpha", "0.5", "--batch-size", "8", "--steps", "30",
            "--seed", "4", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "language pairs" in printed and "mono" in printed and "cross" in printed
    rows = pq.read_table(out).to_pylist() if suffix == ".parquet" else [json.loads(l) for l in out.read_text().splitlines()]
    assert list(rows[0]) == ["step", "batch_kind", "xling_id", "query_lang", "passage_lang", "source"]
    expected = take(BatchSampler(path, strategy="hybrid", batch_size=8, seed=4), 30)
    flat = [(b.step, b.kind, x, q, p, s) for b in expected
            for x, q, p, s in zip(b.xling_ids, b.query_langs, b.passage_langs, b.sources)]
    assert [tuple(r.values()) for r in rows] == flat
    assert main(args) == 2  # exists, no --overwrite
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("extra", [["--alpha", "2"], ["--alpha-mode", "even"], ["--batch-size", "500"], ["--lang-weights", "en=x"],
                                   ["--strategy", "x-y"], ["--out", "c.csv"]])
def test_cli_sample_bad_input_writes_nothing(tmp_path, capsys, extra):
    from fastir.cli import main

    path, _ = make_table(tmp_path / "t.arrow", n_ids=20, langs=("en",))
    out = tmp_path / "c.jsonl"
    args = ["sample", path, "--strategy", "hybrid", "--alpha", "1", "--batch-size", "4", "--out", str(out)]
    assert main(args[:3] + extra + args[3:] if extra[0] != "--out" else args[:-2] + [extra[0], str(tmp_path / extra[1])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "c.csv").exists()


def test_cli_sample_missing_column(tmp_path, capsys):
    from fastir.cli import main

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"xling_id": ["a"], "lang": ["en"], "query": ["q"]}), path)
    assert main(["sample", str(path), "--out", str(tmp_path / "c.jsonl")]) == 2
    assert "passage" in capsys.readouterr().err and not (tmp_path / "c.jsonl").exists()


def test_pickled_sampler_continues_identically(tmp_path):
    # DataLoader workers started by spawn receive a pickled sampler: the tables re-map their files
    import pickle

    path, _ = make_table(tmp_path / "t.arrow", n_ids=40)
    s = BatchSampler(path, strategy="hybrid", batch_size=6, seed=2)
    take(s, 5)
    clone = pickle.loads(pickle.dumps(s))
    assert [key(b) for b in take(clone, 12)] == [key(b) for b in take(s, 12)]


def test_same_batches_whatever_the_format_and_row_order(tmp_path):
    import pandas as pd

    path, ref = make_table(tmp_path / "t.arrow", n_ids=50, p_lang=0.8)
    rows = pd.DataFrame(list(ref.values()))
    shuffled = rows.sample(frac=1.0, random_state=1)
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), tmp_path / "t.parquet")
    with open(tmp_path / "t.jsonl", "w") as fh:
        for rec in rows.iloc[::-1].to_dict("records"):
            fh.write(json.dumps(rec) + "\n")
    runs = [take(BatchSampler(str(tmp_path / name), strategy="hybrid", batch_size=7, seed=5), 20)
            for name in ("t.arrow", "t.parquet", "t.jsonl")]
    assert [key(b) for b in runs[0]] == [key(b) for b in runs[1]] == [key(b) for b in runs[2]]


def test_cli_sample_json_summary_with_two_sources(tmp_path, capsys):
    from fastir.cli import main

    a, _ = make_table(tmp_path / "a.arrow", n_ids=30, prefix="a")
    b, _ = make_table(tmp_path / "b.arrow", n_ids=90, prefix="b")
    assert main(["sample", a, b, "--strategy", "x-x-mono", "--batch-size", "5", "--steps", "400",
                 "--lang-weights", "en=3,de=1", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    comp = report["composition"]
    assert comp["batches"] == 400 and comp["mono_pair_share"] == 1.0
    assert set(comp["lang_pairs"]) == {"en->en", "de->de"}
    assert within(comp["lang_pairs"]["en->en"] // 5, 400, 0.75)
    assert within(comp["sources"]["a"] // 5, 400, 0.25)  # proportional to 30 vs 90 pairs
    assert report["sampler"]["weights"]["zh"] == 0.0
