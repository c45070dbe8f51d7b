"""The metric registry: every metric of fastir, defined once.

A :class:`Measure` is a declarative spec (as ir_measures' measures): its name as ranx /
ir_measures spell it, a display label and its decimal places, its per-query column, whether higher
is better, and the Numba finaliser of :mod:`fastir.kernels.ranking` that computes its per-query
value from the ranks of the query's golds (its docstring is the formula, :attr:`Measure.formula`;
docs/score.md is the page that defines every metric in prose, one table row per registered
measure). A cutoff family (``recall``) is one measure; ``recall@10`` is a :class:`Metric` (a measure
at a cutoff). A family may share its name with a bare measure: ``map`` (trec_eval's ``map``) and
``map@10`` (its ``map_cut_10``) are two measures. Scoring, the per-query table, ``fastir compare`` and ``fastir experiment`` read names,
labels, decimals, columns and directions from here. Adding a metric = one :func:`register` call
plus its finaliser, its test and its docs/score.md row.

No numba or numpy at import: the CLI reads this registry for its help text and validation.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastir.core.errors import InputError

OPTION = "--metrics"


@dataclass(frozen=True)
class Measure:
    """One metric, or one family of metrics parametrised by a cutoff ``@k``."""

    name: str  # as ranx / ir_measures spell it: map, mrr, recall, rank_distance
    label: str  # display label; "{k}" is the cutoff
    column: str  # per_query.parquet column; "{k}" is the cutoff
    higher_is_better: bool
    finaliser: str  # its Numba finaliser: a function of fastir.kernels.<kernel> (key of its FINALISERS)
    cutoff: bool = False  # a family: spelled name@k, k a positive integer
    pooled_only: bool = False  # defined on pooled cells (X->all) only
    bounded: bool = True  # per-query values lie in [0, 1]
    # decimal places of its values in fastir compare's and fastir experiment's tables (at compare's
    # default --digits 3; --digits shifts every metric alike): three for a 0-1 value, one for a rank
    decimals: int = 3
    kernel: str = "ranking"  # ranking: from the golds' ranks; bias: from the top k of the pooled ranking
    citation: str = ""  # where the measure is defined, for measures not in every IR textbook
    reads_unjudged_zero: bool = False  # its finaliser also reads the golds judged 0 (judged@k): they join the golds
    # --ties expected: its closed-form finaliser in fastir.kernels.ties (key of EXPECTED_FINALISERS); "" = none,
    # and --ties expected refuses the metric. The other tie modes give the finaliser ranks (fastir.kernels.ties).
    expected: str = ""
    # exact on a ranked run of limited depth (golds beyond it: not retrieved, as in trec_eval); False: the
    # value needs every gold's rank, and a query with a relevant gold beyond the run's depth gets NaN
    beyond_depth: bool = True

    @property
    def formula(self) -> str:
        """The per-query formula: the finaliser's docstring (imports the kernels; docs/score.md has the prose)."""
        import importlib

        return getattr(importlib.import_module(f"fastir.kernels.{self.kernel}"), self.finaliser).__doc__


@dataclass(frozen=True)
class Metric:
    """A measure, at a cutoff for a family."""

    measure: Measure
    k: int | None = None

    @property
    def name(self) -> str:
        return f"{self.measure.name}@{self.k}" if self.measure.cutoff else self.measure.name

    @property
    def label(self) -> str:
        return self.measure.label.format(k=self.k)

    @property
    def column(self) -> str:
        return self.measure.column.format(k=self.k)

    @property
    def higher_is_better(self) -> bool:
        return self.measure.higher_is_better

    @property
    def pooled_only(self) -> bool:
        return self.measure.pooled_only

    def __str__(self) -> str:
        return self.name


REGISTRY: dict[str, Measure] = {}


def register(measure: Measure) -> Measure:
    """Add ``measure`` under its name; a cutoff family may share the name of a bare measure (``map@k``
    beside ``map``), keyed ``name@k``."""
    existing = REGISTRY.get(measure.name)
    if (existing is not None and (existing.cutoff or not measure.cutoff)) or f"{measure.name}@k" in REGISTRY:
        raise ValueError(f"metric {measure.name!r} registered twice")
    REGISTRY[f"{measure.name}@k" if existing is not None else measure.name] = measure
    return measure


