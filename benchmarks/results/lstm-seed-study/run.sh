#!/bin/bash
# usage: lstm_seed_study.sh CAND SEED...   (CAND: B0 | R)
set -e
cd /work/main && . .venv/bin/activate
D=~/.cache/damvad/benchmarks/synth-ucf-v2
cand=$1; shift
reg=false; [ "$cand" = R ] && reg=true
for s in "$@"; do
  out=/work/runs/lstm-seed-study/$cand/s$s
  if [ "$cand" = B0 ] && [ -f /work/runs/table1-synth-ucf-v2/lstm/seed$s/model.pt ]; then
    model=/work/runs/table1-synth-ucf-v2/lstm/seed$s/model.pt
  else
    damvad train dataset=$D/data features=$D/features-c923aef0c412 out=$out variant=lstm model.hidden=256 \
      iterations=1000 selection=average val_fraction=0.1 regularize=$reg "seeds=[$s]" threads=1 --quiet
    model=$out/seed$s/model.pt
  fi
  damvad evaluate $model dataset=$D/data features=$D/features-c923aef0c412 split=dev out=/work/runs/lstm-seed-study/$cand/eval-dev/seed$s --quiet
  echo "done $cand $s $(date +%T)"
done
