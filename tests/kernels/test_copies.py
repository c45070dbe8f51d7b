"""The deliberate copies among the Numba kernels stay the same code.

Numba's cache tracks only a cached function's own file, so a kernel that inlined a helper of
another module would run stale code once that module changed: each module of fastir/kernels keeps
its own copy of such a helper. These tests hold the copies together: the same code (comments,
docstrings, decorators and the names of parameters and locals aside), every named copy where the
table says, no copy missing from the table, and the same results on values with ties.
"""

from __future__ import annotations

import ast
import copy
import importlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import fastir.kernels

KERNELS = Path(fastir.kernels.__file__).parent
MODULES = sorted(p.stem for p in KERNELS.glob("*.py"))

# group -> (module, function) of each copy: the same code in every module named
COPIES = {
    "count at or above": [("ranking", "_count_at_or_above"), ("tiles", "_count_at_or_above"),
                          ("bias", "_count_at_or_above")],
    "heap order": [("topk", "_worse"), ("bias", "_worse")],
    "relevant golds": [("ranking", "_num_relevant"), ("ties", "_num_relevant")],
}
# topk's heap helper and its copy in bias: the same code once topk's heap address (b, s) and the
# payload that bias's heap carries beside each entry (cols, c) are left out
HEAPS = [(("topk", "_heap_replace_top"), ("bias", "_sift_down")), (("topk", "_heap_push"), ("bias", "_sift_up"))]
HEAP_ADDRESS, PAYLOAD = ("b", "s"), ("cols", "c")
# different functions of different modules that only share a name
# a measure's finaliser in bias and in ranking; the block loops of ranking (metrics from gold ranks) and
# ties (gold ranks from a ranked run)
SAME_NAME_ONLY = {"finalise", "_ranks_block"}
# module constants copied beside the helpers that use them
CONSTANTS = {"CHUNK": ["ranking", "tiles"]}