def lookup(name: str, cutoff: bool) -> Measure | None:
    """The measure spelled ``name`` (any case), a cutoff family if ``cutoff``, else None."""
    name = name.lower()
    measure = REGISTRY.get(f"{name}@k" if cutoff and f"{name}@k" in REGISTRY else name)
    return measure if measure is not None and measure.cutoff == cutoff else None


register(Measure("map", "mAP", "ap", True, "average_precision", expected="expected_average_precision"))
register(Measure("mrr", "MRR", "rr", True, "reciprocal_rank", expected="expected_reciprocal_rank"))
register(Measure("recall", "R@{k}", "recall@{k}", True, "recall_at", cutoff=True, expected="expected_recall_at"))
register(Measure("ndcg", "nDCG@{k}", "ndcg@{k}", True, "ndcg_at", cutoff=True, expected="expected_ndcg_at"))
register(Measure("rank_distance", "Rank dist.", "rank_distance", False, "rank_distance", pooled_only=True,
                 bounded=False, decimals=1, expected="expected_rank_distance", beyond_depth=False))

# The cutoff variants: trec_eval's map_cut_k, P_k and success_k, MRR@k (mMARCO, MKQA), Judged@k (NeuCLIR's
# pool check), and XTREME-R's LAReQA mAP@20, which divides by min(|R|, k) where map_cut divides by |R|.
register(Measure("map", "mAP@{k}", "ap@{k}", True, "average_precision_at", cutoff=True))
register(Measure("mrr", "MRR@{k}", "rr@{k}", True, "reciprocal_rank_at", cutoff=True))
register(Measure("p", "P@{k}", "p@{k}", True, "precision_at", cutoff=True))
register(Measure("success", "Success@{k}", "success@{k}", True, "success_at", cutoff=True))
register(Measure("judged", "Judged@{k}", "judged@{k}", True, "judged_at", cutoff=True, reads_unjudged_zero=True,
                 citation="ir_measures Judged@k (OpenNIR); the share of the top k with any relevance judgment"))
register(Measure("lareqa_map", "mAP@{k} (XTREME-R)", "lareqa_ap@{k}", True, "lareqa_average_precision_at",
                 cutoff=True, citation="XTREME-R (Ruder et al., EMNLP 2021), LAReQA's mAP@20: google-research/xtreme "
                                       "third_party/utils_lareqa.py, average_precision_at_k"))

# The language-bias suite: pooled cells only, from the top k of the pooled ranking (fastir.kernels.bias).
_AWRF = ("Sapiezynski et al., WWW 2019 companion, 'Quantifying the impact of user attention on fair group "
         "representation in ranked lists'; Ekstrand et al., 'Overview of the TREC 2022 Fair Ranking Track' (AWRF)")
_PEER = ("Yang, Jänich, Mayfield, Lawrie, SIGIR 2024, 'Language Fairness in Multilingual Information Retrieval' "
         "(doi:10.1145/3626772.3657943); reference code hltcoe/peer_measure")
register(Measure("same_lang", "SameLang@{k}", "same_lang@{k}", False, "same_language_share", cutoff=True,
                 pooled_only=True, kernel="bias", citation="arXiv 2408.10536 (language bias of pooled retrieval)"))
register(Measure("lang_jsd", "JSD-U@{k}", "lang_jsd@{k}", False, "exposure_jsd_uniform", cutoff=True,
                 pooled_only=True, kernel="bias", citation=_AWRF))
register(Measure("lang_jsd_rel", "JSD-R@{k}", "lang_jsd_rel@{k}", False, "exposure_jsd_relevant", cutoff=True,
                 pooled_only=True, kernel="bias", citation=_AWRF))
register(Measure("peer", "PEER@{k}", "peer@{k}", True, "peer", cutoff=True, pooled_only=True, kernel="bias",
                 citation=_PEER))
