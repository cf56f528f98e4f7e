"""Fine-tuning helpers: keep some tasks of a multi-task IPT, in a model or in a checkpoint.

- :func:`prune_tasks` trims a built model in place (heads, tails, query embeddings).
- :func:`select_tasks_state_dict` does the same on a state_dict, re-indexing the kept tasks from 0.
- :func:`load_multitask_weights` loads a pre-trained multi-task checkpoint (official ``IPT_pretrain``:
  scales ``[2, 3, 4, 1, 1, 1]``, 6 queries) into a model with fewer tasks, matching tasks by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from torch import Tensor

from irframe.errors import CheckpointError

from .detect import detect_ipt
from .ipt_arch import IPT, TaskRef, default_task_names

_TASK_KEY = re.compile(r"^(head|tail)\.(\d+)\.(.*)$")
_QUERY_KEY = "body.query_embed.weight"


def prune_tasks(model: IPT, keep: Sequence[TaskRef]) -> IPT:
    """Keep only the tasks ``keep`` (names or indices) of ``model``, in place; returns the model."""
    if not isinstance(model, IPT):
        raise TypeError(f"prune_tasks: expected an IPT model, got {type(model).__name__}")
    return model.prune_tasks(keep)


def select_tasks_state_dict(state_dict: Mapping[str, Tensor], keep: Sequence[int]) -> dict[str, Tensor]:
    """A copy of an IPT ``state_dict`` holding only the tasks ``keep`` (indices), renumbered ``0..k-1``.

    The query embedding keeps rows ``keep`` when it has one row per task; a single shared row is kept
    as is. Selecting ``[0]`` from the official pre-trained weights gives the ``ipt_sr2`` layout.
    """
    keep = list(keep)
    if not keep or len(set(keep)) != len(keep):
        raise ValueError(f"select_tasks_state_dict: keep must list distinct task indices, got {keep}")
    n_tasks = 1 + max((int(m.group(2)) for k in state_dict if (m := _TASK_KEY.match(k))), default=-1)
    bad = [i for i in keep if not 0 <= i < n_tasks]
    if bad:
        raise ValueError(f"select_tasks_state_dict: task indices {bad} out of range; the checkpoint has {n_tasks}")
    new_index = {old: new for new, old in enumerate(keep)}
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        m = _TASK_KEY.match(key)
        if m:
            old = int(m.group(2))
            if old in new_index:
                out[f"{m.group(1)}.{new_index[old]}.{m.group(3)}"] = value
        elif key == _QUERY_KEY and value.shape[0] > 1:
            if value.shape[0] <= max(keep):
                raise CheckpointError(
                    f"select_tasks_state_dict: {_QUERY_KEY} has {value.shape[0]} rows, cannot select {keep}"
                )
            out[key] = value[keep].clone()
        else:
            out[key] = value
    # Keep the official order: sorted by where each key's group (head/tail/other key) first appears,
    # then by new task index; the sort is stable, so a task's own keys keep their order.
    first: dict[str, int] = {}
    for i, key in enumerate(state_dict):
        m = _TASK_KEY.match(key)
        first.setdefault(m.group(1) if m else key, i)

    def order(key: str) -> tuple[int, int]:
        m = _TASK_KEY.match(key)
        return (first[m.group(1)], int(m.group(2))) if m else (first[key], 0)

    return dict(sorted(out.items(), key=lambda kv: order(kv[0])))


def load_multitask_weights(
    model: IPT,
    state_dict: Mapping[str, Tensor],
    source_tasks: Sequence[TaskRef] | None = None,
    source_names: Sequence[str] | None = None,
    strict: bool = True,
) -> IPT:
    """Load a multi-task IPT ``state_dict`` into ``model`` whose tasks are a subset of it.

    Args:
        model: the target (e.g. a one-task ``IPT(scale=[3])``).
        state_dict: unwrapped weights of the source (e.g. the official 6-task pre-trained model).
        source_tasks: for each task of ``model``, the source task (index or name) to take. Default:
            the source task with the same name.
        source_names: names of the source tasks (default: derived from the source's scales with
            :func:`~irframe_ipt.ipt_arch.default_task_names`, i.e. sr_x2, sr_x3, sr_x4, denoise30,
            denoise50, derain for the official pre-trained weights).
        strict: passed to ``load_state_dict``.

    Returns:
        ``model``.
    """
    cfg = detect_ipt(state_dict)
    if cfg is None:
        raise CheckpointError("load_multitask_weights: the state_dict is not an IPT checkpoint")
    names = list(source_names) if source_names is not None else default_task_names(cfg["scale"])
    if len(names) != len(cfg["scale"]):
        raise ValueError(f"load_multitask_weights: {len(names)} source_names for {len(cfg['scale'])} source tasks")
    wanted: Sequence[TaskRef] = model.tasks if source_tasks is None else source_tasks
    if len(wanted) != len(model.tasks):
        raise ValueError(
            f"load_multitask_weights: {len(wanted)} source_tasks for the model's {len(model.tasks)} tasks"
        )
    indices = [_source_index(ref, names) for ref in wanted]
    for target, scale, src in zip(model.tasks, model.scale, indices):
        if cfg["scale"][src] != scale:
            raise ValueError(
                f"load_multitask_weights: task {target!r} (x{scale}) cannot take source task "
                f"{names[src]!r} (x{cfg['scale'][src]})"
            )
    selected = select_tasks_state_dict(state_dict, indices)
    query = selected.get(_QUERY_KEY)
    if query is not None and query.shape[0] > 1 and model.body.num_queries == 1:
        raise ValueError(
            f"load_multitask_weights: the model has one (shared) query but {len(indices)} tasks were selected "
            f"from a checkpoint with one query per task; build the model with num_queries={len(indices)}"
        )
    model.load_state_dict(selected, strict=strict)
    return model


def _source_index(ref: TaskRef, names: list[str]) -> int:
    if isinstance(ref, int) and not isinstance(ref, bool):
        if not 0 <= ref < len(names):
            raise ValueError(f"load_multitask_weights: source task {ref} out of range 0..{len(names) - 1}")
        return ref
    if ref not in names:
        raise ValueError(
            f"load_multitask_weights: no source task named {ref!r}; source tasks are {names} "
            "(pass source_tasks or source_names)"
        )
    return names.index(ref)

