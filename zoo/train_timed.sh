#!/usr/bin/env bash
# Train one zoo option file and record wall time, process CPU time and the machine load:
#   bash zoo/train_timed.sh options/zoo/NAME.yml [launcher...]   -> zoo/logs/NAME.time.txt
# The launcher defaults to `python`; e.g. `accelerate launch --num_processes 1 --cpu` for PromptIR.
set -euo pipefail
opt="$1"; shift
name="$(basename "$opt" .yml)"
log="zoo/logs/${name}.time.txt"
mkdir -p zoo/logs
launcher=("$@"); [ ${#launcher[@]} -eq 0 ] && launcher=(python)
{ echo "option file: $opt"; echo "OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"; echo "start: $(date -u) | $(uptime)"; } > "$log"
/usr/bin/time -v -o "$log.rusage" "${launcher[@]}" tools/train.py -opt "$opt"
{ echo "end: $(date -u) | $(uptime)"; grep -E "Elapsed|User time|System time|Maximum resident" "$log.rusage"; } >> "$log"
rm -f "$log.rusage"
