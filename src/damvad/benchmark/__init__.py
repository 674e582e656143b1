"""Reproducible experiments on the named synthetic benchmarks (:mod:`damvad.synth.benchmark`).

``prepare`` generates a benchmark's videos and extracts their features once (cached, keyed by
everything that changes them); ``table1`` trains every Table 1 variant over seeds and reports them
with intervals; ``changedet`` is the training-free reference; ``diagnose`` looks inside DAM's training.
"""
