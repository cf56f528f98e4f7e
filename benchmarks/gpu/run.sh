#!/usr/bin/env bash
# The GPU check suite (benchmarks/gpu/suite.py): CUDA tests, fp32/bf16/fp16 training of the demo and
# the paper-size Restormer/PromptIR/IPT, Trainer vs reference loop, torch.compile, inference at
# 256/512/1024 px, the papers' largest progressive stages on 24/40/80 GiB, one summary table.
#
#   bash benchmarks/gpu/run.sh              # on a CUDA machine: at most ~8 minutes, install included
#   bash benchmarks/gpu/run.sh --dry-run    # on the CPU, tiny sizes: CI's check that it still works
#   bash benchmarks/gpu/run.sh --only train inference --budget 200    # extra arguments go to suite.py
#
# Results: $OUT (default ./gpu_results): results.json, summary.md (paste into benchmarks/RESULTS.md),
# cuda_tests.txt, suite.log.
#
# Python: $PYTHON if set; else .venv/bin/python when it already imports torch and irframe (a
# developer checkout); else python3 itself when it is a virtual environment (a GPU image's, holding
# torch, accelerate, ...), or a virtual environment in $VENV (default /tmp/irframe-gpu-venv) on top of
# python3's packages; the project and its plugins are installed there from this tree as the README's
# install does (editable, [dev]): from the configured package index, or
# with no index from .whl/ when that folder holds wheels (benchmarks/gpu/fetch_wheels.sh fills it
# for a machine that reaches no index).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1
START=$(date +%s)

has_project() { "$1" -c 'import torch, irframe, irframe_restormer, irframe_promptir, irframe_ipt, pydantic, lmdb' 2>/dev/null; }

if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x .venv/bin/python ] && has_project .venv/bin/python; then
    PY=.venv/bin/python
else
    VENV=${VENV:-/tmp/irframe-gpu-venv}
    BASE=${BASE_PYTHON:-python3}
    if "$BASE" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
        # python3 is itself a virtual environment (a GPU image's /opt/torch/.venv): a venv made from it
        # would not see its packages (--system-site-packages means the base interpreter's), so the
        # project is installed into it (the machine is a throw-away one)
        PY=$(command -v "$BASE")
    else
        [ -x "$VENV/bin/python" ] || "$BASE" -m venv --system-site-packages "$VENV"
        PY=$VENV/bin/python
    fi
    if ! has_project "$PY"; then
        echo "installing irframe and its plugins for $PY ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"
        PIP_ARGS=()
        if compgen -G ".whl/*.whl" > /dev/null; then
            PIP_ARGS+=(--no-index --find-links .whl)
        fi
        "$PY" -m pip install -q ${PIP_ARGS[@]+"${PIP_ARGS[@]}"} -e ".[dev]" -e plugins/restormer -e plugins/promptir -e plugins/ipt -e plugins/swinir -e plugins/hat -e plugins/nafnet -e plugins/sr_classics -e plugins/gan_discriminators
    fi
fi
echo "python: $PY; set-up took $(( $(date +%s) - START )) s"
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader || true
fi
set +e
"$PY" benchmarks/gpu/suite.py --out "$OUT" "$@" 2>&1 | tee "$OUT/suite.log"
STATUS=${PIPESTATUS[0]}
echo "run.sh: $(( $(date +%s) - START )) s in all, exit status $STATUS"
exit "$STATUS"
