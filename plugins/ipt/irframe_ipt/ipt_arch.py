"""IPT: Pre-Trained Image Processing Transformer (Chen et al., CVPR 2021), registered as arch ``IPT``.

Structure (official names, huawei-noah/Pretrained-IPT ``model/ipt.py``)::

    sub_mean -> head[t] -> body (VisionTransformer, query t) + skip -> tail[t] -> add_mean

``t`` is the task index: one head, one decoder query embedding and one tail per entry of ``scale``.

Value range: the engine feeds ``[0, 1]``; the official model computes in ``[0, rgb_range]`` (255).
``forward`` multiplies by ``rgb_range`` on the way in and divides on the way out, so official weights
load unchanged. Outputs are not clamped.

Input size: the transformer only takes ``patch_size x patch_size`` inputs (48). ``forward`` runs it
directly on such inputs; in eval mode any other size goes through :meth:`IPT.forward_chop`
(overlapping crops stitched exactly as the official ``forward_chop``, see :mod:`irframe_ipt.chop`);
in training mode another size is an error (train on ``patch_size`` crops: LQ crops of 48, GT crops of
``48 * scale``). ``spec.fixed_size`` is 48, so the shared inference helper may also tile by itself.

Task names (``tasks``): by default derived from ``scale``: ``sr_x<s>`` for ``s > 1`` and, for the
``scale == 1`` entries in order, ``denoise30``, ``denoise50``, ``derain`` (the official pre-training
order ``[2, 3, 4, 1, 1, 1]``), then ``restore<i>``. A single-task scale-1 model is therefore called
``denoise30`` unless ``tasks`` says otherwise (e.g. ``tasks: [derain]`` for the deraining weights).
Tasks are also accepted as users type them (``sr2``, ``x2``, ``dn30``, ``rain``: :mod:`irframe_ipt.tasks`).
A single-task model (e.g. an official ``IPT_derain.pt``, whose weights cannot tell deraining from
denoising) asked for another task of its scale takes that name (:meth:`IPT.set_task`); a task of
another scale is refused, naming the tasks the model has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS

from .blocks import MeanShift, check_scale, make_head, make_tail
from .chop import ChopMode, chop_forward
from .tasks import normalize_task, task_scale
from .transformer import VisionTransformer

TaskRef = str | int
_RESTORE_NAMES = ("denoise30", "denoise50", "derain")


def default_task_names(scales: Sequence[int]) -> list[str]:
    """Task names for ``scales`` (see the module docstring); duplicates get ``_1``, ``_2`` suffixes."""
    names: list[str] = []
    restore = iter(_RESTORE_NAMES)
    for i, s in enumerate(scales):
        base = f"sr_x{s}" if s > 1 else next(restore, f"restore{i}")
        name, k = base, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


@ARCHS.register()
class IPT(nn.Module):
    """Image Processing Transformer with per-task heads/tails and a shared transformer body.

    Args mirror the official ``option.py`` names:
        n_feats: feature channels of heads/tails (64).
        patch_size: input size the transformer takes (48).
        patch_dim: side of the feature patches that become tokens (3); tokens are ``n_feats*patch_dim**2``.
        num_heads: attention heads (12).
        num_layers: encoder layers and decoder layers (12 each).
        num_queries: decoder query embeddings; 1 (shared by every task) or at least ``len(scale)``
            (query ``t`` for task ``t``). The official pre-trained model uses 6.
        scale: one upscaling factor per task (1 for denoising/deraining). Official pre-training:
            ``[2, 3, 4, 1, 1, 1]``.
        rgb_range: range the model computes in (255); ``spec.value_range``.
        n_colors: image channels (3: the official mean shift is RGB).
        dropout_rate: dropout in the transformer.
        no_norm, no_mlp, pos_every, no_pos: official transformer ablation switches.
        freeze_norm: LayerNorm parameters get ``requires_grad=False`` (official option, unused by the
            official model code).
        post_norm: post-norm transformer layers (official option, unused by the official model code,
            which is pre-norm; same state_dict either way).
        con_loss: in training mode ``forward`` also returns the body's patch features
            ``(out, feats)`` for :class:`~irframe_ipt.losses.IPTContrastiveLoss`.
        tasks: a name per ``scale`` entry (default: :func:`default_task_names`).
    """

    def __init__(
        self,
        n_feats: int = 64,
        patch_size: int = 48,
        patch_dim: int = 3,
        num_heads: int = 12,
        num_layers: int = 12,
        num_queries: int = 1,
        scale: Sequence[int] = (2,),
        rgb_range: float = 255,
        n_colors: int = 3,
        dropout_rate: float = 0.0,
        no_norm: bool = False,
        freeze_norm: bool = False,
        post_norm: bool = False,
        no_mlp: bool = False,
        pos_every: bool = False,
        no_pos: bool = False,
        con_loss: bool = False,
        tasks: list[str] | None = None,
    ) -> None:
        super().__init__()
        scales = [int(s) for s in scale]
        names = _check_options(
            n_feats, patch_size, patch_dim, num_heads, num_layers, num_queries, scales, n_colors,
            dropout_rate, tasks,
        )
        self._config: dict[str, Any] = {
            "n_feats": n_feats, "patch_size": patch_size, "patch_dim": patch_dim, "num_heads": num_heads,
            "num_layers": num_layers, "num_queries": num_queries, "scale": scales, "rgb_range": rgb_range,
            "n_colors": n_colors, "dropout_rate": dropout_rate, "no_norm": no_norm,
            "freeze_norm": freeze_norm, "post_norm": post_norm, "no_mlp": no_mlp, "pos_every": pos_every,
            "no_pos": no_pos, "con_loss": con_loss, "tasks": list(names),
        }
        self.patch_size = patch_size
        self.rgb_range = rgb_range
        self.n_colors = n_colors
        self.con_loss = con_loss
        self.scale = scales
        self.tasks = names
        self.task_idx = 0

        self.sub_mean = MeanShift(rgb_range, sign=-1)
        self.add_mean = MeanShift(rgb_range, sign=1)
        self.head = nn.ModuleList(make_head(n_colors, n_feats) for _ in scales)
        dim = n_feats * patch_dim * patch_dim
        self.body = VisionTransformer(
            img_dim=patch_size, patch_dim=patch_dim, num_channels=n_feats, embedding_dim=dim,
            num_heads=num_heads, num_layers=num_layers, hidden_dim=4 * dim, num_queries=num_queries,
            dropout_rate=dropout_rate, no_norm=no_norm, no_mlp=no_mlp, pos_every=pos_every,
            no_pos=no_pos, post_norm=post_norm,
        )
        self.tail = nn.ModuleList(make_tail(s, n_feats, n_colors) for s in scales)
        if freeze_norm:
            for m in self.body.modules():
                if isinstance(m, nn.LayerNorm):
                    m.requires_grad_(False)

    # -- what the engine reads ----------------------------------------------------------------
    @property
    def spec(self) -> ModelSpec:
        """Spec of the current task (``scale`` follows :meth:`set_task`)."""
        return ModelSpec(
            in_channels=self.n_colors,
            out_channels=self.n_colors,
            scale=self.scale[self.task_idx],
            size_multiple=1,
            value_range=float(self.rgb_range),
            tasks=tuple(self.tasks),
            fixed_size=self.patch_size,
            tileable=True,
            # Official chop: crops every patch_size/4 pixels, i.e. an overlap of 3/4 of a crop.
            tile_overlap=self.patch_size - self.patch_size // 4,
        )

    @property
    def config(self) -> dict[str, Any]:
        """The build config (``{"type": "IPT", **kwargs}``) of this model, updated by :meth:`prune_tasks`."""
        return {"type": "IPT", **{k: list(v) if isinstance(v, list) else v for k, v in self._config.items()}}

    # -- tasks -----------------------------------------------------------------------------------
    def resolve_task(self, task: TaskRef) -> TaskRef:
        """This model's name for ``task`` (an index is checked and returned as is).

        A name is taken as it is when it is one of ``tasks``, else in its canonical spelling
        (:func:`~irframe_ipt.tasks.normalize_task`: ``sr2`` -> ``sr_x2``). A single-task model also
        accepts any canonical task of its own scale (``derain`` for a ``denoise30``-named scale-1
        model): the weights alone cannot tell those apart, so the user's name is the right one.

        Raises:
            ValueError: not a task of this model; the message lists the tasks it has.
        """
        if isinstance(task, bool) or not isinstance(task, (int, str)):
            raise ValueError(f"IPT: a task is a name or an index, got {task!r}")
        if isinstance(task, int):
            if not 0 <= task < len(self.tasks):
                raise ValueError(f"IPT: task index {task} out of range; tasks are {self.tasks}")
            return task
        if task in self.tasks:
            return task
        name = normalize_task(task)
        if name in self.tasks:
            return name
        if len(self.tasks) == 1 and task_scale(name) == self.scale[0]:
            return name
        meant = f" ({name})" if name != task else ""
        scales = f" (scale {self.scale[0]})" if len(self.tasks) == 1 else ""
        raise ValueError(f"IPT: unknown task {task!r}{meant}; tasks are {self.tasks}{scales}")

    def task_index(self, task: TaskRef) -> int:
        """Index of ``task`` (a name or spelling :meth:`resolve_task` accepts, or an index)."""
        name = self.resolve_task(task)
        if isinstance(name, int):
            return name
        return self.tasks.index(name) if name in self.tasks else 0  # 0: a single-task model's other name

    def set_task(self, task: TaskRef) -> None:
        """Select the task used when ``forward`` gets ``task=None`` (and the task ``spec`` describes).

        A single-task model asked for another task of its scale is renamed to it (``tasks`` and
        the build config), so that outputs and results carry the name the user asked for.
        """
        name = self.resolve_task(task)
        if isinstance(name, str) and name not in self.tasks:
            self.tasks = [name]
            self._config["tasks"] = [name]
        self.task_idx = self.task_index(name)

    def set_scale(self, scale_idx: int) -> None:
        """Official name of :meth:`set_task` (takes the task index)."""
        self.set_task(scale_idx)

    def _query_index(self, task_idx: int) -> int:
        return 0 if self.body.num_queries == 1 else task_idx

    def _per_sample_tasks(self, task: TaskRef | Sequence[TaskRef] | Tensor | None, n: int) -> list[int]:
        if task is None:
            return [self.task_idx] * n
        if isinstance(task, Tensor):  # e.g. collated integer task ids
            task = task.tolist()
        if isinstance(task, (str, int)):
            return [self.task_index(task)] * n
        refs = list(task)
        if len(refs) != n:
            raise ValueError(f"IPT: got {len(refs)} tasks for a batch of {n}")
        return [self.task_index(t) for t in refs]

    def _by_task(self, x: Tensor, tasks: list[int], fn: Callable[[Tensor, int], Any]) -> Any:
        """``fn(x, task)``; for a batch mixing tasks, per group of samples, reassembled in batch order."""
        groups = sorted(set(tasks))
        if len(groups) == 1:
            return fn(x, groups[0])
        if len({self.scale[t] for t in groups}) > 1:
            names = sorted({self.tasks[t] for t in groups})
            raise ValueError(f"IPT: one batch cannot mix tasks of different scales: {names}")
        index = torch.tensor(tasks, device=x.device)
        sels = [(index == t).nonzero().squeeze(1) for t in groups]
        parts = [fn(x[sel], t) for sel, t in zip(sels, groups)]
        if isinstance(parts[0], tuple):
            return tuple(_scatter([p[k] for p in parts], sels, len(tasks)) for k in range(len(parts[0])))
        return _scatter(parts, sels, len(tasks))

    # -- forward ---------------------------------------------------------------------------------
    def forward_patch(self, x: Tensor, task: int, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The official computation: ``x`` in ``[0, rgb_range]``, exactly ``patch_size``, task index ``task``.

        On the CPU the head and tail convolutions run on channels-last memory (oneDNN's 3x3 and 5x5
        convolutions took 0.6-0.7x of their NCHW time here, benchmarks/RESULTS.md); the transformer
        body reads its patches from either layout.
        """
        cpu = x.device.type == "cpu"
        if cpu:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.head[task](self.sub_mean(x))
        body = self.body(x, self._query_index(task), return_features=return_features)
        res, feats = body if return_features else (body, None)
        res = res + x
        if cpu:
            res = res.contiguous(memory_format=torch.channels_last)
        out = self.add_mean(self.tail[task](res))
        return (out, feats) if return_features else out  # type: ignore[return-value]  # feats is set when asked for

    def forward(
        self,
        x: Tensor,
        task: TaskRef | Sequence[TaskRef] | Tensor | None = None,
        return_features: bool | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Restore ``x`` (NCHW in ``[0, 1]``) for ``task``.

        Args:
            x: input batch in ``[0, 1]``.
            task: a task name or index for the whole batch, one per sample (a batch mixing tasks of the
                same scale is run task by task), or ``None`` for the current task (:meth:`set_task`).
            return_features: also return the body's patch features ``(N, L, n_feats*patch_dim**2)``
                (``L = (patch_size/patch_dim)**2``); ``None`` means ``self.training and con_loss``.

        Returns:
            The output in ``[0, 1]`` space (not clamped), or ``(output, features)``.
        """
        if x.ndim != 4 or x.shape[1] != self.n_colors:
            raise ValueError(f"IPT: expected input (N, {self.n_colors}, H, W), got {tuple(x.shape)}")
        if return_features is None:
            return_features = self.training and self.con_loss
        tasks = self._per_sample_tasks(task, x.shape[0])
        if tuple(x.shape[-2:]) != (self.patch_size, self.patch_size):
            if self.training or return_features:
                raise ValueError(
                    f"IPT: training and feature extraction need {self.patch_size}x{self.patch_size} inputs "
                    f"(patch_size), got {tuple(x.shape[-2:])}; crop LQ patches of {self.patch_size}"
                )
            return self.forward_chop(x, tasks)
        result = self._by_task(x * self.rgb_range, tasks, lambda xs, t: self.forward_patch(xs, t, return_features))
        if return_features:
            return result[0] / self.rgb_range, result[1]
        return result / self.rgb_range

    def forward_chop(
        self,
        x: Tensor,
        task: TaskRef | Sequence[TaskRef] | Tensor | None = None,
        shave: int | None = None,
        batch: int = 64,
        step: int | None = None,
        mode: ChopMode = "official",
    ) -> Tensor:
        """Inference on any size by overlapping ``patch_size`` crops (official ``forward_chop``).

        Args:
            x: NCHW in ``[0, 1]``.
            task: as in :meth:`forward`.
            shave: input pixels dropped from the inner sides of every crop (default
                ``patch_size // 4``: 12, as officially).
            batch: crops per transformer call (official ``crop_batch_size`` 64).
            step: distance between crops (default ``patch_size // 4``: 12, as officially).
            mode: ``"official"`` stitches exactly as the official code; ``"mean"`` averages every crop
                that keeps a pixel (see :mod:`irframe_ipt.chop`).
        """
        tasks = self._per_sample_tasks(task, x.shape[0])
        shave = self.patch_size // 4 if shave is None else shave
        step = self.patch_size // 4 if step is None else step

        def chop(xs: Tensor, t: int) -> Tensor:
            return chop_forward(
                lambda crops: self.forward_patch(crops, t),  # type: ignore[arg-type, return-value]
                xs, patch=self.patch_size, scale=self.scale[t], shave=shave, step=step, batch=batch, mode=mode,
            )

        return self._by_task(x * self.rgb_range, tasks, chop) / self.rgb_range

    # -- fine-tuning -----------------------------------------------------------------------------
    def prune_tasks(self, keep: Sequence[TaskRef]) -> IPT:
        """Keep only the heads, tails and query embeddings of ``keep`` (in that order), in place.

        A pre-trained multi-task model pruned to one task has the state_dict names and shapes of the
        official single-task checkpoints (e.g. ``keep=["sr_x2"]`` gives ``ipt_sr2``'s layout).
        Returns ``self``.
        """
        idx = [self.task_index(k) for k in keep]
        if not idx or len(set(idx)) != len(idx):
            raise ValueError(f"IPT.prune_tasks: keep must name distinct tasks, got {list(keep)}")
        current = self.task_idx
        self.head = nn.ModuleList(self.head[i] for i in idx)
        self.tail = nn.ModuleList(self.tail[i] for i in idx)
        if self.body.num_queries > 1:
            old = self.body.query_embed
            new = nn.Embedding(len(idx), old.embedding_dim, device=old.weight.device, dtype=old.weight.dtype)
            with torch.no_grad():
                new.weight.copy_(old.weight[idx])
            new.weight.requires_grad_(old.weight.requires_grad)
            self.body.query_embed = new
            self._config["num_queries"] = len(idx)
        self.scale = [self.scale[i] for i in idx]
        self.tasks = [self.tasks[i] for i in idx]
        self.task_idx = idx.index(current) if current in idx else 0
        self._config.update(scale=list(self.scale), tasks=list(self.tasks))
        return self


def _scatter(parts: list[Tensor], sels: list[Tensor], n: int) -> Tensor:
    """Batch of ``n`` whose rows ``sels[k]`` are ``parts[k]``."""
    out = parts[0].new_empty((n, *parts[0].shape[1:]))
    for sel, part in zip(sels, parts):
        out[sel] = part
    return out


def _check_options(
    n_feats: int,
    patch_size: int,
    patch_dim: int,
    num_heads: int,
    num_layers: int,
    num_queries: int,
    scales: list[int],
    n_colors: int,
    dropout_rate: float,
    tasks: list[str] | None,
) -> list[str]:
    """Validate the constructor options; return the task names."""
    for key, value in (("n_feats", n_feats), ("patch_size", patch_size), ("patch_dim", patch_dim),
                       ("num_heads", num_heads), ("num_layers", num_layers), ("num_queries", num_queries)):
        if value < 1:
            raise OptionsError(f"IPT.{key}: must be >= 1, got {value}")
    if patch_size % patch_dim:
        raise OptionsError(f"IPT.patch_size: {patch_size} is not a multiple of patch_dim {patch_dim}")
    dim = n_feats * patch_dim * patch_dim
    if dim % num_heads:
        raise OptionsError(
            f"IPT.num_heads: {num_heads} does not divide the token width n_feats*patch_dim**2 = {dim}"
        )
    if not scales:
        raise OptionsError("IPT.scale: needs at least one entry (one per task)")
    for s in scales:
        check_scale(s)
    if 1 < num_queries < len(scales):
        raise OptionsError(
            f"IPT.num_queries: {num_queries} queries for {len(scales)} tasks; use 1 (shared) or >= {len(scales)}"
        )
    if n_colors != 3:
        raise OptionsError(f"IPT.n_colors: {n_colors} is not supported (the official mean shift is RGB: use 3)")
    if not 0.0 <= dropout_rate < 1.0:
        raise OptionsError(f"IPT.dropout_rate: must be in [0, 1), got {dropout_rate}")
    if tasks is None:
        return default_task_names(scales)
    if len(tasks) != len(scales):
        raise OptionsError(f"IPT.tasks: {len(tasks)} names {tasks} for {len(scales)} scales {scales}")
    if len(set(tasks)) != len(tasks):
        raise OptionsError(f"IPT.tasks: names must be distinct, got {tasks}")
    return list(tasks)
