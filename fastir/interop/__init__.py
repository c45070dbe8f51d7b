"""Interoperability: fastir inside the tools researchers already use (sentence-transformers, MTEB, ir_datasets, ranx)."""
