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