def functions(module: str) -> dict[str, ast.FunctionDef]:
    """The top-level functions of ``fastir/kernels/<module>.py``, by name."""
    tree = ast.parse((KERNELS / f"{module}.py").read_text(encoding="utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def code(fn: ast.FunctionDef) -> str:
    """``fn`` as an AST dump without its name, decorators, docstring and annotations (comments are
    not in an AST), its parameters and locals renamed v0, v1, ... in the order they appear."""
    fn = copy.deepcopy(fn)
    fn.name, fn.decorator_list, fn.returns = "f", [], None
    if ast.get_docstring(fn) is not None:
        fn.body = fn.body[1:]
    names = [a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)]  # the parameters first
    names += [n.arg for n in ast.walk(fn) if isinstance(n, ast.arg)]  # then those of lambdas
    names += [n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    rename = {name: f"v{i}" for i, name in enumerate(dict.fromkeys(names))}
    for node in ast.walk(fn):
        if isinstance(node, ast.arg):
            node.arg, node.annotation = rename[node.arg], None
        elif isinstance(node, ast.Name) and node.id in rename:
            node.id = rename[node.id]
    return ast.dump(fn)


def _drop_params(fn: ast.FunctionDef, names: tuple[str, ...]) -> None:
    assert {a.arg for a in fn.args.args} >= set(names), (fn.name, names)
    fn.args.args = [a for a in fn.args.args if a.arg not in names]


def without_heap_address(fn: ast.FunctionDef) -> tuple[ast.FunctionDef, int]:
    """topk's heaps are rows (b, s) of 3-d arrays: ``x[b, s, e]`` becomes ``x[e]``; returns the
    function and how many subscripts changed."""
    fn = copy.deepcopy(fn)
    changed = 0
    for node in ast.walk(fn):
        index = getattr(node, "slice", None)
        if (isinstance(node, ast.Subscript) and isinstance(index, ast.Tuple) and len(index.elts) == 3
                and [getattr(e, "id", None) for e in index.elts[:2]] == list(HEAP_ADDRESS)):
            node.slice = index.elts[2]
            changed += 1
    _drop_params(fn, HEAP_ADDRESS)
    return fn, changed


def without_payload(fn: ast.FunctionDef) -> tuple[ast.FunctionDef, int]:
    """bias's heap moves each entry's column along (``cols[...] = ...``): those statements and the
    parameters go; returns the function and how many statements went."""
    fn = copy.deepcopy(fn)
    dropped = 0

    def keep(stmt) -> bool:
        nonlocal dropped
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        if isinstance(target, ast.Subscript) and getattr(target.value, "id", None) == PAYLOAD[0]:
            dropped += 1
            return False
        return True

    for node in ast.walk(fn):
        for field in ("body", "orelse"):
            if isinstance(getattr(node, field, None), list):
                setattr(node, field, [s for s in getattr(node, field) if keep(s)])
    _drop_params(fn, PAYLOAD)
    assert not [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id in PAYLOAD], ast.unparse(fn)
    return fn, dropped


def kernel(module: str, name: str):
    return getattr(importlib.import_module(f"fastir.kernels.{module}"), name)


# ------------------------------------------------------------------------------------ the table


@pytest.mark.parametrize("module, name", sorted({m for group in COPIES.values() for m in group}
                                                | {m for pair in HEAPS for m in pair}))
def test_every_named_copy_exists_as_a_compiled_kernel(module, name):
    assert name in functions(module), f"fastir/kernels/{module}.py has no {name}: update the table"
    assert callable(getattr(kernel(module, name), "py_func", None)), (module, name)  # a Numba dispatcher


def test_every_group_names_copies_in_different_modules():
    for group in [*COPIES.values(), *([a, b] for a, b in HEAPS)]:
        assert len(group) >= 2 and len({module for module, _ in group}) == len(group), group


def test_no_copy_is_missing_from_the_table():
    """Functions of different kernel modules with the same name or the same code are a group of
    the table (or share only a name: SAME_NAME_ONLY)."""
    by_name, by_code = defaultdict(set), defaultdict(set)
    for module in MODULES:
        for name, fn in functions(module).items():
            by_name[name].add((module, name))
            by_code[code(fn)].add((module, name))
    shared = {frozenset(g) for g in [*by_name.values(), *by_code.values()] if len({m for m, _ in g}) > 1}
    only_named = {g for g in shared if next(iter(g))[1] in SAME_NAME_ONLY}
    assert shared - only_named == {frozenset(g) for g in COPIES.values()}
    assert {next(iter(g))[1] for g in only_named} == SAME_NAME_ONLY
    for g in only_named:  # really different code, else they belong in COPIES
        assert len({code(functions(m)[n]) for m, n in g}) == len(g), g


# ------------------------------------------------------------------------------------- the code


@pytest.mark.parametrize("group", sorted(COPIES))
def test_copies_are_the_same_code(group):
    (first, first_name), *others = COPIES[group]
    want = code(functions(first)[first_name])
    for module, name in others:
        assert code(functions(module)[name]) == want, (
            f"fastir/kernels/{module}.py:{name} differs from fastir/kernels/{first}.py:{first_name}:\n"
            f"{ast.unparse(functions(module)[name])}\n---\n{ast.unparse(functions(first)[first_name])}")


@pytest.mark.parametrize("topk_heap, bias_heap", HEAPS, ids=[f"{a[1]}-{b[1]}" for a, b in HEAPS])
def test_the_bias_heap_is_the_topk_heap_carrying_a_payload(topk_heap, bias_heap):
    topk_fn, changed = without_heap_address(functions(topk_heap[0])[topk_heap[1]])
    bias_fn, dropped = without_payload(functions(bias_heap[0])[bias_heap[1]])
    assert changed >= 4 and dropped >= 2  # the transforms found what they remove
    assert code(topk_fn) == code(bias_fn), f"{ast.unparse(topk_fn)}\n---\n{ast.unparse(bias_fn)}"


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_copied_constants_are_equal(name):
    values = {module: getattr(importlib.import_module(f"fastir.kernels.{module}"), name)
              for module in CONSTANTS[name]}
    assert len(set(values.values())) == 1, values


# -------------------------------------------------------------------------------- the behaviour


def _tied_values(rng, n: int) -> np.ndarray:
    """float32 values of few distinct levels (exact ties), with +-0.0 and +-inf among them."""
    levels = np.array([-np.inf, -2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, np.inf], np.float32)
    return levels[rng.integers(0, len(levels), n)]


def test_count_at_or_above_copies_count_the_same_on_ties():
    rng = np.random.default_rng(0)
    block = _tied_values(rng, 3 * 70).reshape(3, 70)
    copies = [kernel(m, n) for m, n in COPIES["count at or above"]]
    for b in range(block.shape[0]):
        for c0, c1 in ((0, 70), (0, 64), (5, 69), (33, 34), (40, 40)):
            values = block[b, c0:c1]  # a slice of a row, as the kernels pass it
            for threshold in (*np.unique(block), np.float32(0.7)):
                want = int(np.count_nonzero(values >= threshold))
                assert [int(f(values, threshold)) for f in copies] == [want] * len(copies), (b, c0, c1, threshold)


def test_heap_order_copies_and_the_tiles_merge_order_agree_on_ties():
    """``_worse(a, b)``: a ranks after b (lower score, or an equal score and a larger index);
    tiles' ``_before`` is its converse, the same order."""
    entries = [(np.float32(v), i) for v in (-1.0, 0.0, 0.0, 2.0) for i in (0, 3, 7)]
    copies = [kernel(m, n) for m, n in COPIES["heap order"]]
    before = kernel("tiles", "_before")
    for v1, i1 in entries:
        for v2, i2 in entries:
            want = (v1, -i1) < (v2, -i2)
            assert [bool(f(v1, i1, v2, i2)) for f in copies] == [want] * len(copies), (v1, i1, v2, i2)
            assert bool(before(v2, i2, v1, i1)) == want, (v1, i1, v2, i2)


@pytest.mark.parametrize("k", [1, 4, 9])
def test_heap_copies_hold_the_same_entries_at_every_step(k):
    """Both heaps fed the same stream (tied scores, indices in random order) hold the same entries
    in the same places after every push and replace, and sort to the reference top k."""
    rng = np.random.default_rng(k)
    n = 40
    values, index = _tied_values(rng, n), rng.permutation(n)
    t_vals, t_idx = np.zeros((1, 2, k), np.float32), np.zeros((1, 2, k), np.int32)
    b_vals, b_rows, b_cols = np.zeros(k, np.float32), np.zeros(k, np.int64), np.zeros(k, np.int64)
    worse = kernel("topk", "_worse")
    push, replace = kernel("topk", "_heap_push"), kernel("topk", "_heap_replace_top")
    sift_up, sift_down = kernel("bias", "_sift_up"), kernel("bias", "_sift_down")
    size = 0

    def same(size):
        assert t_vals[0, 1, :size].tolist() == b_vals[:size].tolist()
        assert t_idx[0, 1, :size].tolist() == b_rows[:size].tolist()
        assert (b_cols[:size] == 100 + b_rows[:size]).all()  # the payload moved with its entry

    for v, i in zip(values, index):
        v, i = np.float32(v), int(i)
        if size < k:
            push(t_vals, t_idx, 0, 1, size, v, np.int32(i))
            sift_up(b_vals, b_rows, b_cols, size, v, i, 100 + i)
            size += 1
        elif worse(t_vals[0, 1, 0], t_idx[0, 1, 0], v, i):
            replace(t_vals, t_idx, 0, 1, k, v, np.int32(i))
            sift_down(b_vals, b_rows, b_cols, k, v, i, 100 + i)
        same(size)
    for end in range(size - 1, 0, -1):  # heap sort, as both kernels finish
        v, i = t_vals[0, 1, end], t_idx[0, 1, end]
        t_vals[0, 1, end], t_idx[0, 1, end] = t_vals[0, 1, 0], t_idx[0, 1, 0]
        replace(t_vals, t_idx, 0, 1, end, v, i)
        v, r, c = b_vals[end], b_rows[end], b_cols[end]
        b_vals[end], b_rows[end], b_cols[end] = b_vals[0], b_rows[0], b_cols[0]
        sift_down(b_vals, b_rows, b_cols, end, v, r, c)
        same(k)
    order = np.lexsort((index, -values))[:k]  # score descending, then index ascending
    assert t_idx[0, 1].tolist() == index[order].tolist() and t_vals[0, 1].tolist() == values[order].tolist()
    same(k)
    assert not t_vals[0, 0].any() and not t_idx[0, 0].any()  # heap (0, 0) untouched: addressing
