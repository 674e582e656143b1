#!/bin/bash
# Table 1's training setting on synth-ucf-v2 (the `train:` section of its shipped config, table1-synth-ucf-v2), with
# any key=value changes, trained on the training split and scored on the dev split (for dev studies: the test split
# is never touched). From the repository root with the venv active:
#
#   bash benchmarks/dev_runs.sh OUT VARIANT "SEED ..." [key=value ...]
#   e.g. bash benchmarks/dev_runs.sh runs/lstm-seed-study/R lstm "0 1 2" regularize=true
#        bash benchmarks/dev_runs.sh runs/learning-curve/dist/n36 dist "0 1 2" max_train_videos=36
#
# Runs go to OUT/sSEED (one torch thread each: run two at a time on 2 cores), dev reports to OUT/eval-dev/seedSEED; a
# finished run is only scored again. Data: $SYNTH_UCF_V2 (default: `damvad benchmark prepare synth-ucf-v2`'s cache),
# features: $FEATURES (default: the one features-* folder there).
# Since 2026-12-04 that config trains three heads (`heads: 3`); the dev studies before it used one head: add heads=1
# to repeat them.
set -euo pipefail
out=$1 variant=$2 seeds=$3
shift 3
root=${SYNTH_UCF_V2:-$HOME/.cache/damvad/benchmarks/synth-ucf-v2}
features=${FEATURES:-$(ls -d "$root"/features-* | head -n 1)}
for s in $seeds; do
  run=$out/s$s
  if [ ! -f "$run/seed$s/model.pt" ]; then
    damvad train --config table1-synth-ucf-v2 dataset="$root/data" features="$features" out="$run" \
      variant="$variant" "seeds=[$s]" threads=1 "$@" --quiet
  fi
  damvad evaluate "$run/seed$s/model.pt" dataset="$root/data" features="$features" split=dev \
    out="$out/eval-dev/seed$s" --quiet >/dev/null
  echo "done $variant seed $s $(date +%T)"
done
