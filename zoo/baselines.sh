#!/usr/bin/env bash
# The classical rows of zoo/README.md: non-local means at several h on each denoiser's test set,
# through tools/test.py (each h is one leaderboard row in the model's results folder).
set -euo pipefail
for h in ${COLOR_H:-6 9 12 15 18 21 24}; do
  python tools/test.py -opt options/zoo/baseline_nlm_color_s25.yml --no-progress \
    --set model.h=$h "test.model_name=NLM h=$h" test.report_images=0 --out zoo/results/color_denoise_s25
done
for h in ${GRAY_H:-15 20 25 30 35}; do
  python tools/test.py -opt options/zoo/baseline_nlm_gray_s25.yml --no-progress \
    --set model.h=$h "test.model_name=NLM h=$h" test.report_images=0 --out zoo/results/gray_denoise_s25
done
