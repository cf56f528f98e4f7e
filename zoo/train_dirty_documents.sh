#!/usr/bin/env bash
# The zoo's document denoiser through the recipe's tool (split + train), timed like zoo/train_timed.sh.
set -euo pipefail
opt=options/zoo/restormer_dirty_documents_tiny.yml
log=zoo/logs/restormer_dirty_documents_tiny.time.txt
mkdir -p zoo/logs
{ echo "option file: $opt"; echo "OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"; echo "start: $(date -u) | $(uptime)"; } > "$log"
/usr/bin/time -v -o "$log.rusage" python tools/dirty_documents.py train -opt "$opt" --data ../shared/data/DirtyDocuments --val-ids 3 6
{ echo "end: $(date -u) | $(uptime)"; grep -E "Elapsed|User time|System time|Maximum resident" "$log.rusage"; } >> "$log"
rm -f "$log.rusage"
