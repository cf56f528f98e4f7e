"""A training step: the swappable piece of the trainer's loop (``train.step``).

The :class:`~irframe.train.trainer.Trainer` owns the loop (fetch micro-batches, count iterations,
report, validate, checkpoint); what one optimizer step does, and the networks, losses, optimizers
and schedules it takes, belong to a :class:`TrainStep` registered in
:data:`irframe.registry.TRAIN_STEPS` and chosen by ``train.step: {type: Name, ...}`` (default:
:class:`SupervisedStep`). A plugin adds its own (a distillation or diffusion objective) with
``@TRAIN_STEPS.register()`` in a module its ``register()`` entry point imports.

The interface, in the order the engine uses it:

1. ``Step(context=StepContext(...), **options)``: build the step's own parts from the options
   (second networks, losses, optimizers, schedules) and check them: every refusal is one
   :class:`~irframe.errors.OptionsError` line, raised before the experiment folder is made;
2. :meth:`TrainStep.load_state_dict` when resuming (after the checkpointer restored the weights of
   ``model``, the EMA and :meth:`TrainStep.networks`), and :meth:`TrainStep.apply_resume_changes`;
3. :meth:`TrainStep.prepare`: hand networks and optimizers to accelerate (DDP, mixed precision);
4. :meth:`TrainStep.step` once per iteration on the iteration's micro-batches (already on the
   device), returning a :class:`StepOutput`; a step first passes them through
   :meth:`TrainStep.synthesize` (batches that still have to be degraded on the device, Real-ESRGAN's
   way, and the pair pool of ``queue_size``);
5. :meth:`TrainStep.state_dict` (optimizers, schedules, counters) and :meth:`TrainStep.networks`
   (weights saved beside ``model.safetensors``) at every checkpoint.

``model`` is the network the run delivers (validated, saved as ``model.safetensors``, averaged by
the EMA); ``log_names`` are the parts every report shows.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from irframe.data.degradations.realesrgan_batch import PairPool, has_draws, synthesize
from irframe.errors import OptionsError
from irframe.nn.spec import get_spec
from irframe.nn.weights import unwrap_model
from irframe.options import TrainOptions
from irframe.registry import TRAIN_STEPS
from irframe.train.ema import ModelEMA
from irframe.train.loss import WeightedLoss
from irframe.train.optim import build_optimizer, build_scheduler
from irframe.train.resume import apply_changes, rebuild_scheduler

Target = Literal["gt", "gt_usm"]
"""The batch entry a loss compares with: ``gt``, or ``gt_usm`` (Real-ESRGAN's USM-sharpened GT)."""

SUPERVISED = "SupervisedStep"


@dataclass
class StepContext:
    """What the engine hands a step besides its options.

    Attributes:
        model: the network the run trains and delivers (built and seeded, not yet prepared).
        train: the ``train`` options (losses, optimizer, schedule, clipping, accumulation...).
        ema: the moving average of ``model`` (``train.ema_decay`` > 0), updated by the step.
        patch_sizes: the GT patch sides the networks see (``datasets.train.gt_size``, progressive
            ``patch_sizes``); ``None`` among them: whole images.
        source: the option file (messages).
        degrade_on_device: whether the training set leaves its degradation to the step
            (``RealESRGANDataset`` with ``degrade_on: device``); ``None``: not known (no check).
        batch_sizes: the training batch sizes per process (``datasets.train.batch_size``,
            progressive ``batch_sizes``); empty: not known.
    """

    model: nn.Module
    train: TrainOptions
    ema: ModelEMA | None = None
    patch_sizes: Sequence[int | None] = ()
    source: str = "<options>"
    degrade_on_device: bool | None = None
    batch_sizes: Sequence[int] = ()


@dataclass
class StepOutput:
    """What one optimizer step produced, as device tensors (read them only when reporting).

    ``loss`` is the headline value reported as ``loss`` (``None`` in a step that computed none,
    e.g. an adversarial step that only updated its discriminator); ``parts`` holds the step's
    ``log_names`` it computed this time. ``note``: a warning line for the log (a skipped step).
    """

    loss: torch.Tensor | None
    parts: dict[str, torch.Tensor]
    lr: float
    skipped: bool = False
    note: str | None = None


class CheckpointedNetwork(NamedTuple):
    """A network saved in every checkpoint as ``<name>.safetensors`` (beside the model's)."""

    module: nn.Module
    config: Mapping[str, Any]  # its build options {type, ...}: the file's metadata


@dataclass
class _Optimized:
    """One network's optimizer and schedule (what a resume restores and changes)."""

    optimizer: Any
    scheduler: Any
    state_key: str  # "optimizer" -> state["optimizer"], state["scheduler"]; "_d" suffix for others


class TrainStep:
    """The interface of a training step, and what every step shares (see the module doc).

    A subclass builds its parts in ``__init__(self, context, **options)``, lists its optimizers
    in :attr:`optimized` (the first is ``model``'s: its rate is the one reported), and implements
    :meth:`step`; it overrides :meth:`prepare`, :meth:`networks` and :attr:`log_names` when it has
    more than one network.
    """

    log_names: list[str]
    has_unused_parameters: bool = False  # DDP must allow parameters without gradient in a step

    def __init__(self, context: StepContext) -> None:
        self.model = context.model
        self.ema = context.ema
        self.train = context.train
        self.source = context.source
        self.patch_sizes = list(context.patch_sizes)
        self.accelerator: Any = None
        self.notes: list[str] = []  # lines for the log once training starts (what was loaded, ...)
        self.optimized: list[_Optimized] = []
        self.degrade_on_device = context.degrade_on_device
        self.batch_sizes = list(context.batch_sizes)
        self.pairs: PairPool | None = None  # the training-pair pool (queue_size), see pool_pairs
        role = getattr(unwrap_model(self.model), "role", None)
        if role is not None and role != "restorer":
            raise OptionsError(
                f"{self.source}: model: {type(unwrap_model(self.model)).__name__} is a {role} (role {role!r}), not a "
                "restorer; the trained network goes in model, a discriminator in train.step.network_d "
                "(type: AdversarialStep)"
            )

    # -- the interface ----------------------------------------------------------------------------
    def step(self, batches: Sequence[Mapping[str, Any]], iteration: int) -> StepOutput:
        """One optimizer step over ``batches`` (``train.grad_accum`` micro-batches on the device);
        ``iteration`` counts the steps done before this one."""
        raise NotImplementedError

    def prepare(self, accelerator: Any) -> None:
        """Hand the networks and optimizers to ``accelerator`` (DDP, mixed precision, compile)."""
        raise NotImplementedError

    def networks(self) -> dict[str, CheckpointedNetwork]:
        """Networks checkpointed besides ``model`` and its EMA (none for a one-network step)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The optimizers' and schedules' states (merged into the trainer state of a checkpoint),
        and the pair pool's pairs (``pair_pool``) when there is one."""
        out: dict[str, Any] = {}
        for opt in self.optimized:
            out[opt.state_key] = opt.optimizer.state_dict()
            out[opt.state_key.replace("optimizer", "scheduler")] = opt.scheduler.state_dict()
        if self.pairs is not None and self.pairs.size:
            out["pair_pool"] = self.pairs.state_dict()
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (before :meth:`prepare`). A missing key is a ``KeyError``: the
        checkpoint was written by another step."""
        for opt in self.optimized:
            opt.optimizer.load_state_dict(state[opt.state_key])
            opt.scheduler.load_state_dict(state[opt.state_key.replace("optimizer", "scheduler")])
        if self.pairs is not None and self.pairs.size:
            self.pairs.load_state_dict(state["pair_pool"])

    def apply_resume_changes(self, changes: Sequence[Any]) -> str | None:
        """Apply the option changes a resume accepted (:mod:`irframe.train.resume`) to the restored
        optimizers and schedules; return the line that says so (``None``: nothing changed).

        ``train.optim`` changes apply to ``model``'s optimizer; a changed schedule is rebuilt for
        every optimizer at the resumed iteration.
        """
        if not self.optimized:
            return None
        first = self.optimized[0]
        first.scheduler, line = apply_changes(list(changes), first.optimizer, first.scheduler, self.train, self.source)
        if any(c.verdict == "schedule" for c in changes):
            for other in self.optimized[1:]:
                for group in other.optimizer.param_groups:
                    group.setdefault("initial_lr", group["lr"])
                other.scheduler = rebuild_scheduler(other.optimizer, self.train, other.scheduler.last_epoch)
        return line

    @property
    def optimizer(self) -> Any:
        """``model``'s optimizer."""
        return self.optimized[0].optimizer

    @property
    def scheduler(self) -> Any:
        """``model``'s schedule."""
        return self.optimized[0].scheduler

    @property
    def lr(self) -> float:
        """The rate ``model``'s optimizer uses now."""
        return float(self.optimizer.param_groups[0]["lr"])

    # -- shared pieces ----------------------------------------------------------------------------
    def pool_pairs(self, queue_size: int) -> None:
        """Keep a pool of ``queue_size`` synthesised pairs (Real-ESRGAN's ``queue_size``; 0: none):
        it needs batches degraded on the device and a batch size that divides it."""
        where = f"{self.source}: train.step.queue_size"
        self.pairs = PairPool(queue_size, where)
        if not queue_size:
            return
        if self.degrade_on_device is False:
            raise OptionsError(
                f"{where}: the pair pool mixes batches degraded on the training device, and datasets.train "
                "degrades its samples in the workers (each with its own draws: no pool needed); set "
                "datasets.train.degrade_on: device (RealESRGANDataset) or remove queue_size"
            )
        for size in self.batch_sizes:
            if queue_size % size:
                raise OptionsError(
                    f"{where}: {queue_size} is not a multiple of the batch size {size} (datasets.train.batch_size "
                    "or train.progressive.batch_sizes; Real-ESRGAN: 180 and 12)"
                )

    def synthesize(self, batches: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The micro-batches a step trains on: a batch that still carries its degradation's draws
        (``RealESRGANDataset`` with ``degrade_on: device``) gets its LQ made on its device
        (:func:`~irframe.data.degradations.realesrgan_batch.synthesize`), then goes through the pair
        pool (``queue_size``). Other batches pass unchanged. Every step calls it first."""
        out: list[Mapping[str, Any]] = []
        for batch in batches:
            if has_draws(batch):
                batch = synthesize(batch)
            out.append(self.pairs(batch) if self.pairs is not None and self.pairs.size else batch)
        return out

    def optimize(self, net: nn.Module, cfg: Mapping[str, Any], path: str, state_key: str) -> _Optimized:
        """Build the optimizer of ``cfg`` (option key ``path``) over ``net`` and the run's schedule
        over it (``train.scheduler`` and warm-up: one schedule for every optimizer, as BasicSR)."""
        try:
            optimizer = build_optimizer(net, cfg, path=path)
        except (ValueError, TypeError) as exc:
            raise OptionsError(f"{self.source}: {path}: {exc}") from None
        t = self.train
        scheduler = build_scheduler(optimizer, t.scheduler, t.warmup_iter, t.warmup_schedule)
        opt = _Optimized(optimizer, scheduler, state_key)
        self.optimized.append(opt)
        return opt

    def all_finite(self, loss: torch.Tensor) -> bool:
        """Whether ``loss`` is finite on every process (a host sync; every rank takes the same branch)."""
        bad = (~torch.isfinite(loss.detach())).float().reshape(1)
        if self.accelerator.num_processes > 1:
            bad = self.accelerator.reduce(bad, reduction="sum")
        return not bool(bad.item())

    def skip(self, iteration: int, terms: Mapping[str, torch.Tensor], what: str = "step") -> StepOutput:
        """Policy ``skip``: drop this step's gradients, keep the schedules on time, say so."""
        shown = ", ".join(f"{k} {float(v):.4g}" for k, v in terms.items())
        lr = self.lr
        for opt in self.optimized:
            opt.optimizer.zero_grad(set_to_none=True)
        self.step_schedules()
        note = f"iteration {iteration + 1}: non-finite loss ({shown}); {what} skipped (train.nan_policy: skip)"
        return StepOutput(None, {}, lr, skipped=True, note=note)

    def step_schedules(self) -> None:
        """Step every schedule once (they follow iterations, skipped or not)."""
        with warnings.catch_warnings():  # torch warns when the first step of a run is skipped
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()`"))
            for opt in self.optimized:
                opt.scheduler.step()

    def update_ema(self) -> None:
        if self.ema is not None:
            self.ema.update(unwrap_model(self.model))

    def prepare_model(self, accelerator: Any, *extra: Any) -> list[Any]:
        """``accelerator.prepare(model, *extra, model's optimizer)``; the EMA moves to the device.
        Returns the prepared ``extra`` objects."""
        self.accelerator = accelerator
        prepared = accelerator.prepare(self.model, *extra, self.optimized[0].optimizer)
        self.model = prepared[0]
        self.optimized[0].optimizer = prepared[-1]
        if self.ema is not None:
            self.ema.model.to(accelerator.device)
        return list(prepared[1:-1])


def patch_sizes_of(opts: Any) -> list[int | None]:
    """The GT patch sides of the training data: ``datasets.train.gt_size`` and any progressive
    ``train.patch_sizes`` (``None``: whole images or no training set)."""
    loader = opts.datasets.get("train")
    size = (loader.model_extra or {}).get("gt_size") if loader is not None else None
    sizes: list[int | None] = [size if isinstance(size, int) and not isinstance(size, bool) else None]
    prog = opts.train.progressive if opts.train is not None else None
    if prog is not None:
        sizes = list(prog.patch_sizes)
    return sizes


def build_step(opts: Any, model: nn.Module) -> TrainStep:
    """The step of ``train.step`` (default :class:`SupervisedStep`) for ``model``, with the EMA of
    ``train.ema_decay``; everything it builds is checked here, before any work."""
    train = opts.train
    assert train is not None
    ema = ModelEMA(model, train.ema_decay) if train.ema_decay > 0 else None
    loader = opts.datasets.get("train")
    extra = (loader.model_extra or {}) if loader is not None else {}
    on_device = extra.get("degrade_on") == "device" if loader is not None else None
    sizes = list(train.progressive.batch_sizes) if train.progressive is not None else []
    if loader is not None and not sizes:
        sizes = [int(loader.batch_size)]
    if on_device and train.mixing_augs is not None and train.mixing_augs.mixup:
        raise OptionsError(
            f"{opts.source}: train.mixing_augs: mixup mixes the LQ of a batch before the training step, and "
            "datasets.train.degrade_on: device leaves the LQ to be made by the step; use degrade_on: workers"
        )
    context = StepContext(model, train, ema, patch_sizes_of(opts), opts.source, on_device, sizes)
    cfg = train.step if train.step is not None else {"type": SUPERVISED}
    try:
        step = TRAIN_STEPS.build(cfg, path="train.step", context=context)
    except OptionsError as exc:  # the key as the option file spells it (network_d in a BasicSR file)
        text, prefix = str(exc), f"{opts.source}: "
        raise OptionsError(prefix + opts.spelled(text.removeprefix(prefix))) from None
    if not isinstance(step, TrainStep):
        raise OptionsError(
            f"{opts.source}: train.step: {cfg['type']} does not derive from irframe.train.step.TrainStep"
        )
    return step


# -- the supervised step ---------------------------------------------------------------------------
@TRAIN_STEPS.register(SUPERVISED)
class SupervisedStep(TrainStep):
    """One network, ``train.losses`` between its output and the ground truth (the default step).

    Per iteration: for each of the ``train.grad_accum`` micro-batches, forward ``lq`` (with the
    batch's task for a multi-task model, features when a loss needs them), the weighted loss,
    backward (gradients all-reduced once, on the last); then ``train.grad_clip``, the optimizer,
    the schedule and the EMA.

    Args:
        target: the batch entry the losses compare with: ``gt``, or ``gt_usm`` (the USM-sharpened
            GT of ``RealESRGANDataset``: Real-ESRNet's ``gt_usm: true``); a batch without
            ``gt_usm`` uses ``gt``.
        queue_size: Real-ESRGAN's training-pair pool, for batches degraded on the device
            (``RealESRGANDataset`` with ``degrade_on: device``): this many past pairs, shuffled
            across iterations; a multiple of the batch size; 0: none.
    """

    def __init__(self, context: StepContext, target: Target = "gt", queue_size: int = 0) -> None:
        super().__init__(context)
        self.target = target
        self.pool_pairs(queue_size)
        self.losses = WeightedLoss.from_options(context.train.losses)
        self.optimize(self.model, context.train.optim, "train.optim", "optimizer")
        self.log_names = self.losses.log_names
        raw = unwrap_model(self.model)
        self.multitask = len(get_spec(raw).tasks) > 1
        self._forward_kwargs = forward_kwargs(raw, self.losses.needs_features)

    def prepare(self, accelerator: Any) -> None:
        self.prepare_model(accelerator)
        self.losses.to(accelerator.device)

    def step(self, batches: Sequence[Mapping[str, Any]], iteration: int) -> StepOutput:
        batches = self.synthesize(batches)
        acc = self.accelerator
        n = len(batches)
        total: torch.Tensor | None = None
        parts: dict[str, torch.Tensor] = {}
        for k, batch in enumerate(batches):
            # Gradients are all-reduced once, on the last micro-batch.
            sync = contextlib.nullcontext() if k == n - 1 else acc.no_sync(self.model)
            with sync:
                loss, terms = self._loss(batch)
                # Policy "skip" must decide before the step (a host sync); "stop" checks lazily.
                if self.train.nan_policy == "skip" and not self.all_finite(loss):
                    return self.skip(iteration, terms)
                acc.backward(loss / n)
            value = loss.detach() / n
            total = value if total is None else total + value
            for name, term in terms.items():
                parts[name] = parts[name] + term / n if name in parts else term / n
        if self.train.grad_clip is not None:
            acc.clip_grad_norm_(self.model.parameters(), self.train.grad_clip)
        lr = self.lr
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.update_ema()
        assert total is not None
        return StepOutput(total, parts, lr)

    def _loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        kwargs = dict(self._forward_kwargs)
        if self.multitask:
            kwargs["task"] = batch_task(batch)
        with self.accelerator.autocast():
            out = self.model(batch["lq"], **kwargs)
            pred, features = out if self.losses.needs_features else (out, None)
            return self.losses(pred, target_of(batch, self.target), batch, features)


def target_of(batch: Mapping[str, Any], target: str) -> torch.Tensor | None:
    """``batch[target]``; ``gt`` when a ``gt_usm`` target is asked of a batch without one (a paired
    dataset, which has no sharpened copy)."""
    if target in batch:
        return batch[target]
    return batch.get("gt")


def forward_kwargs(model: nn.Module, needs_features: bool) -> dict[str, Any]:
    """Keyword arguments of every training forward: ask for features exactly when a loss needs them.

    A model whose forward takes ``return_features`` is always told explicitly (IPT returns features
    in training by default when built with ``con_loss``).
    """
    accepts = "return_features" in inspect.signature(model.forward).parameters
    if needs_features and not accepts:
        raise OptionsError(
            f"train.losses: a loss needs the model's features, but {type(model).__name__}.forward has no "
            "return_features parameter"
        )
    return {"return_features": needs_features} if accepts else {}


def batch_task(batch: Mapping[str, Any]) -> str | int:
    """The one task of a multi-task batch (samples carry ``task``; a batch must not mix them)."""
    if "task" not in batch:
        raise OptionsError(
            "the model is multi-task (spec.tasks) but the training samples carry no 'task'; "
            "use a dataset that labels its samples with their task"
        )
    tasks = batch["task"]
    if isinstance(tasks, (list, tuple)):
        distinct = sorted(set(tasks), key=str)
        if len(distinct) != 1:
            raise OptionsError(
                f"a training batch mixes tasks {distinct}; multi-task training needs one task per batch "
                "(the task batch sampler)"
            )
        return distinct[0]
    if isinstance(tasks, torch.Tensor):
        if tasks.numel() and bool((tasks != tasks.flatten()[0]).any()):
            raise OptionsError(f"a training batch mixes tasks {tasks.unique().tolist()}; one task per batch is needed")
        return int(tasks.flatten()[0])
    return tasks
