#!/usr/bin/env bash
# Download, on a machine with the package mirror, the wheels that the GPU machine's Python lacks
# (its image has torch, accelerate, einops, opencv, safetensors, tensorboard, ... but not these),
# into .whl/ (git-ignored), for Python 3.12 on x86-64. benchmarks/gpu/run.sh installs them from
# there with --no-index. Carry .whl to the GPU machine with the working tree.
#   bash benchmarks/gpu/fetch_wheels.sh [PYTHON_VERSION (default 3.12)]
set -euo pipefail
cd "$(dirname "$0")/../.."
PYV=${1:-3.12}
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl
# Versions: what the project's own venv runs (pydantic's core must match pydantic exactly).
ver() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
PKGS=(
  "pydantic==$(ver pydantic)" "pydantic-core==$(ver pydantic_core)" "annotated-types==$(ver annotated_types)"
  "typing-inspection==$(ver typing_inspection)" "typing-extensions==$(ver typing_extensions)"
  "lmdb==$(ver lmdb)" "lpips==$(ver lpips)"
  # the isolated build of the editable installs (pyproject.toml's build-system.requires)
  "setuptools>=68" "wheel" "packaging==$(ver packaging)"
)
"$PY" -m pip download --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${PKGS[@]}"
ls -la .whl
