"""The ground floor every room stands on: errors, names, sizes, outputs, Arrow files, torchrun.

Nothing here knows about datasets, runs or models; every other room may import it.
"""

__version__ = "0.1.0"