register(Measure("peer_nonrel", "PEER-N@{k}", "peer_nonrel@{k}", True, "peer_nonrelevant", cutoff=True,
                 pooled_only=True, kernel="bias", citation=_PEER))

RANK_DISTANCE = Metric(REGISTRY["rank_distance"])


def known_names() -> str:
    """``map, mrr, recall@K, rank_distance``: the spellings users may write."""
    return ", ".join(f"{m.name}@K" if m.cutoff else m.name for m in REGISTRY.values())


def reads_unjudged_zero(metrics) -> bool:
    """Whether a metric of ``metrics`` reads the golds judged 0 (they then join the kernels' golds)."""
    return any(m.measure.reads_unjudged_zero for m in metrics)


def metric(name: str, option: str = OPTION) -> Metric:
    """The metric spelled ``name`` (``map``, ``recall@10``); InputError naming ``option`` if unknown."""
    name = name.strip()
    base, at, k = name.partition("@")
    measure = lookup(base, bool(at))
    if measure is None:
        needs = lookup(base, True) is not None and lookup(base, False) is None
        hint = f"; {base} needs a cutoff: {base}@K" if not at and needs else ""
        raise InputError(None, option, f"unknown metric {name!r}{hint} (use {known_names()})")
    if not at:
        return Metric(measure)
    return Metric(measure, _cutoff(k, name, option))


def _cutoff(text: str, name: str, option: str) -> int:
    from fastir.core.numbers import INT32_MAX, parse_int

    try:
        return parse_int(text, option, lo=1, hi=INT32_MAX)
    except InputError:
        raise InputError(None, option, f"bad cutoff in {name!r}: K must be an integer from 1 to {INT32_MAX} "
                                       "in ASCII digits") from None


