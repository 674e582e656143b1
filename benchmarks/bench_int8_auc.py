"""Does int8 I3D change what DAM detects? Frame AUC on synth-ucf-v1's test split from int8 vs fp32 features
(the comparison itself: ``damvad.devtools.int8.int8_auc_main``, whose help says how).

    python benchmarks/bench_int8_auc.py --runs runs/table1-synth-ucf-v1-test --rows mlp dist cov
"""

from __future__ import annotations

from damvad.devtools.int8 import int8_auc_main

if __name__ == "__main__":
    int8_auc_main()
