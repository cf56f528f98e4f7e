#!/usr/bin/env bash
# Run every benchmark with the settings used for benchmarks/RESULTS.md, machine facts first.
#   bash benchmarks/run_all.sh [extra bench_inference.py arguments, e.g. --threads 1]
# PYTHON overrides the interpreter (default .venv/bin/python). Takes ~10-15 minutes on 2 idle cores (the tile
# sweep of bench_autotile.py alone ~10: six tilings of a 2048x2048 image, twice; far longer under load).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "nproc: $(nproc --all); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
"$PY" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); other pytest processes: $(ps aux | grep -c '[p]ytest' || true)"

run() {
    echo
    echo "\$ python $*"
    "$PY" "$@"
}
run benchmarks/bench_overhead.py
run benchmarks/bench_inference.py --paper "$@"
run benchmarks/bench_data.py
run benchmarks/bench_degradation.py
run benchmarks/bench_fast.py --no-compile
# Against the released code: give your checkouts (https://github.com/swz30/Restormer,
# https://github.com/va1shn9v/PromptIR, https://github.com/huawei-noah/Pretrained-IPT) as
# RESTORMER_REPO / PROMPTIR_REPO / IPT_REPO; each comparison is skipped with a note without its checkout.
released=()
[ -n "${RESTORMER_REPO:-}" ] && released+=(--official-repo "$RESTORMER_REPO")
[ -n "${PROMPTIR_REPO:-}" ] && released+=(--promptir-repo "$PROMPTIR_REPO")
if [ ${#released[@]} -gt 0 ] || [ -n "${IPT_REPO:-}" ]; then
    ipt=()
    [ -n "${IPT_REPO:-}" ] && ipt=(--ipt-repo "$IPT_REPO")
    run benchmarks/bench_fast.py --no-compile --models restormer,promptir,ipt "${released[@]}" "${ipt[@]}"
    # as each code is run (a process each, each with its own tools' allocator setting), then with the same
    # allocator for both (the computations alone): RESULTS.md, "Which process, which allocator"
    for heap in --isolated "--heap keep"; do
        # shellcheck disable=SC2086
        run benchmarks/bench_fast.py --no-compile --no-onnx --paper --models restormer,promptir,ipt \
            "${released[@]}" "${ipt[@]}" --sizes 128,256 --rounds 5 --faults $heap
    done
fi
if [ ${#released[@]} -gt 0 ]; then
    # as each tool runs (irframe keeps freed memory, the released step glibc's default), then the same allocator
    run benchmarks/bench_train_step.py "${released[@]}" --isolated
    run benchmarks/bench_train_step.py "${released[@]}" --isolated --heap keep
fi
if [ -n "${RESTORMER_REPO:-}" ]; then
    run benchmarks/bench_memory.py --official-repo "$RESTORMER_REPO"
    run benchmarks/bench_memory.py --official-repo "$RESTORMER_REPO" --keep-heap
fi
run benchmarks/bench_compile_cache.py
run benchmarks/bench_tiling.py
run benchmarks/bench_metrics.py
if [ -f benchmarks/bench_autotile.py ]; then
    run benchmarks/bench_autotile.py
    run benchmarks/bench_autotile.py --tiles 256,384,512,768,1024,whole --size 2048 --rounds 2 --threads 1 --dim 16
fi
echo; echo "\$ python benchmarks/bench_threads.py   (OMP_NUM_THREADS unset; adds busy-loop processes for its loaded half)"
env -u OMP_NUM_THREADS "$PY" benchmarks/bench_threads.py
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); other pytest processes: $(ps aux | grep -c '[p]ytest' || true)"
