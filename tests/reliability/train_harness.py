"""Run ``tools/train.py`` in this process with a tiny arch registered and an optional fault hook.

Used as a subprocess by the reliability tests (never imported by them). The fault is chosen by the
environment variable ``IRFRAME_RELIABILITY_FAULT``; each fault kills this process with SIGKILL (no
cleanup, no ``finally``) at one precise moment of a checkpoint save, so the tests can prove that
such a crash never leaves a checkpoint that ``--resume auto`` would pick half-written:

* ``save_state:N``  during the save of ``iter_N``: the weights are in the temporary folder, the
  trainer state is not written yet;
* ``best_swap``     while re-saving ``best/``: between the two renames (old folder moved away, new
  one not yet in place);
* ``prune``         while deleting an old ``iter_*`` checkpoint, after its first file is gone.

A user's fault:

* ``sigint_in_validation:N``  Ctrl-C (SIGINT to this process) while validating at iteration ``N``,
  after the first validation image was restored.

Multi-process faults (``torchrun``), at the start of the save of ``iter_N`` on the process of rank 1:

* ``stall_rank1:N``  SIGSTOP (a hung peer; it prints ``stalling pid P`` first);
* ``die_rank1:N``    SIGKILL, in the first attempt only (``TORCHELASTIC_RESTART_COUNT`` 0).

Everything else is the real script: ``runpy`` runs ``tools/train.py`` as ``__main__``.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
FAULT_ENV = "IRFRAME_RELIABILITY_FAULT"


class RelNet(nn.Module):
    """Two 3x3 convolutions with a residual: tiny, deterministic on the CPU, and it learns.

    ``nan_after``: training forwards after the first ``nan_after`` of this process return NaN (a
    diverging model, for the NaN-handling tests).
    """

    def __init__(self, width: int = 8, nan_after: int | None = None) -> None:
        super().__init__()
        self.nan_after = nan_after
        self.train_calls = 0
        from irframe.nn.spec import ModelSpec

        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))
        with torch.no_grad():
            self.body[2].weight.mul_(0.01)  # starts near the identity: outputs stay in [0, 1]
        self.spec = ModelSpec(in_channels=3, out_channels=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.body(x)
        if self.training:
            self.train_calls += 1
            if self.nan_after is not None and self.train_calls > self.nan_after:
                y = y * float("nan")
        return y


def die() -> None:
    """SIGKILL this process: what a crash, the OOM killer or a pre-empted node does."""
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install_fault(fault: str) -> None:
    """Patch the checkpoint code so that ``fault`` (see the module doc) kills the process."""
    from irframe.train import training_state as checkpointer

    if fault.startswith("save_state:"):
        target = int(fault.split(":", 1)[1])
        real_save_state = checkpointer.save_state

        def save_state(path: Path, state: dict[str, Any]) -> None:
            if state.get("iteration") == target:
                die()
            real_save_state(path, state)

        checkpointer.save_state = save_state
    elif fault == "best_swap":
        real_replace = os.replace

        def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            src_name = Path(src).name
            if src_name.startswith(".tmp_best") and not Path(dst).exists():
                olds = list(Path(dst).parent.glob(".old_best_*"))
                if olds:  # the previous best/ has just been moved away
                    die()
            real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif fault == "prune":
        real_rmtree = shutil.rmtree

        def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
            folder = Path(path)
            files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
            if re.match(r"(\.old_)?iter_\d+", folder.name) and files:
                files[0].unlink()  # the deletion has started ...
                die()  # ... and is cut short
            real_rmtree(path, *args, **kwargs)

        shutil.rmtree = rmtree
    elif fault.startswith("sigint_in_validation:"):
        from irframe.train import validation

        target = int(fault.split(":", 1)[1])
        real_run = validation.Validator.run
        # Ctrl-C in a terminal raises KeyboardInterrupt; a process started in the background by a
        # non-interactive shell inherits SIGINT ignored, so put Python's own handler back
        signal.signal(signal.SIGINT, signal.default_int_handler)

        def run(self: Any, model: Any, iteration: int, **kwargs: Any) -> Any:
            if iteration == target:
                real_restore = self.restore

                def restore(*args: Any) -> Any:
                    out = real_restore(*args)
                    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends
                    return out

                self.restore = restore
            return real_run(self, model, iteration, **kwargs)

        validation.Validator.run = run
    elif fault.startswith(("stall_rank1:", "die_rank1:")):
        kind, target = fault.split(":", 1)
        real_save = checkpointer.Checkpointer.save

        def save(self: Any, iteration: int, *args: Any, **kwargs: Any) -> Path:
            if iteration == int(target) and os.environ.get("RANK") == "1":
                if kind == "stall_rank1":
                    print(f"stalling pid {os.getpid()}", flush=True)
                    os.kill(os.getpid(), signal.SIGSTOP)
                elif os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
                    die()
            return real_save(self, iteration, *args, **kwargs)

        checkpointer.Checkpointer.save = save
    elif fault:
        raise SystemExit(f"{FAULT_ENV}: unknown fault {fault!r}")


def main() -> None:
    from irframe.registry import ARCHS

    if "RelNet" not in ARCHS:
        ARCHS.register("RelNet", RelNet)
    install_fault(os.environ.get(FAULT_ENV, ""))
    sys.argv = [str(ROOT / "tools" / "train.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
