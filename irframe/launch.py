"""What launched this process, and whether it runs the processes that were asked for.

``accelerate launch --num_processes 2`` without ``--multi_gpu`` (``--cpu``, or no GPU) starts its
*simple* launcher: one process, no ``WORLD_SIZE``, no error. The only traces of the request are
``MASTER_ADDR``/``MASTER_PORT``, which accelerate (1.x) exports only when more than one process or
machine was asked for, and the launcher's own command line (our parent process). A training run
that silently uses one process where two were asked for trains with half the global batch and
half the throughput, so :func:`lost_processes` names the problem and the ``torchrun`` command that
does start the processes (gloo on the CPU).

The same simple launcher pipes the child's stderr and, when it exits with an error, repeats what
it read in its own ``RuntimeError`` traceback: an ``error:`` line on stderr is shown twice. Under
it, :func:`error_stream` is stdout (shown once, above accelerate's traceback).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

__all__ = [
    "ACCELERATE_MARKERS",
    "accelerate_simple_launch",
    "error_stream",
    "lost_processes",
    "parent_command_line",
    "requested_processes",
]

ACCELERATE_MARKERS = ("ACCELERATE_MIXED_PRECISION", "ACCELERATE_DYNAMO_BACKEND")
"""Environment variables ``accelerate launch`` sets in every process it starts (any launcher)."""
_MULTI_PROCESS = (
    "TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE",
)
"""Set by the launchers that do start several processes (torchrun / accelerate's multi-GPU, MPI)."""
_NUM_PROCESSES = re.compile(r"--num[_-]processes(?:=(\d+))?$")


def accelerate_simple_launch(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started by ``accelerate launch``'s simple (one-process) launcher."""
    env = os.environ if env is None else env
    return any(k in env for k in ACCELERATE_MARKERS) and not any(k in env for k in _MULTI_PROCESS)


def parent_command_line(pid: int | None = None) -> list[str]:
    """The command line of the parent process (the launcher), ``[]`` where it cannot be read."""
    try:
        with open(f"/proc/{os.getppid() if pid is None else pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def requested_processes(command_line: Sequence[str]) -> int | None:
    """The ``--num_processes N`` (or ``--num-processes=N``) of an ``accelerate launch`` command line."""
    args = list(command_line)
    for i, arg in enumerate(args):
        match = _NUM_PROCESSES.match(arg)
        if match is None:
            continue
        value = match.group(1) or (args[i + 1] if i + 1 < len(args) else "")
        if value.isdigit():
            return int(value)
    return None


def lost_processes(
    env: Mapping[str, str] | None = None,
    launcher: Sequence[str] | None = None,
    argv: Sequence[str] | None = None,
) -> str | None:
    """Why this launch runs fewer processes than asked for, with the command that runs them all;
    ``None`` when nothing was lost.

    Args:
        env: the environment (default ``os.environ``).
        launcher: the launcher's command line (default: the parent process's).
        argv: this process's command line, for the suggested ``torchrun`` command (default ``sys.argv``).
    """
    env = os.environ if env is None else env
    if not accelerate_simple_launch(env) or "MASTER_PORT" not in env:
        return None
    asked = requested_processes(parent_command_line() if launcher is None else launcher)
    if asked is not None and asked <= 1:
        return None  # one process asked for (several machines of one process each: not a local loss)
    n = str(asked) if asked is not None else "N"
    script = list(sys.argv if argv is None else argv)
    command = shlex.join(["torchrun", "--nproc_per_node", n, *(script or ["..."])])
    return (
        f"accelerate launch started 1 process, not the {n} asked for: without --multi_gpu and a GPU per process "
        f"it runs one process (its CPU launcher). For {n} processes on the CPU (gloo) run: {command}"
    )


def error_stream(env: Mapping[str, str] | None = None) -> TextIO:
    """Where a tool prints its one ``error:`` line: stderr, or stdout under accelerate's simple
    launcher (which repeats the child's stderr in its own traceback)."""
    return sys.stdout if accelerate_simple_launch(env) else sys.stderr
