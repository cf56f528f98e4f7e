#!/usr/bin/env bash
# Link the IPT pre-training pool: every clean natural photo here except the IPT test set (Set5) and
# its validation set (Set14): CBSD68 (68) + Kodak24 (24) + McMaster18 (18) + Rain100H clean (100),
# 210 images, flat in experiments/zoo_ipt_pool/<set>_<file> (symlinks, nothing copied).
#   bash zoo/ipt_pool.sh [../shared/data]
set -euo pipefail
data=$(cd "${1:-../shared/data}" && pwd)
out=experiments/zoo_ipt_pool
mkdir -p "$out"
for set in CBSD68 Kodak24 McMaster18 Rain100H; do
  for f in "$data/$set/clean"/*; do ln -sf "$f" "$out/${set}_$(basename "$f")"; done
done
echo "IPT pre-training pool: $(ls "$out" | wc -l) images in $out"
