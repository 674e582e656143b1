#!/bin/bash
# usage: learning_curve.sh VARIANT SIZE SEED...  train on a stratified SIZE-video subset of synth-ucf-v2's training
# split with Table 1's settings, score on dev (online / offline frame AUC)
set -e
cd /work/main && . .venv/bin/activate
D=~/.cache/damvad/benchmarks/synth-ucf-v2
variant=$1; size=$2; shift 2
for s in "$@"; do
  out=/work/runs/learning-curve/$variant/n$size/s$s
  damvad train dataset=$D/data features=$D/features-c923aef0c412 out=$out variant=$variant model.hidden=256 \
    iterations=1000 selection=average val_fraction=0.1 max_train_videos=$size "seeds=[$s]" threads=1 --quiet
  damvad evaluate $out/seed$s/model.pt dataset=$D/data features=$D/features-c923aef0c412 split=dev \
    out=/work/runs/learning-curve/$variant/n$size/eval-dev/seed$s --quiet >/dev/null
  echo "done $variant $size $s $(date +%T)"
done
