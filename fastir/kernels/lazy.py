"""Kernels with declared signatures, compiled (or loaded from Numba's on-disk cache) at their first call.

``numba.njit(signatures, cache=True)`` compiles every declared signature when its module is
imported, which with a warm cache means loading each one: 5–10 ms a signature, paid by every
command that imports the module whether it runs that kernel or not (``fastir score`` needs one
parallel kernel of :mod:`fastir.kernels.ranking` out of its three, and one signature of each
upcast kernel). ``lazy_njit`` keeps the signatures where they are written and defers the
compilation to the first call; helpers that only other kernels call carry no signature at all,
so that loading their callers from the cache never loads them (the caller's cached code holds
theirs), and are typed by those callers' declared signatures.
"""

from __future__ import annotations

import functools
import threading


class LazyKernel:
    """``numba.njit(signatures, **options)(func)``, built on first use; callable like the dispatcher."""

    def __init__(self, func, signatures, options: dict):
        functools.update_wrapper(self, func)
        self.py_func = func
        self.signatures = signatures
        self.options = options
        self._dispatcher = None
        self._lock = threading.Lock()

    @property
    def dispatcher(self):
        """The Numba dispatcher, every declared signature compiled (or loaded from the cache)."""
        if self._dispatcher is None:
            with self._lock:
                if self._dispatcher is None:
                    from numba import njit

                    self._dispatcher = njit(self.signatures, **self.options)(self.py_func)
        return self._dispatcher

    def __call__(self, *args):
        return self.dispatcher(*args)


def lazy_njit(signatures, **options):
    """Decorator: like ``numba.njit(signatures, **options)``, compiled at the first call instead of at import."""
    return functools.partial(LazyKernel, signatures=signatures, options=options)


# ------------------------------------------------------------------------------ background loading


class Preload:
    """A running :func:`preload`: :meth:`finish` when the command that started it ends."""

    def __init__(self, names, own_process):
        self.names = tuple(names)
        self._stop = threading.Event()
        with _PENDING_LOCK:
            _PENDING.update(self.names)
        self.thread = threading.Thread(target=self._run, args=(own_process,), name="fastir-preload",
                                       daemon=True)
        self.thread.start()

    def finish(self) -> None:
        """Load nothing more and wait for the kernel in flight: no thread outlives the command that
        started it (a CLI called inside a longer-lived Python process, a test)."""
        self._stop.set()
        self.thread.join()

    def _run(self, own_process):
        try:
            _load(self.names, own_process, self._stop)
        finally:
            with _PENDING_LOCK:
                _PENDING.difference_update(self.names)


def preload(names, own_process: bool = False) -> Preload:
    """Load the lazy kernels ``names`` ("module:function", in that order; a name that is no kernel is
    a cached loader, called) in a daemon thread.

    A command that knows which kernels it will call starts this first, so that importing Numba and
    loading the kernels from its cache (about a second of single-threaded Python at the first
    kernel of a process, registries included) overlaps the command's own reading and its first
    BLAS product (which releases the GIL) instead of preceding them; it calls
    :meth:`Preload.finish` when it ends. A kernel called before its load has finished waits for it
    (:class:`LazyKernel` holds a lock); a load that fails here is left for that call to fail the
    same way, in the calling thread, where it is reported.

    ``own_process``: the caller owns the process (the CLI), so two process-wide shortcuts apply.
    Numba's ``numba.np.arraymath`` imports ``scipy.linalg`` (0.4-0.5 s) only to choose how
    ``np.correlate`` / ``np.convolve`` compute an inner product; fastir's kernels use neither, so
    ``scipy.linalg`` is hidden while that module is imported and restored at once (``np.dot`` and
    ``np.linalg`` in Numba code still import scipy when they are compiled). And the cyclic collector
    pauses while the kernels load, then the objects Numba's import left (about 10^5, long-lived)
    are frozen out of it (:func:`gc.freeze`): it would otherwise traverse them again and again.
    """
    return Preload(names, own_process)


# Kernels a preload thread has yet to load: "module:function" names.
_PENDING: set[str] = set()
_PENDING_LOCK = threading.Lock()


def pending(name: str) -> bool:
    """True while a :func:`preload` thread has ``name`` ("module:function") still to load; never blocks,
    never imports. A caller with an equivalent numpy path may take it meanwhile instead of waiting."""
    return name in _PENDING


def _load(names, own_process, stop):
    import gc
    import importlib
    import sys

    collecting = gc.isenabled()
    if own_process:
        gc.disable()  # imports make long-lived objects, not garbage: collecting them is wasted work
    try:
        if own_process and "numba.np.arraymath" not in sys.modules and "scipy.linalg" not in sys.modules:
            sys.modules["scipy.linalg"] = None  # makes `import scipy.linalg...` raise ImportError at once
            try:
                importlib.import_module("numba.np.arraymath")
            finally:
                if sys.modules.get("scipy.linalg", 0) is None:
                    del sys.modules["scipy.linalg"]
        for name in names:
            if stop.is_set():
                return
            module, attr = name.split(":")
            loaded = getattr(importlib.import_module(module), attr)
            if isinstance(loaded, LazyKernel):
                loaded.dispatcher
            else:  # a loader with nothing to compile (a shared library): called once, its result cached
                loaded()
            with _PENDING_LOCK:
                _PENDING.discard(name)
    except Exception:  # noqa: BLE001 - the calling thread meets the same failure and reports it
        return
    finally:
        if own_process:
            gc.freeze()
            if collecting:
                gc.enable()
