"""Dataset specs (checksums, expected counts), Arrow schemas and the bundled LAReQA data.

Installed as ``fastir.data_specs`` so that the data travels with the package; read with
``importlib.resources``. No code lives here.
"""
