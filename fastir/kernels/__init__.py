"""Numba kernels: pure array-in / array-out functions, no IO. Installed as ``fastir.kernels``.

Import a kernel module (``fastir.kernels.ranking`` …) where it is needed: importing this package
does not import numba.
"""
