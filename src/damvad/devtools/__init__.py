"""Tools for the benchmark scripts, experiments and tests, installed with damvad (no stage uses them): timing
and comparison helpers (:mod:`~damvad.devtools.bench`), the int8 experiments' candidates and gates
(:mod:`~damvad.devtools.int8`), a Ray cluster on loopback (:mod:`~damvad.devtools.raycluster`) and a webhook
receiver (:mod:`~damvad.devtools.webhook`). ``benchmarks/`` imports these, never ``tests/`` or another script.
"""