def parse_metrics(spec, option: str = OPTION) -> tuple[Metric, ...]:
    """Metrics of a comma list, in order, each once: ``map,mrr,recall@1,5,10``.

    A bare number continues the cutoff family before it (``recall@1,5`` = recall@1, recall@5).
    ``spec`` may also be an iterable of names or :class:`Metric`.
    """
    items = [x.strip() for x in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[Metric] = []
    family: Measure | None = None
    for item in items:
        if isinstance(item, Metric):
            m = item
        elif not item:
            continue
        elif item.isdigit() or item.lstrip("+-").isdigit():
            if family is None:
                raise InputError(None, option, f"cutoff {item!r} follows no name@K metric")
            m = Metric(family, _cutoff(item, f"{family.name}@{item}", option))
        else:
            m = metric(item, option)
        family = m.measure if m.measure.cutoff else None
        if m not in out:
            out.append(m)
    if not out:
        raise InputError(None, option, f"no metric given (use {known_names()})")
    return tuple(out)


def default_metrics(ks) -> tuple[Metric, ...]:
    """``fastir score``'s metrics without --metrics: map, mrr, recall@k for each k of --k."""
    return (Metric(REGISTRY["map"]), Metric(REGISTRY["mrr"]), *(Metric(REGISTRY["recall"], k) for k in ks))


def with_rank_distance(metrics) -> tuple[Metric, ...]:
    """``metrics`` then rank distance, which scoring always reports (last, as in every output)."""
    return (*(m for m in metrics if m != RANK_DISTANCE), RANK_DISTANCE)


def from_column(column: str) -> Metric | None:
    """The metric whose per-query column is ``column`` (``ap`` -> map, ``recall@10``), else None."""
    for measure in REGISTRY.values():
        head, brace, _ = measure.column.partition("{k}")
        if not brace and column == measure.column:
            return Metric(measure)
        if brace and column.startswith(head) and column[len(head):].isdigit() and int(column[len(head):]) > 0:
            return Metric(measure, int(column[len(head):]))
    return None


def kernel_program(metrics):
    """(codes, cutoffs, pooled_only) arrays for the kernels of :mod:`fastir.kernels.ranking`.

    A metric of another kernel gets code -1: the ranking kernels write NaN there (see :func:`bias_program`).
    """
    import numpy as np

    from fastir.kernels.ranking import FINALISERS

    codes = np.array([FINALISERS[m.measure.finaliser] if m.measure.kernel == "ranking" else -1 for m in metrics],
                     dtype=np.int64)
    cutoffs = np.array([m.k or 0 for m in metrics], dtype=np.int64)
    pooled_only = np.array([m.pooled_only for m in metrics], dtype=np.bool_)
    return codes, cutoffs, pooled_only


def bias_metrics(metrics) -> list[Metric]:
    """The metrics among ``metrics`` computed from the top k of the pooled ranking (:mod:`fastir.kernels.bias`)."""
    return [m for m in metrics if m.measure.kernel == "bias"]


EXPOSURE_MEASURES = ("lang_jsd", "lang_jsd_rel")  # their exposure distribution is also reported (summary.json)


def exposure_cutoffs(metrics) -> list[int]:
    """The cutoffs k whose exposure distribution is reported: those of ``lang_jsd@k`` / ``lang_jsd_rel@k``."""
    return sorted({m.k for m in metrics if m.measure.name in EXPOSURE_MEASURES})


def bias_program(metrics):
    """(codes, cutoffs, index, slots) arrays for :func:`fastir.kernels.bias.bias_block`: index =
    position in ``metrics``; slots = position of the metric's cutoff in :func:`exposure_cutoffs`, or -1."""
    import numpy as np

    from fastir.kernels.bias import FINALISERS

    chosen = [(i, m) for i, m in enumerate(metrics) if m.measure.kernel == "bias"]
    ks = exposure_cutoffs(metrics)
    codes = np.array([FINALISERS[m.measure.finaliser] for _, m in chosen], dtype=np.int64)
    cutoffs = np.array([m.k for _, m in chosen], dtype=np.int64)
    index = np.array([i for i, _ in chosen], dtype=np.int64)
    slots = np.array([ks.index(m.k) if m.measure.name in EXPOSURE_MEASURES else -1 for _, m in chosen], dtype=np.int64)
    return codes, cutoffs, index, slots


# ------------------------------------------------------------------------------------------ tie modes

TIES_OPTION = "--ties"
# How tied scores are ordered (fastir.kernels.ties): pessimistic (the default: ties count against the
# gold), optimistic (tied golds first), expected (the mean over every order of each tie, in closed
# form: a metric needs an ``expected`` finaliser) and trec_eval (score desc, then doc id desc).
TIE_MODES = ("pessimistic", "optimistic", "expected", "trec_eval")
DEFAULT_TIES = "pessimistic"


def check_ties(mode: str, metrics, option: str = TIES_OPTION) -> str:
    """``mode`` if every metric of ``metrics`` can be computed in it, else InputError naming the first that cannot."""
    if mode not in TIE_MODES:
        raise InputError(None, option, f"must be one of {', '.join(TIE_MODES)}, found {mode!r}")
    for m in metrics:
        # the bias suite of a ranked run reads one list in trec_eval's order in the modes that rank every
        # document (fastir.eval.ranked_bias); an average over tie orders it has not
        if mode == "expected" and m.measure.kernel != "ranking":
            raise InputError(None, option, f"{m.name} ranks the top k in its own order (score descending, then "
                                           f"document id descending); score it with --ties pessimistic, "
                                           f"optimistic or trec_eval, not {mode}")
        if mode == "expected" and not m.measure.expected:
            raise InputError(None, option, f"{m.name} has no closed form over the orders of tied scores; "
                                           "drop it or use --ties pessimistic|optimistic|trec_eval")
    return mode


def expected_program(metrics):
    """(codes, cutoffs, pooled_only) for :func:`fastir.kernels.ties.expected_metrics` (``--ties expected``)."""
    import numpy as np

    from fastir.kernels.ties import EXPECTED_FINALISERS

    codes = np.array([EXPECTED_FINALISERS[m.measure.expected] for m in metrics], dtype=np.int64)
    cutoffs = np.array([m.k or 0 for m in metrics], dtype=np.int64)
    pooled_only = np.array([m.pooled_only for m in metrics], dtype=np.bool_)
    return codes, cutoffs, pooled_only
