"""Bridges to the tools researchers already use: sentence-transformers, MTEB, ranx and ir_measures."""
