"""Saving and restoring the whole training state across processes (see :mod:`.checkpoint_folders`).

Every process calls :meth:`Checkpointer.save` / :meth:`Checkpointer.restore` at the same
iteration: RNG states are gathered from all processes, the main process writes, the others wait.
A training step with more than one network (an adversarial step's discriminator) hands the others
in as ``networks``: each is saved as ``<name>.safetensors`` beside the model's, with its own arch
metadata, and restored strictly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from irframe.errors import CheckpointError
from irframe.nn.weights import load_weights, save_weights, unwrap_model
from irframe.train.checkpoint_folders import (
    BEST_DIR,
    EMA_FILE,
    MODEL_FILE,
    STATE_FILE,
    check_finite,
    iter_dirname,
    load_state,
    prune,
    save_state,
    write_best_info,
    write_folder,
)
from irframe.train.ema import ModelEMA
from irframe.utils import get_rng_state, set_rng_state

Networks = Mapping[str, Any]
"""Further networks of a checkpoint: name -> ``(module, build config)`` (``irframe.train.step.CheckpointedNetwork``)."""


class Checkpointer:
    """Writes ``checkpoints/iter_N`` and ``checkpoints/best`` for one experiment.

    Args:
        root: the experiment's ``checkpoints`` folder.
        keep: how many ``iter_*`` checkpoints to keep (the newest).
        model_cfg: the model's build options ``{type, ...}`` (safetensors metadata).
        is_main: whether this process writes.
        gather: collects one object from every process (identity on a single process).
        barrier: waits for every process.
        options: the run's options as plain data, saved in every checkpoint's state (``options``),
            so that a resume can tell which options changed since that checkpoint.
    """

    def __init__(
        self,
        root: Path,
        keep: int,
        model_cfg: Mapping[str, Any],
        *,
        is_main: bool = True,
        gather: Callable[[Any], list[Any]] = lambda obj: [obj],
        barrier: Callable[[], None] = lambda: None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.keep = keep
        self.metadata = {"arch": str(model_cfg["type"]), "config": json.dumps(dict(model_cfg), sort_keys=True)}
        self.is_main = is_main
        self.gather = gather
        self.barrier = barrier
        self.options = dict(options) if options is not None else None

    def _weights(self, model: nn.Module, ema: ModelEMA | None) -> dict[str, dict[str, torch.Tensor]]:
        out = {MODEL_FILE: unwrap_model(model).state_dict()}
        if ema is not None:
            out[EMA_FILE] = ema.model.state_dict()
        for name, state in out.items():
            check_finite(state, f"checkpoint {name}")  # every rank checks: all raise together
        return out

    @staticmethod
    def network_file(name: str) -> str:
        """The file of the further network ``name`` in a checkpoint folder."""
        return f"{name}.safetensors"

    def save(
        self, iteration: int, model: nn.Module, ema: ModelEMA | None, state: dict[str, Any],
        networks: Networks | None = None,
    ) -> Path:
        """Write ``iter_<iteration>`` (weights, EMA, further ``networks``, ``state`` + every
        process's RNG states)."""
        weights = self._weights(model, ema)
        metadata = dict.fromkeys(weights, self.metadata)
        for name, (module, config) in (networks or {}).items():
            file = self.network_file(name)
            weights[file] = unwrap_model(module).state_dict()
            check_finite(weights[file], f"checkpoint {file}")
            metadata[file] = {"arch": str(config["type"]), "config": json.dumps(dict(config), sort_keys=True)}
        rng = self.gather(get_rng_state())
        folder = self.root / iter_dirname(iteration)
        if self.is_main:

            def write(tmp: Path) -> None:
                for name, tensors in weights.items():
                    save_weights(tensors, tmp / name, metadata[name])
                extra = {"options": self.options} if self.options is not None else {}
                save_state(tmp / STATE_FILE, {**state, "rng": rng, **extra})

            write_folder(folder, write)
            prune(self.root, self.keep)
        self.barrier()
        return folder

    def save_best(
        self, iteration: int, model: nn.Module, ema: ModelEMA | None, info: Mapping[str, Any]
    ) -> Path:
        """Write ``best/`` (weights and ``best.json``) for a new best validation score."""
        weights = self._weights(model, ema)
        folder = self.root / BEST_DIR
        if self.is_main:

            def write(tmp: Path) -> None:
                for name, tensors in weights.items():
                    save_weights(tensors, tmp / name, self.metadata)
                write_best_info(tmp, {**info, "iteration": iteration})

            write_folder(folder, write)
        self.barrier()
        return folder

    def restore(
        self,
        folder: Path,
        model: nn.Module,
        ema: ModelEMA | None,
        check: Callable[[dict[str, Any], Path], None] | None = None,
        networks: Networks | None = None,
    ) -> dict[str, Any]:
        """Load weights (and EMA, and the further ``networks``) from ``folder``; return the trainer
        state (RNG not yet applied). ``check(state, folder)`` runs on the state before any weights
        are loaded.

        Raises:
            CheckpointError: also when the checkpoint was saved with EMA but its ``ema.safetensors``
                is missing: the raw weights are never put in the average's place. (A run that turns
                EMA on while resuming a checkpoint saved without it starts the average from the
                resumed weights; the caller says so.)
        """
        state = load_state(folder)
        if check is not None:
            check(state, folder)
        ema_path = folder / EMA_FILE
        if ema is not None and state.get("ema") is not None and not ema_path.is_file():
            raise CheckpointError(
                f"{folder}: {EMA_FILE} is missing although this checkpoint was saved with EMA weights "
                "(the raw weights are not substituted for them)"
            )
        for name in networks or {}:
            if not (folder / self.network_file(name)).is_file():
                raise CheckpointError(
                    f"{folder}: {self.network_file(name)} is missing (the training step has a network {name!r}; "
                    "was this checkpoint written by another train.step?)"
                )
        load_weights(model, folder / MODEL_FILE, strict=True)
        for name, (module, _) in (networks or {}).items():
            load_weights(module, folder / self.network_file(name), strict=True)
        if ema is not None:
            load_weights(ema.model, ema_path if state.get("ema") is not None else folder / MODEL_FILE, strict=True)
            if state.get("ema") is not None:
                ema.load_state_dict(state["ema"])
        return state

    @staticmethod
    def apply_rng(state: Mapping[str, Any], rank: int) -> bool:
        """Restore this process's RNG states; ``False`` if the checkpoint has none for ``rank``."""
        rng = state.get("rng") or []
        if rank < len(rng):
            set_rng_state(rng[rank])
            return True
        return False
