#!/usr/bin/env bash
# Rain100H split for the zoo's PromptIR all-in-one: pairs 1-80 train, 81-100 test (never trained on).
# Links (no copies) under experiments/zoo_rain100h/{train,test}/{rainy,clean}.
set -euo pipefail
src=$(cd "${1:-../shared/data/Rain100H}" && pwd)
out=experiments/zoo_rain100h
for part in train test; do mkdir -p "$out/$part/rainy" "$out/$part/clean"; done
for i in $(seq 1 100); do
  part=train; [ "$i" -gt 80 ] && part=test
  for side in rainy clean; do ln -sf "$src/$side/$i.png" "$out/$part/$side/$i.png"; done
done
echo "Rain100H: $(ls $out/train/rainy | wc -l) training pairs, $(ls $out/test/rainy | wc -l) test pairs in $out"
